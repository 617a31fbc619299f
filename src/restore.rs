//! `CXLFORK_IOC_RESTORE`: the caller becomes a clone of an image.
//!
//! Before the point of no return everything is checked, opened and
//! allocated: the image (header, metadata, with the shared validator), the
//! caller (single-threaded, vdso/vvar already where the image has them),
//! registers, FPU state, signals and limits, every file to reopen, the clone
//! context and its lease. A failure there returns an errno with the caller
//! untouched. After it, the caller's mappings are replaced by the image's
//! and its state by the checkpointed state; should that fail midway the
//! caller is killed (it has no program left to return to).

use crate::abi::boxed_zeroed;
use crate::abi::image::{
    file_kind, pte, vm, vma_kind, ImageHeader, Meta, VmaImage, META_OFF, PT_ENTRIES, REGS_SELF,
};
use crate::abi::pod::Pod;
use crate::abi::pool::PAGE_SIZE;
use crate::abi::uapi::{self, Restore};
use crate::clone::{self, CloneCtx, FileRef};
use crate::ffi::{self, KFile};
use crate::pool::Pool;
use crate::{images, kernel_util, target, tiering};
use core::ffi::c_void;
use kernel::prelude::*;
use kernel::sync::atomic::Relaxed;
use kernel::sync::Arc;

const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const PROT_EXEC: u64 = 4;
const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_GROWSDOWN: u64 = 0x100;
const VM_MAYWRITE: u64 = 0x20;
const O_RDONLY: u32 = 0;
const O_RDWR: u32 = 2;
/// Highest fd number restored.
const MAX_FD: u32 = 1 << 16;
/// Pages per prefetch batch (the shim's limit).
const BATCH: u32 = 64;

fn check(r: i32) -> Result {
    if r < 0 {
        Err(Error::from_errno(r))
    } else {
        Ok(())
    }
}

/// Opens `path` (a byte string from the image) with `flags`, at `pos`.
fn open(path: &[u8], flags: u32, pos: Option<u64>) -> Result<FileRef> {
    let mut p = KVec::with_capacity(path.len() + 1, GFP_KERNEL)?;
    p.extend_from_slice(path, GFP_KERNEL)?;
    p.push(0, GFP_KERNEL)?;
    if path.contains(&0) {
        return Err(EINVAL);
    }
    // SAFETY: `p` is NUL-terminated; the shim returns a referenced file or an error.
    unsafe { FileRef::from_err_ptr(ffi::cxlfork_file_open(p.as_ptr(), flags, pos.unwrap_or(0), pos.is_some())) }
}

/// Files to install: (fd, file, close-on-exec).
type Fds = KVec<(u32, FileRef, bool)>;

/// Reopens the image's open files (before the point of no return).
fn open_files(m: &Meta<'_>, flags: u32) -> Result<Fds> {
    let mut fds = KVec::new();
    let stdio = flags & uapi::RESTORE_IMAGE_STDIO != 0;
    let skip = flags & uapi::RESTORE_SKIP_FILES != 0;
    for i in 0..m.header.n_files {
        let f = m.file(i).map_err(|_| EBADMSG)?;
        if f.fd <= 2 && !stdio {
            continue;
        }
        if f.fd >= MAX_FD {
            return Err(EINVAL);
        }
        let path = m.file_path(&f).map_err(|_| EBADMSG)?;
        let opened = match f.kind {
            file_kind::REG | file_kind::DIR | file_kind::CHR | file_kind::BLK => {
                open(path, f.flags, (f.kind == file_kind::REG).then_some(f.pos))
            }
            _ => Err(EOPNOTSUPP),
        };
        match opened {
            Ok(file) => fds.push((f.fd, file, f.cloexec != 0), GFP_KERNEL)?,
            Err(e) if skip => {
                pr_info!("restore: skipping fd {} ({:?})\n", f.fd, e);
            }
            Err(e) => {
                pr_info!("restore: cannot reopen fd {}: {:?}\n", f.fd, e);
                return Err(e);
            }
        }
    }
    Ok(fds)
}

/// Reopens the files of file mappings (private: for pages the image lacks;
/// shared: to map them again).
fn open_vma_files(m: &Meta<'_>) -> Result<KVec<Option<FileRef>>> {
    let mut files = KVec::with_capacity(m.header.n_vmas as usize, GFP_KERNEL)?;
    for i in 0..m.header.n_vmas {
        let v = m.vma(i).map_err(|_| EBADMSG)?;
        let f = match v.kind {
            vma_kind::FILE_PRIVATE | vma_kind::FILE_SHARED => {
                let mode = if v.kind == vma_kind::FILE_SHARED && v.vm_flags & VM_MAYWRITE != 0 { O_RDWR } else { O_RDONLY };
                Some(open(m.vma_path(&v).map_err(|_| EBADMSG)?, mode, None).inspect_err(|e| {
                    pr_info!("restore: cannot reopen the file of a mapping at {:#x}: {:?}\n", v.start, e)
                })?)
            }
            _ => None,
        };
        files.push(f, GFP_KERNEL)?;
    }
    Ok(files)
}

/// vdso, vvar and vvar_vclock must already sit where the image has them
/// (the restoring program moves its own with mremap first).
fn check_specials(m: &Meta<'_>) -> Result {
    for i in 0..m.header.n_vmas {
        let v = m.vma(i).map_err(|_| EBADMSG)?;
        let name: &[u8] = match v.kind {
            vma_kind::VDSO => b"[vdso]\0",
            vma_kind::VVAR => b"[vvar]\0",
            vma_kind::VVAR_VCLOCK => b"[vvar_vclock]\0",
            _ => continue,
        };
        // SAFETY: `name` is NUL-terminated.
        if unsafe { ffi::cxlfork_check_special(v.start, v.end, name.as_ptr()) } != 0 {
            pr_info!("restore: {:#x}..{:#x} must hold the caller's vdso/vvar (mremap it there first)\n", v.start, v.end);
            return Err(EINVAL);
        }
    }
    Ok(())
}

/// Validates the image state the restore will install.
fn check_state(h: &ImageHeader, m: &Meta<'_>) -> Result {
    // SAFETY: `regs` is 24 readable words.
    check(unsafe { ffi::cxlfork_check_regs(core::ptr::from_ref(&h.regs).cast::<u64>()) })?;
    let fpu = m.fpu();
    // SAFETY: `fpu` is `fpu.len()` readable bytes.
    check(unsafe { ffi::cxlfork_fpu_check(fpu.as_ptr().cast::<c_void>(), fpu.len() as u32, h.fpu_xfeatures) })?;
    let sig = m.sig().map_err(|_| EBADMSG)?;
    // SAFETY: `sig` is 294 readable words.
    check(unsafe { ffi::cxlfork_sig_check(core::ptr::from_ref(&sig).cast::<u64>()) })
}

fn prot_of(v: &VmaImage) -> u64 {
    let mut p = 0;
    if v.vm_flags & vm::READ != 0 {
        p |= PROT_READ;
    }
    if v.vm_flags & vm::WRITE != 0 {
        p |= PROT_WRITE;
    }
    if v.vm_flags & vm::EXEC != 0 {
        p |= PROT_EXEC;
    }
    p
}

fn mmap(file: *mut KFile, v: &VmaImage, prot: u64, flags: u64, off: u64) -> Result {
    // SAFETY: `file` is null or a referenced file; vm_mmap acts on current.
    let r = unsafe { ffi::cxlfork_vm_mmap(file, v.start, v.end - v.start, prot, flags | MAP_FIXED, off) };
    if r < 0 {
        return Err(Error::from_errno(r as i32));
    }
    if r as u64 != v.start {
        return Err(ENOMEM);
    }
    Ok(())
}

/// Copies the checkpointed pages inside `v` into current's mapping there
/// (shared anonymous memory: the clone gets its own, filled by copy).
fn fill_shared(ctx: &CloneCtx, v: &VmaImage) -> Result {
    let m = ctx.meta();
    for k in 0..ctx.header.n_leaves {
        let block = m.leaf(k).map_err(|_| EBADMSG)?.vaddr;
        if block + PT_ENTRIES as u64 * PAGE_SIZE <= v.start || block >= v.end {
            continue;
        }
        ctx.with_leaf(k, false, |entries, _| -> Result {
            for (i, &e) in entries.iter().enumerate() {
                let a = block + i as u64 * PAGE_SIZE;
                if e == 0 || a < v.start || a >= v.end {
                    continue;
                }
                ctx.pool().map().with_dst(pte::frame(e) * PAGE_SIZE, PAGE_SIZE as usize, |src| {
                    // SAFETY: `src` is 4 KiB of pool memory; `a` is mapped writable in current.
                    check(unsafe { ffi::cxlfork_copy_to_user_page(a, src.cast_const()) })
                })?;
            }
            Ok(())
        })??;
    }
    Ok(())
}

/// MoW: copies the pages the policy prefetches to local memory now, through
/// the clone's own fault path and the kernel's copy-on-write.
fn prefetch(ctx: &CloneCtx) -> Result {
    if !ctx.prefetches() {
        return Ok(());
    }
    let m = ctx.meta();
    let mut n_pre = 0u64;
    for k in 0..ctx.header.n_leaves {
        let block = m.leaf(k).map_err(|_| EBADMSG)?.vaddr;
        let mut runs = KVec::<(u64, u32)>::new();
        // A leaf that fails validation is skipped here: the clone takes a
        // SIGBUS if it ever touches that range, never the kernel.
        let Ok(scan) = ctx.with_leaf(k, false, |entries, _| -> Result {
            let mut i = 0usize;
            while i < PT_ENTRIES {
                let a = block + i as u64 * PAGE_SIZE;
                let want = |e: u64, a: u64| {
                    e != 0 && ctx.prefetch(e) && matches!(m.vma_at(a), Ok(Some(v)) if v.vm_flags & vm::WRITE != 0 && v.kind != vma_kind::SHARED_ANON)
                };
                if !want(entries[i], a) {
                    i += 1;
                    continue;
                }
                let mut n = 1u32;
                while i + (n as usize) < PT_ENTRIES && n < BATCH && want(entries[i + n as usize], a + u64::from(n) * PAGE_SIZE) {
                    n += 1;
                }
                runs.push((a, n), GFP_KERNEL)?;
                i += n as usize;
            }
            Ok(())
        }) else {
            continue;
        };
        scan?;
        // Outside the leaf lock: these writes fault through it.
        for &(a, n) in runs.iter() {
            // SAFETY: `a..a + n` pages are mapped in current (clone VMAs).
            check(unsafe { ffi::cxlfork_prefault_write(a, n) })?;
            n_pre += u64::from(n);
        }
    }
    ctx.stats.prefetched_pages.store(n_pre, Relaxed);
    ctx.stats.local_pages.fetch_add(n_pre, Relaxed);
    // Their pool mappings (installed by the write faults) were replaced at once.
    let pool = ctx.stats.pool_pages.load(Relaxed);
    ctx.stats.pool_pages.store(pool.saturating_sub(n_pre), Relaxed);
    Ok(())
}

/// After the point of no return: replace the address space and the state.
fn become_clone(ctx: &Arc<CloneCtx>, fds: &Fds, stdio: bool) -> Result<u64> {
    let m = ctx.meta();
    let h = &*ctx.header;
    // SAFETY: acts on current, which is single-threaded (checked).
    check(unsafe { ffi::cxlfork_unmap_all_but_special() })?;
    for i in 0..h.n_vmas {
        let v = m.vma(i).map_err(|_| EBADMSG)?;
        let prot = prot_of(&v);
        match v.kind {
            vma_kind::VDSO | vma_kind::VVAR | vma_kind::VVAR_VCLOCK | vma_kind::SPECIAL => {}
            vma_kind::FILE_SHARED => {
                let f = ctx.vma_files.get(i as usize).and_then(|f| f.as_ref()).ok_or(EINVAL)?;
                // pgoff * PAGE_SIZE cannot overflow: the validator checked it.
                mmap(f.as_ptr(), &v, prot, MAP_SHARED, v.pgoff.wrapping_mul(PAGE_SIZE))?;
            }
            vma_kind::SHARED_ANON => {
                mmap(core::ptr::null_mut(), &v, prot | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, 0)?;
                fill_shared(ctx, &v)?;
            }
            _ => {
                let grows = if v.vm_flags & vm::GROWSDOWN != 0 { MAP_GROWSDOWN } else { 0 };
                mmap(core::ptr::null_mut(), &v, prot, MAP_PRIVATE | MAP_ANONYMOUS | grows, 0)?;
                clone::make_clone_vma(ctx, v.start, v.end - v.start)?;
            }
        }
    }
    prefetch(ctx)?;
    // SAFETY: `mm` is MmImage: 11 + AUXV_WORDS readable words.
    unsafe { ffi::cxlfork_set_mm(core::ptr::from_ref(&h.mm).cast::<u64>(), crate::abi::image::AUXV_WORDS as u32) };
    let sig = m.sig().map_err(|_| EBADMSG)?;
    // SAFETY: checked by `cxlfork_sig_check` before the point of no return.
    unsafe { ffi::cxlfork_sig_set(core::ptr::from_ref(&sig).cast::<u64>()) };
    let mut comm = [0u8; 17];
    comm[..16].copy_from_slice(&h.comm);
    // SAFETY: `comm` is NUL-terminated.
    unsafe { ffi::cxlfork_set_comm(comm.as_ptr()) };
    // SAFETY: acts on current's fd table.
    unsafe { ffi::cxlfork_close_fds_from(if stdio { 0 } else { 3 }) };
    for (fd, f, cloexec) in fds.iter() {
        // SAFETY: `f` is a referenced file; the shim takes its own reference.
        check(unsafe { ffi::cxlfork_install_fd(f.as_ptr(), *fd, *cloexec) })?;
    }
    let fpu = m.fpu();
    // SAFETY: checked by `cxlfork_fpu_check` before the point of no return.
    unsafe { ffi::cxlfork_fpu_set(fpu.as_ptr().cast::<c_void>(), fpu.len() as u32) };
    let ax = if h.regs.origin == REGS_SELF { u64::from(ctx.clone_nr) } else { h.regs.ax };
    // SAFETY: checked by `cxlfork_check_regs` before the point of no return.
    unsafe { ffi::cxlfork_set_regs(core::ptr::from_ref(&h.regs).cast::<u64>(), ax) };
    Ok(ax)
}

/// `CXLFORK_IOC_RESTORE`. Returns the value the clone's interrupted call returns.
pub(crate) fn restore(pool: &Arc<Pool>, req: &Restore) -> Result<isize> {
    let t0 = kernel_util::monotonic_ns();
    if req.flags & !uapi::RESTORE_FLAGS != 0 || req.reserved != 0 {
        return Err(EINVAL);
    }
    let policy = tiering::for_abi(req.policy)?;
    let e = pool.find(req.id)?;
    if !images::may_access(e.uid) {
        return Err(EPERM);
    }
    let mut header = boxed_zeroed::<ImageHeader>(GFP_KERNEL)?;
    pool.map().read(e.offset, header.as_bytes_mut())?;
    if header.validate(e.offset, e.length).is_err() || header.id != req.id {
        return Err(EBADMSG);
    }
    if header.kernel != target::kernel_release() {
        pr_info!("restore: image {:#x} was made by another kernel build\n", req.id);
        return Err(ENOEXEC);
    }
    let mut meta = KVec::from_elem(0u8, (header.leaves_off - META_OFF) as usize, GFP_KERNEL)?;
    pool.map().read(e.offset + META_OFF, &mut meta)?;
    let (fds, vma_files) = {
        let m = Meta::validate(&header, &meta).map_err(|err| {
            pr_warn!("restore: image {:#x} is invalid: {}\n", req.id, err.as_str());
            EBADMSG
        })?;
        // SAFETY: reads current's thread count.
        if !unsafe { ffi::cxlfork_current_single_threaded() } {
            return Err(EBUSY);
        }
        check_state(&header, &m)?;
        check_specials(&m)?;
        (open_files(&m, req.flags)?, open_vma_files(&m)?)
    };
    let clone_nr = pool.lease_acquire(req.id, e.offset)?;
    // From here the context owns the lease: dropping it releases it.
    let ctx = CloneCtx::new(pool.clone(), req.id, e.offset, header, meta, policy, req.policy, clone_nr, vma_files)
        .inspect_err(|_| pool.lease_release(req.id, e.offset))?;

    // Point of no return.
    match become_clone(&ctx, &fds, req.flags & uapi::RESTORE_IMAGE_STDIO != 0) {
        Ok(ax) => {
            ctx.stats.restore_ns.store(kernel_util::monotonic_ns() - t0, Relaxed);
            Ok(ax as isize)
        }
        Err(err) => {
            pr_warn!("restore: failed after the point of no return ({:?}): killing the caller\n", err);
            // SAFETY: acts on current.
            unsafe { ffi::cxlfork_kill_current() };
            Err(err)
        }
    }
}
