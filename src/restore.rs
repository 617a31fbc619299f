//! `CXLFORK_IOC_RESTORE`: the caller becomes a clone of an image.
//!
//! Before the point of no return everything is checked, opened, created
//! and allocated, so that no step after it can fail on a valid image:
//! the image (header, metadata, with the shared validator); the caller
//! (single-threaded, sharing nothing with another process, no sealed
//! mapping, vdso/vvar already where the image has them); the image's
//! registers, FPU, rseq, robust list, signals, limits as the kernel's own
//! calls would check them; every mapping (each file mapping is mapped once
//! as a probe: LSMs, noexec mounts, modes; low addresses: mmap_min_addr;
//! totals against RLIMIT_AS/RLIMIT_DATA and vm.max_map_count); every file
//! to reopen and the descriptor table size; shared anonymous memory, made
//! and filled as shmem files; each clone VMA's state; the task_work that
//! sets the registers; the clone context and its lease. A failure there
//! returns an errno with the caller untouched.
//!
//! After it, the caller's mappings are replaced by the image's and its
//! state by the checkpointed state. Only the kernel's own allocations can
//! still fail there (as they can in execve); the caller, which has no
//! program left to return to, is then killed.

use crate::abi::image::{file_kind, procf, vm, vma_kind, ImageHeader, Meta, ProcImage, TaskImage, VmaImage, LEAF_SPAN, META_OFF, REGS_SELF, USER_END};
use crate::abi::pod::Pod;
use crate::abi::pool::PAGE_SIZE;
use crate::abi::uapi::{self, Restore};
use crate::abi::boxed_zeroed;
use crate::clone::{self, CloneCtx, CvmaBox, ImageVma};
use crate::fd_state;
use crate::ffi::{self, KFile, ProcState, TaskState};
use crate::file_ref::FileRef;
use crate::kernel_util::image_gfp;
use crate::pool::Pool;
use crate::restore_group::RestoreGroup;
use crate::{images, kernel_util, target, tiering};
use core::ffi::c_void;
use kernel::prelude::*;
use kernel::sync::Arc;


const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const PROT_EXEC: u64 = 4;
const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_DROPPABLE: u64 = 0x08;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_GROWSDOWN: u64 = 0x100;
const MAP_NORESERVE: u64 = 0x4000;
const O_RDONLY: u32 = 0;
const O_RDWR: u32 = 2;
/// Highest fd number restored.
const MAX_FD: u32 = 1 << 20;
/// Below this, a mapping is probed at its own address first (mmap_min_addr).
const LOW_ADDR: u64 = 1 << 20;

fn check(r: i32) -> Result {
    if r < 0 {
        Err(Error::from_errno(r))
    } else {
        Ok(())
    }
}

/// Opens `path` (a byte string from the image) with `flags`, at `pos`.
fn open(path: &[u8], flags: u32, pos: Option<u64>) -> Result<FileRef> {
    if path.contains(&0) {
        return Err(EINVAL);
    }
    let mut p = KVec::with_capacity(path.len() + 1, image_gfp())?;
    p.extend_from_slice(path, image_gfp())?;
    p.push(0, image_gfp())?;
    // SAFETY: `p` is NUL-terminated; the shim returns a referenced file or an error.
    unsafe { FileRef::from_err_ptr(ffi::cxlfork_file_open(p.as_ptr(), flags, pos.unwrap_or(0), pos.is_some())) }
}

/// Files to install: fd numbers (increasing), files (and their raw
/// pointers, for the shim), close-on-exec; and the restorer's descriptors
/// to keep (prepared eventfd, epoll and pipe objects, increasing).
struct Fds {
    fds: KVVec<u32>,
    files: KVVec<FileRef>,
    raw: KVVec<*mut KFile>,
    cloexec: KVVec<bool>,
    keep: KVVec<u32>,
    /// The prepared pipes' bytes, written last before the point of no return.
    fills: KVVec<fd_state::PipeFill>,
}

/// Reopens the image's open files (before the point of no return); a
/// descriptor of a shared object gets the clone's copy of the object; with
/// `RESTORE_PREPARED_FDS`, the restorer's eventfd, epoll and pipe objects
/// are checked and filled (fd_state.rs).
fn open_files(m: &Meta<'_>, flags: u32, objs: &[FileRef]) -> Result<Fds> {
    let mut out = Fds { fds: KVVec::new(), files: KVVec::new(), raw: KVVec::new(), cloexec: KVVec::new(), keep: KVVec::new(), fills: KVVec::new() };
    let stdio = flags & uapi::RESTORE_IMAGE_STDIO != 0;
    let skip = flags & uapi::RESTORE_SKIP_FILES != 0;
    let prepared = flags & uapi::RESTORE_PREPARED_FDS != 0;
    let mut adopter = fd_state::Adopter::new(m, stdio)?;
    for i in 0..m.header.n_files {
        let f = m.file(i).map_err(|_| EBADMSG)?;
        if f.fd <= 2 && !stdio {
            continue;
        }
        if f.fd >= MAX_FD || out.fds.last().is_some_and(|&l| l >= f.fd) {
            return Err(EINVAL);
        }
        let path = m.file_path(&f).map_err(|_| EBADMSG)?;
        let opened = match f.kind {
            _ if f.obj != 0 => {
                let o = objs.get(f.obj as usize - 1).ok_or(EBADMSG)?;
                o.seek(f.pos).map(|()| Some(o.try_clone()))
            }
            file_kind::REG | file_kind::DIR | file_kind::CHR | file_kind::BLK => {
                open(path, f.flags, (f.kind == file_kind::REG).then_some(f.pos)).map(Some)
            }
            k if file_kind::prepared(k) && prepared => adopter.adopt(&f).map(|()| None),
            _ => Err(EOPNOTSUPP),
        };
        match opened {
            Ok(Some(file)) => {
                out.fds.push(f.fd, image_gfp())?;
                out.raw.push(file.as_ptr(), image_gfp())?;
                out.files.push(file, image_gfp())?;
                out.cloexec.push(f.cloexec != 0, image_gfp())?;
            }
            Ok(None) => out.keep.push(f.fd, image_gfp())?,
            Err(e) if skip => {
                pr_info!("restore: skipping fd {} ({:?})\n", f.fd, e);
            }
            Err(e) => {
                pr_info!("restore: cannot {} fd {} ({}): {:?}\n", if file_kind::prepared(f.kind) { "adopt the restorer's" } else { "reopen" }, f.fd, file_kind::name(f.kind), e);
                return Err(e);
            }
        }
    }
    out.fills = adopter.finish()?;
    Ok(out)
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

/// An image whose process allocated protection keys, or tagged a mapping
/// with one, needs them here: without them its PKRU and key-tagged
/// mappings could not be what they were (a fork child keeps both).
fn check_pkeys(m: &Meta<'_>, p: &ProcImage) -> Result {
    let mut used = p.pkey_map != 1 || p.exec_only_pkey != u32::MAX;
    for i in 0..m.header.n_vmas {
        used |= m.vma(i).map_err(|_| EBADMSG)?.vm_flags & vm::PKEY_MASK != 0;
    }
    // SAFETY: reads a CPU feature.
    if used && !unsafe { ffi::cxlfork_pkeys_usable() } {
        pr_info!("restore: image {:#x} uses protection keys, which this host lacks\n", m.header.id);
        return Err(EOPNOTSUPP);
    }
    Ok(())
}

/// The shim's view of an image thread; `ax` replaces rax (the clone
/// number, for a self-checkpoint).
fn task_state(t: &TaskImage, ax: u64) -> TaskState {
    let r = &t.regs;
    let mut s = TaskState::zeroed();
    s.regs = [
        r.r15, r.r14, r.r13, r.r12, r.bp, r.bx, r.r11, r.r10, r.r9, r.r8, ax, r.cx, r.dx, r.si, r.di, r.orig_ax, r.ip, r.cs,
        r.flags, r.sp, r.ss,
    ];
    s.fs_base = r.fs_base;
    s.gs_base = r.gs_base;
    s.origin = r.origin;
    s.blocked = t.blocked;
    s.ss_sp = t.ss_sp;
    s.ss_size = t.ss_size;
    s.ss_flags = t.ss_flags as u32;
    s.pkru = t.pkru;
    s.rseq = t.rseq;
    s.rseq_len = t.rseq_len;
    s.rseq_sig = t.rseq_sig;
    s.rseq_version = t.rseq_version;
    s.tid = t.tid;
    s.robust_list = t.robust_list;
    s.robust_len = t.robust_len;
    s.clear_child_tid = t.clear_child_tid;
    s.timer_slack_ns = t.timer_slack_ns;
    s.comm = t.comm;
    s.nice = t.nice as i32;
    s.policy = t.policy;
    s.rt_priority = t.rt_priority;
    s
}

/// The shim's view of the image's process-wide state (on the heap).
fn proc_state(m: &Meta<'_>) -> Result<KBox<ProcState>> {
    let mut p = boxed_zeroed::<ProcImage>(image_gfp())?;
    m.read_proc(&mut p).map_err(|_| EBADMSG)?;
    check_pkeys(m, &p)?;
    let mut s = ProcState::boxed()?;
    for (w, a) in s.actions.iter_mut().zip(p.actions.iter()) {
        *w = [a.handler, a.flags, a.restorer, a.mask];
    }
    s.rlim[..p.rlimits.len()].copy_from_slice(&p.rlimits);
    s.personality = p.personality;
    s.mm_flags = p.mm_flags;
    s.umask = p.umask;
    s.proc_flags = p.proc_flags;
    s.dumpable = p.dumpable;
    s.coredump_filter = p.coredump_filter;
    s.pkey_map = p.pkey_map;
    s.exec_only_pkey = p.exec_only_pkey;
    s.realtime_ns = p.realtime_ns;
    s.monotonic_ns = p.monotonic_ns;
    s.boottime_ns = p.boottime_ns;
    Ok(s)
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

/// How one image VMA is mapped.
enum Kind {
    /// Kept as the caller has it (vdso, vvar).
    Special,
    /// A clone VMA over anonymous memory.
    Anon(CvmaBox),
    /// A clone VMA over a private mapping of the reopened file.
    FilePrivate(FileRef, CvmaBox),
    /// A shared mapping of a file (the reopened one, or a shmem file made
    /// and filled from the image for shared anonymous memory).
    Shared(FileRef),
    /// Plain anonymous memory: a fork child sees it zeroed (wipe-on-fork,
    /// droppable), so the image holds no page of it.
    Zeroed,
}

/// One image VMA, ready to be mapped after the point of no return.
struct Planned {
    index: u32,
    v: VmaImage,
    kind: Kind,
}

impl Planned {
    fn mmap_flags(&self) -> (u64, u64) {
        let v = &self.v;
        let mut flags = match self.kind {
            Kind::Shared(_) => MAP_SHARED,
            Kind::Zeroed if v.vm_flags & vm::DROPPABLE != 0 => MAP_DROPPABLE | MAP_ANONYMOUS,
            Kind::FilePrivate(..) => MAP_PRIVATE,
            _ => MAP_PRIVATE | MAP_ANONYMOUS,
        };
        if v.vm_flags & vm::GROWSDOWN != 0 && flags & MAP_ANONYMOUS != 0 && flags & MAP_DROPPABLE == 0 {
            flags |= MAP_GROWSDOWN;
        }
        if v.vm_flags & vm::NORESERVE != 0 {
            flags |= MAP_NORESERVE;
        }
        (prot_of(v), flags)
    }

    fn file(&self) -> *mut KFile {
        match &self.kind {
            Kind::FilePrivate(f, _) | Kind::Shared(f) => f.as_ptr(),
            _ => core::ptr::null_mut(),
        }
    }

    /// The file offset of the mapping.
    fn offset(&self) -> u64 {
        match self.kind {
            // The validator checked pgoff * PAGE_SIZE cannot overflow.
            Kind::FilePrivate(..) => self.v.pgoff.wrapping_mul(PAGE_SIZE),
            Kind::Shared(_) => self.v.pgoff.wrapping_mul(PAGE_SIZE),
            _ => 0,
        }
    }
}

/// Maps `p` where the image has it (after the point of no return).
fn map(p: &Planned) -> Result {
    let (prot, flags) = p.mmap_flags();
    let v = &p.v;
    // SAFETY: the file is null or referenced by `p`; vm_mmap acts on current.
    let r = unsafe { ffi::cxlfork_vm_mmap(p.file(), v.start, v.end - v.start, prot, flags | MAP_FIXED, p.offset()) };
    if r < 0 {
        return Err(Error::from_errno(r as i32));
    }
    if r as u64 != v.start {
        return Err(ENOMEM);
    }
    Ok(())
}

/// Maps `p` once where it is allowed to go (a probe, unmapped at once): the
/// checks vm_mmap would make after the point of no return, made before it.
fn probe(p: &Planned) -> Result {
    let (mut prot, flags) = p.mmap_flags();
    // An execute-only probe would allocate the caller a protection key
    // (and change its PKRU) before the point of no return: probe it
    // readable too, which the same checks allow or refuse.
    if prot == PROT_EXEC {
        prot |= PROT_READ;
    }
    let v = &p.v;
    let at = if v.start < LOW_ADDR { v.start } else { 0 };
    // SAFETY: the file is null or referenced by `p`; the probe maps and
    // unmaps in current without touching its existing mappings.
    check(unsafe { ffi::cxlfork_probe_map(p.file(), at, v.end - v.start, prot, flags, p.offset()) }).inspect_err(|e| {
        pr_info!("restore: the mapping at {:#x} ({}) is not allowed here: {:?}\n", v.start, vma_kind::name(v.kind), e)
    })
}

/// A NUL-terminated name for a shmem file standing for `path` (so that
/// /proc/PID/maps shows the original's: `/memfd:x (deleted)`, `/dev/zero
/// (deleted)`).
fn shmem_name(path: &[u8]) -> Result<KVec<u8>> {
    let p = path.strip_prefix(b"/").unwrap_or(path);
    let p = p.strip_suffix(b" (deleted)").unwrap_or(p);
    let p = if p.is_empty() || p.contains(&0) { &b"cxlfork-shared"[..] } else { p };
    let mut n = KVec::with_capacity(p.len() + 1, image_gfp())?;
    n.extend_from_slice(p, image_gfp())?;
    n.push(0, image_gfp())?;
    Ok(n)
}

/// The image's shared objects (MAP_SHARED|MAP_ANONYMOUS, memfds, deleted
/// tmpfs files), each a new shmem file holding the object's content, made
/// before the point of no return (a full tmpfs or memory cgroup fails it
/// there). Every VMA and descriptor of an object then uses the same file.
fn shared_objects(ctx: &CloneCtx, m: &Meta<'_>) -> Result<KVVec<FileRef>> {
    let mut out = KVVec::with_capacity(m.header.n_objs as usize, image_gfp())?;
    for i in 0..m.header.n_objs {
        let o = m.obj(i).map_err(|_| EBADMSG)?;
        let name = shmem_name(m.string(o.name_off, o.name_len).map_err(|_| EBADMSG)?)?;
        // SAFETY: `name` is NUL-terminated; the shim returns a referenced file or an error.
        let file = unsafe { FileRef::from_err_ptr(ffi::cxlfork_shmem_create(name.as_ptr(), o.size)) }?;
        for j in o.first..o.first + o.n_pages {
            let page = m.obj_page(j).map_err(|_| EBADMSG)?;
            let off = ctx.header.base + m.obj_page_data_off(j);
            ctx.pool().map().with_dst(off, PAGE_SIZE as usize, |src| {
                // SAFETY: `file` is referenced; `src` is 4 KiB of pool memory.
                check(unsafe { ffi::cxlfork_file_write_page(file.as_ptr(), page * PAGE_SIZE, src.cast_const()) })
            })?;
        }
        out.push(file, image_gfp())?;
    }
    Ok(out)
}

/// Plans every image VMA: opens, creates and allocates what mapping it
/// needs, probes it, and checks the totals against the caller's limits.
fn plan(m: &Meta<'_>, objs: &[FileRef]) -> Result<KVVec<Planned>> {
    let mut out = KVVec::with_capacity(m.header.n_vmas as usize, image_gfp())?;
    let (mut total, mut data) = (0u64, 0u64);
    // The image's leaf ranges, in address order (validated): a clone VMA
    // keeps state only for those that meet it.
    let mut leaves = KVVec::with_capacity(m.header.n_leaves as usize, image_gfp())?;
    for k in 0..m.header.n_leaves {
        leaves.push(m.leaf(k).map_err(|_| EBADMSG)?.vaddr, image_gfp())?;
    }
    let meeting = |v: &VmaImage| {
        let lo = leaves.partition_point(|&a| a + LEAF_SPAN <= v.start);
        let hi = leaves.partition_point(|&a| a < v.end).max(lo);
        &leaves[lo..hi]
    };
    for index in 0..m.header.n_vmas {
        let v = m.vma(index).map_err(|_| EBADMSG)?;
        let pages = (v.end - v.start) / PAGE_SIZE;
        let kind = match v.kind {
            vma_kind::VDSO | vma_kind::VVAR | vma_kind::VVAR_VCLOCK | vma_kind::SPECIAL => Kind::Special,
            vma_kind::FILE_SHARED => {
                let mode = if v.vm_flags & vm::MAYWRITE != 0 { O_RDWR } else { O_RDONLY };
                let f = open(m.vma_path(&v).map_err(|_| EBADMSG)?, mode, None)
                    .inspect_err(|e| pr_info!("restore: cannot reopen the file mapped at {:#x}: {:?}\n", v.start, e))?;
                Kind::Shared(f)
            }
            vma_kind::SHARED_ANON => Kind::Shared(objs.get(v.obj as usize - 1).ok_or(EBADMSG)?.try_clone()),
            vma_kind::FILE_PRIVATE => {
                let f = open(m.vma_path(&v).map_err(|_| EBADMSG)?, O_RDONLY, None)
                    .inspect_err(|e| pr_info!("restore: cannot reopen the file mapped at {:#x}: {:?}\n", v.start, e))?;
                // Its clean pages come from the file: it must be the one
                // the checkpoint saw.
                if f.identity() != (v.file_size, v.file_mtime_ns) {
                    pr_info!("restore: the file mapped at {:#x} changed since the checkpoint (size or mtime)\n", v.start);
                    return Err(ESTALE);
                }
                Kind::FilePrivate(f, CvmaBox::new(meeting(&v))?)
            }
            _ if v.vm_flags & (vm::WIPEONFORK | vm::DROPPABLE) != 0 => Kind::Zeroed,
            _ => Kind::Anon(CvmaBox::new(meeting(&v))?),
        };
        let p = Planned { index, v, kind };
        if !matches!(p.kind, Kind::Special) {
            // vm_mmap's commit check: under the default overcommit
            // heuristic a private writable mapping larger than this host's
            // RAM (and swap) is refused, though another host had it.
            let accountable = v.vm_flags & (vm::WRITE | vm::SHARED | vm::NORESERVE) == vm::WRITE;
            // SAFETY: reads a counter.
            let huge = accountable && pages > unsafe { ffi::cxlfork_totalram_pages() };
            // Executable anonymous memory (JIT code) may be refused by an
            // LSM (execmem) or by the caller's MDWE.
            let exec = v.vm_flags & vm::EXEC != 0;
            if matches!(p.kind, Kind::FilePrivate(..) | Kind::Shared(_)) || v.start < LOW_ADDR || huge || exec {
                probe(&p)?;
            }
            total += pages;
            // is_data_mapping(): private, writable, not a stack.
            if v.vm_flags & (vm::WRITE | vm::SHARED | vm::GROWSDOWN) == vm::WRITE {
                data += pages;
            }
        }
        out.push(p, image_gfp())?;
    }
    // SAFETY: reads current's mappings and limits.
    check(unsafe { ffi::cxlfork_check_caller(total, data, m.header.n_vmas) })?;
    Ok(out)
}

/// A task_work and state for the restored thread, prepared before the
/// point of no return.
///
/// # Invariants
///
/// `0` came from `cxlfork_task_prepare` and is owned here until installed.
struct PreparedTask(core::ptr::NonNull<c_void>);

impl PreparedTask {
    fn new(s: &TaskState, pin: &FileRef) -> Result<Self> {
        // SAFETY: `s` is a valid state; `pin` a referenced file (the work takes its own).
        let p = unsafe { ffi::cxlfork_task_prepare(s, pin.as_ptr()) };
        // INVARIANT: from `cxlfork_task_prepare`.
        Ok(Self(core::ptr::NonNull::new(p).ok_or(ENOMEM)?))
    }

    /// Gives it up, to a restore group (`shim_rgroup.c`).
    fn into_raw(self) -> *mut c_void {
        let p = self.0.as_ptr();
        core::mem::forget(self);
        p
    }

    /// Installs it into current (consumes it).
    fn install(self) {
        let p = self.0.as_ptr();
        core::mem::forget(self);
        // SAFETY: owned (invariant) and given up here; acts on current.
        unsafe { ffi::cxlfork_task_set(p) };
    }
}

impl Drop for PreparedTask {
    fn drop(&mut self) {
        // SAFETY: owned (invariant), released once.
        unsafe { ffi::cxlfork_task_discard(self.0.as_ptr()) };
    }
}

/// The image's executable, to become /proc/PID/exe (a fork child keeps
/// its parent's), write-denied from before the point of no return.
///
/// # Invariants
///
/// While `armed`, `file` holds a write denial (`cxlfork_exe_prepare`).
struct ExeFile {
    file: FileRef,
    armed: bool,
}

impl ExeFile {
    /// Opens the executable at `path`; `None` if the image has none.
    fn open(path: &[u8], skip: bool) -> Result<Option<Self>> {
        if path.is_empty() {
            return Ok(None);
        }
        let file = match open(path, O_RDONLY, None) {
            Ok(f) => f,
            Err(e) if skip => {
                pr_info!("restore: the image's executable cannot be reopened ({:?}): /proc/PID/exe stays the restorer's\n", e);
                return Ok(None);
            }
            Err(e) => {
                pr_info!("restore: cannot reopen the image's executable: {:?}\n", e);
                return Err(e);
            }
        };
        // SAFETY: `file` is referenced.
        check(unsafe { ffi::cxlfork_exe_prepare(file.as_ptr()) })?;
        // INVARIANT: the denial was just taken.
        Ok(Some(Self { file, armed: true }))
    }

    /// Makes it current's executable (after the point of no return).
    fn install(mut self) {
        self.armed = false;
        // SAFETY: referenced; the shim takes over the write denial.
        unsafe { ffi::cxlfork_exe_install(self.file.as_ptr()) };
    }
}

impl Drop for ExeFile {
    fn drop(&mut self) {
        if self.armed {
            // SAFETY: the denial is held (invariant), given back once.
            unsafe { ffi::cxlfork_exe_discard(self.file.as_ptr()) };
        }
    }
}

/// Everything the point of no return needs.
struct Prepared<'m> {
    plan: KVVec<Planned>,
    fds: Fds,
    proc: KBox<ProcState>,
    task: PreparedTask,
    exe: Option<ExeFile>,
    fpu: &'m [u8],
    stdio: bool,
}

/// After the point of no return: replace the address space and the state.
fn become_clone(ctx: &Arc<CloneCtx>, p: Prepared<'_>) -> Result {
    let h = &*ctx.header;
    // SAFETY: acts on current, whose other threads (if any) wait in the
    // kernel to become the image's (checked).
    check(unsafe { ffi::cxlfork_unmap_all_but_special() })?;
    for pl in p.plan {
        let v = pl.v;
        if matches!(pl.kind, Kind::Special) {
            continue;
        }
        map(&pl)?;
        let img = ImageVma { index: pl.index, start: v.start, pgoff: v.pgoff, wipe: v.vm_flags & vm::WIPEONFORK != 0 };
        match pl.kind {
            Kind::Anon(cv) => clone::make_clone_vma(ctx, v.start, v.end - v.start, cv, &ImageVma { pgoff: v.start / PAGE_SIZE, ..img })?,
            Kind::FilePrivate(_, cv) => clone::make_clone_vma(ctx, v.start, v.end - v.start, cv, &img)?,
            _ => {}
        }
        // SAFETY: acts on current's mapping at exactly [start, end).
        unsafe { ffi::cxlfork_vma_set_flags(v.start, v.end - v.start, v.vm_flags) };
    }
    // SAFETY: acts on current's clone VMAs, all made by now.
    unsafe { ffi::cxlfork_clone_vmas_settle() };
    if let Some(exe) = p.exe {
        exe.install();
    }
    // SAFETY: `mm` is MmImage: 11 + AUXV_WORDS readable words; `proc` checked.
    unsafe { ffi::cxlfork_set_mm(core::ptr::from_ref(&h.mm).cast::<u64>(), crate::abi::image::AUXV_WORDS as u32, &*p.proc) };
    // Descriptors under the restorer's RLIMIT_NOFILE (checked), then the
    // image's limits: a process may hold descriptors above a limit it
    // lowered since, and so may its fork child.
    let first = if p.stdio { 0 } else { 3 };
    let f = &p.fds;
    // SAFETY: acts on current's fd table; `keep` holds `len` numbers.
    unsafe { ffi::cxlfork_close_fds_from(first, f.keep.as_ptr(), f.keep.len() as u32) };
    // SAFETY: the arrays hold `n` entries each; the files are referenced by
    // `f.files`; the table was sized by `cxlfork_fd_prepare`.
    check(unsafe { ffi::cxlfork_install_fds(f.raw.as_ptr(), f.fds.as_ptr(), f.cloexec.as_ptr(), f.fds.len() as u32, first) })?;
    // SAFETY: checked by `cxlfork_proc_check` before the point of no return.
    unsafe { ffi::cxlfork_proc_set(&*p.proc) };
    // SAFETY: checked by `cxlfork_fpu_check` before the point of no return.
    unsafe { ffi::cxlfork_fpu_set(p.fpu.as_ptr().cast::<c_void>(), p.fpu.len() as u32) };
    p.task.install();
    Ok(())
}

/// A lease taken by a restore, given back unless a clone context takes it
/// over.
struct Lease<'a> {
    pool: &'a Pool,
    id: u64,
    base: u64,
    clone_nr: u32,
    armed: bool,
}

impl<'a> Lease<'a> {
    fn take(pool: &'a Pool, id: u64, base: u64) -> Result<Self> {
        let clone_nr = pool.lease_acquire(id, base)?;
        Ok(Self { pool, id, base, clone_nr, armed: true })
    }

    /// The clone context took the lease over (its drop releases it).
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.pool.lease_release(self.id, self.base);
        }
    }
}

/// The mm fields must be what prctl(PR_SET_MM_MAP) would accept: user
/// addresses, each range in order, the auxv a list of pairs ending in
/// AT_NULL.
fn check_mm(h: &ImageHeader) -> Result {
    let m = &h.mm;
    let addrs = [m.start_code, m.end_code, m.start_data, m.end_data, m.start_brk, m.brk, m.start_stack, m.arg_start, m.arg_end, m.env_start, m.env_end];
    let ordered = m.start_code <= m.end_code
        && m.start_data <= m.end_data
        && m.start_brk <= m.brk
        && m.arg_start <= m.arg_end
        && m.env_start <= m.env_end;
    let auxv_ok = m.auxv.chunks(2).any(|p| p[0] == 0);
    if addrs.iter().any(|&a| a >= USER_END) || !ordered || !auxv_ok {
        pr_info!("restore: image {:#x} has mm fields no process could have\n", h.id);
        return Err(EINVAL);
    }
    Ok(())
}

/// `CXLFORK_IOC_RESTORE`. Returns the value the clone's interrupted call
/// returns (its full 64 bits reach the clone through the task_work). An
/// image of several threads needs the caller's other threads waiting in
/// `CXLFORK_IOC_RESTORE_THREAD` ([`crate::restore_group`]): one point of no
/// return for all of them.
pub(crate) fn restore(pool: &Arc<Pool>, req: &Restore) -> Result<isize> {
    let t0 = kernel_util::monotonic_ns();
    if req.flags & !uapi::RESTORE_FLAGS != 0 || req.reserved != 0 {
        return Err(EINVAL);
    }
    let policy = tiering::for_abi(req.policy)?;
    // SAFETY: reads current's thread count and sharing.
    let threads = unsafe { ffi::cxlfork_current_threads() };
    // SAFETY: as above.
    if threads == 0 || unsafe { ffi::cxlfork_current_shares_state() } {
        return Err(EBUSY);
    }
    let e = images::find_visible(pool, req.id)?;
    // The lease first: only then is what the extent holds this image, and
    // stays so (see pool.rs).
    let lease = Lease::take(pool, req.id, e.offset)?;
    let mut header = boxed_zeroed::<ImageHeader>(image_gfp())?;
    pool.map().read(e.offset, header.as_bytes_mut())?;
    if header.validate(e.offset, e.length).is_err() || header.id != req.id {
        return Err(EBADMSG);
    }
    if header.kernel != target::kernel_release() {
        pr_info!("restore: image {:#x} was made by another kernel build\n", req.id);
        return Err(ENOEXEC);
    }
    let mut meta = KVVec::from_elem(0u8, (header.leaves_off - META_OFF) as usize, image_gfp())?;
    pool.map().read(e.offset + META_OFF, &mut meta)?;
    Meta::validate(&header, &meta).map_err(|err| {
        pr_warn!("restore: image {:#x} is invalid: {}\n", req.id, err.as_str());
        EBADMSG
    })?;
    check_mm(&header)?;
    // The caller is the main thread; the image's others need as many
    // other threads of the caller, and no more.
    let mut group = match header.n_tasks {
        1 if threads != 1 => return Err(EBUSY),
        1 => None,
        n => Some(RestoreGroup::lead(req.id, n - 1)?),
    };
    let r = restore_with(pool, req, policy, e.offset, lease, header, meta, &mut group, t0);
    if let (Err(err), Some(g)) = (&r, group.as_mut()) {
        g.fail(*err);
    }
    r
}

/// The rest of [`restore`], once the image is read and valid and the group
/// (if any) gathered: an error before the point of no return sends its
/// followers back with it.
#[allow(clippy::too_many_arguments)]
fn restore_with(
    pool: &Arc<Pool>,
    req: &Restore,
    policy: &'static dyn tiering::Policy,
    base: u64,
    lease: Lease<'_>,
    header: KBox<ImageHeader>,
    meta: KVVec<u8>,
    group: &mut Option<RestoreGroup>,
    t0: u64,
) -> Result<isize> {
    // From here the context owns the lease: dropping it releases it.
    let ctx = CloneCtx::new(pool.clone(), req.id, base, header, meta, policy, req.policy, lease.clone_nr)?;
    lease.disarm();
    let m = ctx.meta();

    let ps = proc_state(&m)?;
    // SAFETY: `ps` is a valid state to check.
    check(unsafe { ffi::cxlfork_proc_check(&*ps) })?;
    // Every thread's registers and state, as the kernel's own calls would
    // check them, and its XSAVE buffer (each follower's FPU layout is the
    // caller's: checked when the group gathered).
    let ax_of = |t: &TaskImage| if t.regs.origin == REGS_SELF { u64::from(ctx.clone_nr) } else { t.regs.ax };
    let t = m.task(0).map_err(|_| EBADMSG)?;
    let ax = ax_of(&t);
    let ts = task_state(&t, ax);
    let leader_ctid = ts.clear_child_tid;
    let fpu = m.task_fpu(&t).map_err(|_| EBADMSG)?;
    for k in 0..m.header.n_tasks {
        let t = m.task(k).map_err(|_| EBADMSG)?;
        // SAFETY: a valid state to check.
        check(unsafe { ffi::cxlfork_task_check(&task_state(&t, ax_of(&t))) })?;
        let f = m.task_fpu(&t).map_err(|_| EBADMSG)?;
        // SAFETY: `f` is `f.len()` readable bytes.
        check(unsafe { ffi::cxlfork_fpu_check(f.as_ptr().cast::<c_void>(), f.len() as u32, t.fpu_xfeatures) })?;
    }
    check_specials(&m)?;
    let objs = shared_objects(&ctx, &m)?;
    let plan = plan(&m, &objs)?;
    let fds = open_files(&m, req.flags, &objs)?;
    if let Some(&max) = fds.fds.last() {
        // SAFETY: sizes current's descriptor table (nothing else changes).
        check(unsafe { ffi::cxlfork_fd_prepare(max) })?;
    }
    // Each follower's state, staged in the group (task k + 1 for the
    // follower k, both by increasing tid).
    if let Some(g) = group.as_ref() {
        let nnp = ps.proc_flags & procf::NO_NEW_PRIVS != 0;
        for k in 1..m.header.n_tasks {
            let t = m.task(k).map_err(|_| EBADMSG)?;
            let ax = ax_of(&t);
            let fpu = m.task_fpu(&t).map_err(|_| EBADMSG)?;
            let p = PreparedTask::new(&task_state(&t, ax), ctx.pin())?;
            g.stage(k - 1, p.into_raw(), fpu, ax, ps.personality, nnp)?;
        }
    }
    let task = PreparedTask::new(&ts, ctx.pin())?;
    let (exe_off, exe_len) = {
        let mut pi = boxed_zeroed::<ProcImage>(image_gfp())?;
        m.read_proc(&mut pi).map_err(|_| EBADMSG)?;
        (pi.exe_off, pi.exe_len)
    };
    let exe = ExeFile::open(m.string(exe_off, exe_len).map_err(|_| EBADMSG)?, req.flags & uapi::RESTORE_SKIP_FILES != 0)?;
    let p = Prepared { plan, fds, proc: ps, task, exe, fpu, stdio: req.flags & uapi::RESTORE_IMAGE_STDIO != 0 };

    // The last fallible step: the prepared pipes' bytes (the restorer's
    // own pipes; a failure from here on leaves the bytes there).
    for fill in p.fds.fills.iter() {
        fill.write(&m)?;
    }
    // Point of no return (for every thread of the group at once).
    let committed = group.take().map(RestoreGroup::commit).transpose()?;
    match become_clone(&ctx, p) {
        Ok(()) => {
            if let Some(c) = committed {
                c.go(leader_ctid);
            }
            ctx.set_restored(kernel_util::monotonic_ns() - t0);
            Ok(ax as i32 as isize)
        }
        Err(err) => {
            pr_warn!("restore: failed after the point of no return ({:?}): killing the caller\n", err);
            // SAFETY: acts on current: its exit must not write the
            // restorer's tid, robust list or rseq addresses into the
            // image's address space.
            unsafe { ffi::cxlfork_forget_user_addresses() };
            // SAFETY: acts on current.
            unsafe { ffi::cxlfork_kill_current() };
            // `committed` dropped: its followers go with nothing to install.
            Err(err)
        }
    }
}
