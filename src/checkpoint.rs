//! `CXLFORK_IOC_CHECKPOINT`: copy a process into this host's partition.
//!
//! 1. Pin and stop the target; take its mmap lock.
//! 2. Record its VMAs; read the leaf page table of every 2 MiB block of its
//!    private mappings, keeping the entries that map a page (not the zero
//!    page) inside those mappings; count them.
//! 3. Reserve an extent sized exactly for that (ENOSPC if none).
//! 4. Copy each mapped page to the next data page (pinned with GUP, written
//!    with non-temporal stores) and rebase its entry to that pool frame,
//!    keeping every other bit; write each rebased leaf and its CRC.
//! 5. Write the metadata (VMAs, files, strings, signals, FPU, leaf index, the
//!    upper table levels), the lease page, then the header, then publish the
//!    directory entry. Any failure drops the reservation: nothing visible.

use crate::abi::boxed_zeroed;
use crate::abi::image::{
    self, fill_upper_table, pte, put, vma_kind, FileImage, ImageHeader, ImageLayout, LeafIndex, SigImage,
    VmaImage, IMG_MAGIC, IMG_VERSION, LEASE_OFF, META_OFF, PT_ENTRIES,
};
use crate::abi::pod::slice_as_bytes;
use crate::abi::pool::PAGE_SIZE;
use crate::abi::uapi::{self, Checkpoint};
use crate::abi::crc::crc32c;
use crate::kernel_util;
use crate::pool::{Pool, Reservation};
use crate::target::{self, After, MmReadGuard, Target};
use core::ffi::c_void;
use kernel::prelude::*;

/// Largest path recorded.
const PATH_MAX: usize = 4096;
/// Pages per GUP batch (the shim's limit).
const COPY_BATCH: u32 = 64;
/// Room for the task's xsave buffer.
const FPU_MAX: usize = 32 << 10;
/// Leaf block size.
const BLOCK: u64 = 2 << 20;

/// What was collected under the mmap lock before anything is written.
struct Collected {
    vmas: KVec<VmaImage>,
    strings: KVec<u8>,
    /// Sorted, distinct 2 MiB-aligned addresses of the leaves kept.
    leaf_vaddrs: KVec<u64>,
    /// `PT_ENTRIES` raw entries per leaf (zero where nothing is kept).
    leaf_entries: KVec<u64>,
    n_data: u64,
    anon_pages: u64,
    file_pages: u64,
    accessed: u64,
    dirty: u64,
}

fn push_str(strings: &mut KVec<u8>, s: &[u8]) -> Result<(u32, u32)> {
    let off = u32::try_from(strings.len()).map_err(|_| E2BIG)?;
    strings.extend_from_slice(s, GFP_KERNEL)?;
    if strings.len() > image::MAX_STRINGS as usize {
        return Err(E2BIG);
    }
    Ok((off, s.len() as u32))
}

/// Index of the VMA containing `addr` among sorted `vmas`.
fn vma_index(vmas: &[VmaImage], addr: u64) -> Option<usize> {
    let i = vmas.partition_point(|v| v.end <= addr);
    (i < vmas.len() && vmas[i].start <= addr).then_some(i)
}

fn collect(mm: &MmReadGuard<'_>, path: &mut [u8]) -> Result<Collected> {
    let mut c = Collected {
        vmas: KVec::new(),
        strings: KVec::new(),
        leaf_vaddrs: KVec::new(),
        leaf_entries: KVec::new(),
        n_data: 0,
        anon_pages: 0,
        file_pages: 0,
        accessed: 0,
        dirty: 0,
    };
    let mut addr = 0u64;
    while let Some((v, len)) = mm.vma_next(addr, path).inspect_err(|e| {
        if *e == EOPNOTSUPP {
            pr_info!("checkpoint: a mapping at or after {:#x} cannot be checkpointed (hugetlb, PFN map, unlinked non-shmem shared file)\n", addr);
        }
    })? {
        let (path_off, path_len) = push_str(&mut c.strings, &path[..len])?;
        c.vmas.push(
            VmaImage {
                start: v.start,
                end: v.end,
                vm_flags: v.vm_flags,
                pgoff: v.pgoff,
                kind: v.kind,
                path_off,
                path_len,
                reserved: 0,
                pages: 0,
            },
            GFP_KERNEL,
        )?;
        if c.vmas.len() > image::MAX_VMAS as usize {
            return Err(E2BIG);
        }
        addr = v.end;
    }

    // Leaves of the blocks the copied VMAs touch, each read once.
    let mut entries = KVec::from_elem(0u64, PT_ENTRIES, GFP_KERNEL)?;
    for vi in 0..c.vmas.len() {
        let v = c.vmas[vi];
        if !vma_kind::copies_pages(v.kind) {
            continue;
        }
        let mut block = v.start & !(BLOCK - 1);
        while block < v.end {
            if c.leaf_vaddrs.last() == Some(&block) || !mm.read_leaf(block, &mut entries)? {
                block += BLOCK;
                continue;
            }
            let mut mapped = 0u64;
            for (i, e) in entries.iter_mut().enumerate() {
                let a = block + i as u64 * PAGE_SIZE;
                let keep = pte::maps_frame(*e)
                    && !target::is_zero_page(*e)
                    && vma_index(&c.vmas, a).is_some_and(|k| vma_kind::copies_pages(c.vmas[k].kind));
                if !keep {
                    *e = 0;
                    continue;
                }
                let k = vma_index(&c.vmas, a).ok_or(EINVAL)?;
                c.vmas[k].pages += 1;
                if c.vmas[k].kind == vma_kind::FILE_PRIVATE {
                    c.file_pages += 1;
                } else {
                    c.anon_pages += 1;
                }
                c.accessed += u64::from(*e & pte::ACCESSED != 0);
                c.dirty += u64::from(*e & pte::DIRTY != 0);
                mapped += 1;
            }
            if mapped != 0 {
                c.leaf_vaddrs.push(block, GFP_KERNEL)?;
                c.leaf_entries.extend_from_slice(&entries, GFP_KERNEL)?;
                c.n_data += mapped;
            }
            block += BLOCK;
        }
    }
    Ok(c)
}

/// Copies the kept pages of every leaf into the image's data pages and
/// rebases the entries; writes each leaf and fills `index`.
fn copy_data(pool: &Pool, mm: &MmReadGuard<'_>, c: &mut Collected, r: &Reservation, l: &ImageLayout, index: &mut KVec<LeafIndex>) -> Result {
    let data = r.offset + l.data_off;
    let first_frame = data / PAGE_SIZE;
    let mut d = 0u64; // next data page
    for (k, &vaddr) in c.leaf_vaddrs.iter().enumerate() {
        let leaf = &mut c.leaf_entries[k * PT_ENTRIES..(k + 1) * PT_ENTRIES];
        let mut i = 0usize;
        let mut mapped = 0u32;
        while i < PT_ENTRIES {
            if leaf[i] == 0 {
                i += 1;
                continue;
            }
            // A run of kept entries: consecutive addresses, consecutive data pages.
            let mut n = 0u32;
            while i + (n as usize) < PT_ENTRIES && leaf[i + n as usize] != 0 && n < COPY_BATCH {
                n += 1;
            }
            let addr = vaddr + i as u64 * PAGE_SIZE;
            let dst_off = data + d * PAGE_SIZE;
            pool.map().with_dst(dst_off, n as usize * PAGE_SIZE as usize, |dst: *mut c_void| {
                // SAFETY: `with_dst` checked that `dst` spans `n` pages of the
                // pool, inside our reservation, which nothing else writes.
                unsafe { mm.copy_pages(addr, n, dst) }
            })?;
            for j in 0..n as usize {
                leaf[i + j] = pte::with_frame(leaf[i + j], first_frame + d + j as u64);
            }
            d += u64::from(n);
            mapped += n;
            i += n as usize;
        }
        let bytes = slice_as_bytes(leaf);
        pool.map().write(r.offset + l.leaves_off + k as u64 * PAGE_SIZE, bytes)?;
        index.push(LeafIndex { vaddr, crc: crc32c(bytes), mapped }, GFP_KERNEL)?;
        pool.ckpt_progress(false, u64::from(mapped), 0);
    }
    if d != c.n_data {
        return Err(EAGAIN);
    }
    Ok(())
}

/// Open files, each with its path in `strings`.
fn collect_files(t: &Target, strings: &mut KVec<u8>, path: &mut [u8]) -> Result<KVec<FileImage>> {
    let mut files = KVec::new();
    let mut fd = 0u32;
    while let Some((mut f, len)) = t.file_next(fd, path)? {
        let (off, n) = push_str(strings, &path[..len])?;
        f.path_off = off;
        f.path_len = n;
        fd = f.fd + 1;
        files.push(f, GFP_KERNEL)?;
        if files.len() > image::MAX_FILES as usize {
            return Err(E2BIG);
        }
    }
    Ok(files)
}

/// Checkpoints per `req`; fills its outputs.
pub(crate) fn checkpoint(pool: &Pool, req: &mut Checkpoint) -> Result {
    if req.flags & !uapi::CKPT_FLAGS != 0 || req.flags == uapi::CKPT_FLAGS || req.reserved != 0 {
        return Err(EINVAL);
    }
    if !req.name.contains(&0) {
        return Err(EINVAL);
    }
    let t0 = kernel_util::monotonic_ns();
    let mut target = Target::get(req.pid as i32)?;
    if target.is_self() && req.flags != 0 {
        return Err(EINVAL);
    }
    target.stop()?;
    let mut path = KVec::from_elem(0u8, PATH_MAX, GFP_KERNEL)?;

    let regs = target.regs()?;
    let mut fpu = KVec::from_elem(0u8, FPU_MAX, GFP_KERNEL)?;
    let (fpu_len, fpu_xfeatures) = target.fpu(&mut fpu)?;
    let mut sig = boxed_zeroed::<SigImage>(GFP_KERNEL)?;
    target.sig(&mut sig);
    let mut h = boxed_zeroed::<ImageHeader>(GFP_KERNEL)?;
    target.mm(&mut h.mm);
    let (uid, gid, pid, comm) = target.ids();

    let mm = target.mm_read_lock()?;
    let mut c = collect(&mm, &mut path)?;
    let files = collect_files(&target, &mut c.strings, &mut path)?;
    let n_upper = image::upper_table_count(&c.leaf_vaddrs);
    let n_leaves = u32::try_from(c.leaf_vaddrs.len()).map_err(|_| E2BIG)?;
    let l = ImageLayout::new(c.vmas.len() as u32, files.len() as u32, c.strings.len() as u32, fpu_len, n_upper, n_leaves, c.n_data)
        .ok_or(E2BIG)?;
    let r = pool.reserve(l.size, uid, gid)?;
    pool.ckpt_progress(true, 0, c.n_data);
    let mut index = KVec::with_capacity(c.leaf_vaddrs.len(), GFP_KERNEL)?;
    let copied = copy_data(pool, &mm, &mut c, &r, &l, &mut index);
    drop(mm);
    pool.ckpt_end(if copied.is_ok() { c.n_data } else { index.iter().map(|x| u64::from(x.mapped)).sum() }, c.n_data);
    let written = copied.and_then(|()| {
        h.magic = IMG_MAGIC;
        h.version = IMG_VERSION;
        h.header_size = ImageHeader::SIZE as u32;
        h.id = r.id;
        h.base = r.offset;
        h.owner_host = pool.host_id();
        h.uid = uid;
        h.gid = gid;
        h.pid = pid;
        h.comm = comm;
        h.name = req.name;
        h.kernel = target::kernel_release();
        h.regs = regs;
        h.n_vmas = c.vmas.len() as u32;
        h.n_files = files.len() as u32;
        h.strings_len = c.strings.len() as u32;
        h.fpu_len = fpu_len;
        h.fpu_xfeatures = fpu_xfeatures;
        h.n_upper = n_upper;
        h.n_leaves = n_leaves;
        h.n_data = c.n_data;
        h.anon_pages = c.anon_pages;
        h.file_pages = c.file_pages;
        h.accessed_pages = c.accessed;
        h.dirty_pages = c.dirty;
        image::place(&mut h, &l);
        write_meta(pool, &r, &l, &mut h, &c, &files, &sig, &fpu[..fpu_len as usize], &index, t0)
    });
    if let Err(e) = written {
        pool.abort(r);
        return Err(e);
    }
    let (id, image_size) = (r.id, r.length);
    pool.publish(r, h.created_ns)?;
    target.set_after(match req.flags {
        uapi::CKPT_LEAVE_STOPPED => After::LeaveStopped,
        uapi::CKPT_KILL => After::Kill,
        _ => After::Resume,
    });
    req.image_id = id;
    req.image_size = image_size;
    req.pages = c.n_data;
    req.duration_ns = h.duration_ns;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write_meta(
    pool: &Pool,
    r: &Reservation,
    l: &ImageLayout,
    h: &mut ImageHeader,
    c: &Collected,
    files: &[FileImage],
    sig: &SigImage,
    fpu: &[u8],
    index: &[LeafIndex],
    t0: u64,
) -> Result {
    let mut meta = KVec::from_elem(0u8, (l.leaves_off - META_OFF) as usize, GFP_KERNEL)?;
    for (i, v) in c.vmas.iter().enumerate() {
        put(&mut meta, l.vmas_off + (i * VmaImage::SIZE) as u64, v).ok_or(EINVAL)?;
    }
    for (i, f) in files.iter().enumerate() {
        put(&mut meta, l.files_off + (i * FileImage::SIZE) as u64, f).ok_or(EINVAL)?;
    }
    let s = (l.strings_off - META_OFF) as usize;
    meta.get_mut(s..s + c.strings.len()).ok_or(EINVAL)?.copy_from_slice(&c.strings);
    put(&mut meta, l.sig_off, sig).ok_or(EINVAL)?;
    let f = (l.fpu_off - META_OFF) as usize;
    meta.get_mut(f..f + fpu.len()).ok_or(EINVAL)?.copy_from_slice(fpu);
    for (i, li) in index.iter().enumerate() {
        put(&mut meta, l.leaf_index_off + (i * LeafIndex::SIZE) as u64, li).ok_or(EINVAL)?;
    }
    let mut table = KVec::from_elem(0u64, PT_ENTRIES, GFP_KERNEL)?;
    for t in 0..h.n_upper {
        fill_upper_table(t, &c.leaf_vaddrs, h, &mut table);
        let o = (l.upper_off - META_OFF + u64::from(t) * PAGE_SIZE) as usize;
        meta.get_mut(o..o + PAGE_SIZE as usize).ok_or(EINVAL)?.copy_from_slice(slice_as_bytes(&table));
    }
    pool.map().write(r.offset + META_OFF, &meta)?;
    pool.map().zero(r.offset + LEASE_OFF, PAGE_SIZE as usize)?;
    h.created_ns = kernel_util::realtime_ns();
    h.duration_ns = kernel_util::monotonic_ns() - t0;
    image::seal(h, &meta);
    // The header goes last: until it is written (and the entry published),
    // the image is invisible.
    pool.map().write_pod(r.offset, h)
}
