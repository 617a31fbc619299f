//! `CXLFORK_IOC_CHECKPOINT`: copy a process into this host's partition.
//!
//! 1. Pin and stop the target; take its mmap lock.
//! 2. Record its VMAs; read the leaf page table of every 2 MiB block of its
//!    private mappings, keeping the entries that map a page (not the zero
//!    page) inside those mappings; count them.
//! 3. Reserve an extent sized for that (ENOSPC if none).
//! 4. Copy each mapped page to the next data page (pinned with GUP, written
//!    with non-temporal stores) and rebase its entry to that pool frame,
//!    keeping every other bit; all-zero pages of anonymous memory are left
//!    out (a clone reads zero there anyway: THP-backed sparse regions cost
//!    no pool space); write each rebased leaf and its CRC, then give back
//!    the unused end of the extent.
//! 5. Write the metadata (VMAs, files, strings, process and task state,
//!    FPU, leaf index, the upper table levels), the lease page, then the
//!    header, then publish the directory entry. Any failure drops the
//!    reservation: nothing visible.

use crate::abi::boxed_zeroed;
use crate::abi::image::{
    self, file_kind, fill_upper_table, pte, put, vm, vma_kind, FileImage, ImageHeader, ImageLayout, LeafIndex, ObjImage, ProcImage,
    RegsImage, SigAction, TaskImage, VmaImage, IMG_MAGIC, IMG_VERSION, LEASE_OFF, META_OFF, NRLIMITS, PT_ENTRIES,
};
use crate::abi::pod::slice_as_bytes;
use crate::abi::pool::PAGE_SIZE;
use crate::abi::uapi::{self, Checkpoint};
use crate::abi::crc::crc32c;
use crate::ffi::{self, ProcState, TaskState};
use crate::fd_state;
use crate::file_ref::FileRef;
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
    vmas: KVVec<VmaImage>,
    strings: KVVec<u8>,
    /// Sorted, distinct 2 MiB-aligned addresses of the leaves kept.
    leaf_vaddrs: KVVec<u64>,
    /// `PT_ENTRIES` raw entries per leaf (zero where nothing is kept).
    leaf_entries: KVVec<u64>,
    /// Shared objects (shared memory with no name to reopen).
    objs: KVVec<Obj>,
    /// Upper bound of leaf data pages (every kept entry).
    n_data: u64,
    anon_pages: u64,
    file_pages: u64,
    accessed: u64,
    dirty: u64,
}

/// A shared object the image stores once, whatever maps it.
struct Obj {
    file: FileRef,
    size: u64,
    name: (u32, u32),
    /// Page offsets of its data (SEEK_DATA ranges): the pages stored.
    pages: KVVec<u64>,
}

/// The 1-based object number of `file`'s inode, adding it if new.
fn obj_of(objs: &mut KVVec<Obj>, strings: &mut KVVec<u8>, file: FileRef, name: &[u8]) -> Result<u32> {
    let key = file.inode_key();
    if let Some(i) = objs.iter().position(|o| o.file.inode_key() == key) {
        return Ok(i as u32 + 1);
    }
    if objs.len() >= image::MAX_OBJS as usize {
        return Err(E2BIG);
    }
    // Its size is the file's (past it, any mapping of it raises SIGBUS).
    let size = file.identity().0;
    let name = push_str(strings, name)?;
    objs.push(Obj { file, size, name, pages: KVVec::new() }, GFP_KERNEL)?;
    Ok(objs.len() as u32)
}

fn push_str(strings: &mut KVVec<u8>, s: &[u8]) -> Result<(u32, u32)> {
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

/// Whether the pages a VMA maps go into the image's leaves: a fork child
/// sees those of a wipe-on-fork or droppable mapping zeroed; a shared
/// object's content is stored whole, with the object.
fn copies(v: &VmaImage) -> bool {
    vma_kind::copies_pages(v.kind) && v.kind != vma_kind::SHARED_ANON && v.vm_flags & (vm::WIPEONFORK | vm::DROPPABLE) == 0
}

/// What a copy of this VMA's pages leaves out of the image: all-zero pages
/// of anonymous memory (a clone reads zero where the image has none), the
/// file's own page-cache pages of a private file mapping (a clone reads the
/// file there, as a fork child shares the page cache; only private copies
/// are the process's own).
fn copy_mode(v: &VmaImage) -> u32 {
    match v.kind {
        vma_kind::ANON | vma_kind::HEAP | vma_kind::STACK => ffi::COPY_SKIP_ZERO,
        vma_kind::FILE_PRIVATE => ffi::COPY_SKIP_FILE,
        _ => 0,
    }
}

impl Collected {
    fn new() -> Self {
        Self {
            vmas: KVVec::new(),
            strings: KVVec::new(),
            leaf_vaddrs: KVVec::new(),
            leaf_entries: KVVec::new(),
            objs: KVVec::new(),
            n_data: 0,
            anon_pages: 0,
            file_pages: 0,
            accessed: 0,
            dirty: 0,
        }
    }
}

/// Adds the VMAs and the leaves mapping their pages to `c`. With
/// `fork_only` (a checkpoint of one thread, fork(2)'s semantics),
/// MADV_DONTFORK mappings are left out as fork leaves them out; a
/// checkpoint of every thread keeps them: the clone is the whole process
/// (V8 marks its heap MADV_DONTFORK, and Node.js needs it).
fn collect(mm: &MmReadGuard<'_>, mut c: Collected, fork_only: bool, path: &mut [u8]) -> Result<Collected> {
    let mut path2 = KVec::from_elem(0u8, PATH_MAX, GFP_KERNEL)?;
    let mut addr = 0u64;
    while let Some((v, len)) = mm.vma_next(addr, fork_only, path).inspect_err(|e| {
        if *e == EOPNOTSUPP {
            pr_info!("checkpoint: a mapping at or after {:#x} cannot be checkpointed (hugetlb, PFN map, unlinked non-shmem shared file)\n", addr);
        }
    })? {
        let (path_off, path_len) = push_str(&mut c.strings, &path[..len])?;
        let obj = if v.kind == vma_kind::SHARED_ANON {
            let f = mm.vma_file(v.start)?;
            path2[..len].copy_from_slice(&path[..len]);
            obj_of(&mut c.objs, &mut c.strings, f, &path2[..len])?
        } else {
            0
        };
        c.vmas.push(
            VmaImage {
                start: v.start,
                end: v.end,
                vm_flags: v.vm_flags,
                pgoff: v.pgoff,
                kind: v.kind,
                path_off,
                path_len,
                obj,
                pages: 0,
                obj_size: 0,
                file_size: v.file_size,
                file_mtime_ns: v.file_mtime_ns,
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
        if !copies(&v) {
            continue;
        }
        let mut block = v.start & !(BLOCK - 1);
        while block < v.end {
            if c.leaf_vaddrs.last() == Some(&block) || !mm.read_leaf(block, &mut entries)? {
                block += BLOCK;
                continue;
            }
            let mut mapped = 0u64;
            // The VMA holding each entry's address: addresses only grow.
            let mut k = c.vmas.partition_point(|v| v.end <= block);
            for (i, e) in entries.iter_mut().enumerate() {
                let a = block + i as u64 * PAGE_SIZE;
                while k < c.vmas.len() && c.vmas[k].end <= a {
                    k += 1;
                }
                let keep = k < c.vmas.len()
                    && c.vmas[k].start <= a
                    && copies(&c.vmas[k])
                    && pte::maps_frame(*e)
                    && !target::is_zero_page(*e);
                if !keep {
                    *e = 0;
                    continue;
                }
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

/// Copies the kept pages of every leaf into the image's data pages (packed,
/// all-zero anonymous pages left out) and rebases the entries; writes each
/// leaf and fills `index`. Returns the number of data pages written.
fn copy_data(pool: &Pool, mm: &MmReadGuard<'_>, c: &mut Collected, ip: &mut InPool<'_>, l: &ImageLayout, index: &mut KVVec<LeafIndex>) -> Result<u64> {
    let r = ip.r()?;
    let (offset, leaves_off) = (r.offset, l.leaves_off);
    let data = offset + l.data_off;
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
            // A run of kept entries in one VMA: consecutive addresses,
            // consecutive data pages for the ones copied.
            let addr = vaddr + i as u64 * PAGE_SIZE;
            let vi = vma_index(&c.vmas, addr).ok_or(EINVAL)?;
            let v = c.vmas[vi];
            let mut n = 0u32;
            while i + (n as usize) < PT_ENTRIES && leaf[i + n as usize] != 0 && n < COPY_BATCH && addr + u64::from(n) * PAGE_SIZE < v.end {
                n += 1;
            }
            if d + u64::from(n) > c.n_data {
                return Err(EAGAIN);
            }
            let dst_off = data + d * PAGE_SIZE;
            let copied = pool.map().with_dst(dst_off, n as usize * PAGE_SIZE as usize, |dst: *mut c_void| {
                // SAFETY: `with_dst` checked that `dst` spans `n` pages of the
                // pool, inside our reservation, which nothing else writes.
                unsafe { mm.copy_pages(addr, n, dst, copy_mode(&v)) }
            })?;
            let mut kept = 0u64;
            for j in 0..n as usize {
                if copied & (1 << j) != 0 {
                    leaf[i + j] = pte::with_frame(leaf[i + j], first_frame + d + kept);
                    kept += 1;
                } else {
                    // Left out: the clone reads the same bytes without it.
                    let e = leaf[i + j];
                    c.accessed -= u64::from(e & pte::ACCESSED != 0);
                    c.dirty -= u64::from(e & pte::DIRTY != 0);
                    if v.kind == vma_kind::FILE_PRIVATE {
                        c.file_pages -= 1;
                    } else {
                        c.anon_pages -= 1;
                    }
                    c.vmas[vi].pages -= 1;
                    leaf[i + j] = 0;
                }
            }
            d += kept;
            mapped += kept as u32;
            i += n as usize;
        }
        let bytes = slice_as_bytes(leaf);
        pool.map().write(offset + leaves_off + k as u64 * PAGE_SIZE, bytes)?;
        index.push(LeafIndex { vaddr, crc: crc32c(bytes), mapped }, GFP_KERNEL)?;
        ip.progress(u64::from(mapped));
    }
    Ok(d)
}

/// Copies every shared object's data pages to the pool from `dst` on (in
/// object order), through a bounce page: a file read, not a page-table walk.
fn copy_objs(pool: &Pool, c: &Collected, ip: &mut InPool<'_>, mut dst: u64) -> Result {
    let mut page = KVec::from_elem(0u8, PAGE_SIZE as usize, GFP_KERNEL)?;
    for o in c.objs.iter() {
        for &p in o.pages.iter() {
            o.file.read_page(p, &mut page)?;
            pool.map().write(dst, &page)?;
            dst += PAGE_SIZE;
        }
        ip.progress(o.pages.len() as u64);
    }
    Ok(())
}

/// Open files, each with its path in `strings` (descriptors of shared
/// objects, e.g. memfds, name their object; eventfd, epoll and pipe
/// descriptors carry their state: fd_state.rs).
fn collect_files(t: &Target, c: &mut Collected, path: &mut [u8]) -> Result<KVVec<FileImage>> {
    let mut files = KVVec::new();
    let mut objects = fd_state::Recorder::new()?;
    let mut fd = 0u32;
    while let Some((mut f, len, file)) = t.file_next(fd, path)? {
        let (off, n) = push_str(&mut c.strings, &path[..len])?;
        f.path_off = off;
        f.path_len = n;
        if file.is_shared_anon() {
            f.obj = obj_of(&mut c.objs, &mut c.strings, file, &path[..len])?;
        } else if file_kind::prepared(f.kind) {
            objects.record(t, &file, &mut f, &mut c.strings)?;
        }
        fd = f.fd + 1;
        files.push(f, GFP_KERNEL)?;
        if files.len() > image::MAX_FILES as usize {
            return Err(E2BIG);
        }
    }
    Ok(files)
}

/// A checkpoint in progress in the pool: its reservation (dropped unless
/// published) and its share of the progress counters (always given back).
struct InPool<'a> {
    pool: &'a Pool,
    r: Option<Reservation>,
    total: u64,
    done: u64,
}

impl<'a> InPool<'a> {
    fn new(pool: &'a Pool, r: Reservation, total: u64) -> Self {
        pool.ckpt_progress(true, 0, total);
        Self { pool, r: Some(r), total, done: 0 }
    }

    fn r(&self) -> Result<&Reservation> {
        self.r.as_ref().ok_or(EINVAL)
    }

    /// `n` more pages copied.
    fn progress(&mut self, n: u64) {
        self.pool.ckpt_progress(false, n, 0);
        self.done += n;
    }

    /// Publishes the image: its directory entry becomes PUBLISHED.
    fn publish(mut self, created_ns: u64) -> Result<(u64, u64)> {
        let r = self.r.take().ok_or(EINVAL)?;
        let (id, len) = (r.id, r.length);
        self.pool.publish(r, created_ns)?;
        Ok((id, len))
    }
}

impl Drop for InPool<'_> {
    fn drop(&mut self) {
        self.pool.ckpt_end(self.done, self.total);
        if let Some(r) = self.r.take() {
            self.pool.abort(r);
        }
    }
}

/// The image record of a thread's state, its XSAVE buffer at `fpu_off`.
fn task_image(s: &TaskState, fpu_off: u64, fpu_len: u32, fpu_xfeatures: u64) -> TaskImage {
    let r = &s.regs;
    TaskImage {
        regs: RegsImage {
            r15: r[0],
            r14: r[1],
            r13: r[2],
            r12: r[3],
            bp: r[4],
            bx: r[5],
            r11: r[6],
            r10: r[7],
            r9: r[8],
            r8: r[9],
            ax: r[10],
            cx: r[11],
            dx: r[12],
            si: r[13],
            di: r[14],
            orig_ax: r[15],
            ip: r[16],
            cs: r[17],
            flags: r[18],
            sp: r[19],
            ss: r[20],
            fs_base: s.fs_base,
            gs_base: s.gs_base,
            origin: s.origin,
        },
        blocked: s.blocked,
        ss_sp: s.ss_sp,
        ss_size: s.ss_size,
        ss_flags: u64::from(s.ss_flags),
        rseq: s.rseq,
        rseq_len: s.rseq_len,
        rseq_sig: s.rseq_sig,
        rseq_version: s.rseq_version,
        rseq_flags: 0,
        robust_list: s.robust_list,
        robust_len: s.robust_len,
        clear_child_tid: s.clear_child_tid,
        fpu_off,
        fpu_len,
        pkru: s.pkru,
        fpu_xfeatures,
        timer_slack_ns: s.timer_slack_ns,
        tid: s.tid,
        flags: 0,
        comm: s.comm,
        nice: s.nice as u32,
        policy: s.policy,
        rt_priority: s.rt_priority,
        pad: 0,
        reserved: [0; 2],
    }
}

/// The image record of the process-wide state (on the heap: it is large);
/// its paths in `strings`.
fn proc_image(p: &ProcState, cwd: (u32, u32), exe: (u32, u32)) -> Result<KBox<ProcImage>> {
    let mut o = boxed_zeroed::<ProcImage>(GFP_KERNEL)?;
    for (a, w) in o.actions.iter_mut().zip(p.actions.iter()) {
        *a = SigAction { handler: w[0], flags: w[1], restorer: w[2], mask: w[3] };
    }
    o.rlimits.copy_from_slice(&p.rlim[..NRLIMITS]);
    o.personality = p.personality;
    o.mm_flags = p.mm_flags;
    o.umask = p.umask;
    o.proc_flags = p.proc_flags;
    o.dumpable = p.dumpable;
    o.coredump_filter = p.coredump_filter;
    o.pkey_map = p.pkey_map;
    o.exec_only_pkey = p.exec_only_pkey;
    o.realtime_ns = p.realtime_ns;
    o.monotonic_ns = p.monotonic_ns;
    o.boottime_ns = p.boottime_ns;
    (o.cwd_off, o.cwd_len) = cwd;
    (o.exe_off, o.exe_len) = exe;
    Ok(o)
}

/// What a checkpoint reports.
struct Outputs {
    id: u64,
    size: u64,
    pages: u64,
    duration_ns: u64,
}

/// Checkpoints per `req`; fills its outputs. The caller itself is read
/// in its ioctl; another process checkpoints itself, in its own context,
/// while the caller waits (`Target::run`).
pub(crate) fn checkpoint(pool: &Pool, req: &mut Checkpoint) -> Result {
    let fate = req.flags & (uapi::CKPT_LEAVE_STOPPED | uapi::CKPT_KILL);
    if req.flags & !uapi::CKPT_FLAGS != 0 || fate == uapi::CKPT_LEAVE_STOPPED | uapi::CKPT_KILL {
        return Err(EINVAL);
    }
    if !req.name.contains(&0) {
        return Err(EINVAL);
    }
    let t0 = kernel_util::monotonic_ns();
    let target = Target::get(req.pid as i32, req.mem_fd as i32)?;
    let name = req.name;
    let pin = FileRef::module_pin()?;
    let out = if target.is_self() {
        if fate != 0 {
            return Err(EINVAL);
        }
        let this_thread = req.flags & uapi::CKPT_THIS_THREAD != 0;
        checkpoint_of(pool, &target, &pin, &name, this_thread, t0)?
    } else {
        if req.flags & uapi::CKPT_THIS_THREAD != 0 {
            return Err(EINVAL);
        }
        let after = match fate {
            uapi::CKPT_LEAVE_STOPPED => After::LeaveStopped,
            uapi::CKPT_KILL => After::Kill,
            _ => After::Resume,
        };
        let mut out = None;
        target.run(after, &pin, &mut |me| {
            out = Some(checkpoint_of(pool, me, &pin, &name, false, t0)?);
            Ok(())
        })?;
        out.ok_or(EINVAL)?
    };
    req.image_id = out.id;
    req.image_size = out.size;
    req.pages = out.pages;
    req.duration_ns = out.duration_ns;
    Ok(())
}

/// One thread as recorded.
struct Thread {
    s: TaskState,
    fpu: KVec<u8>,
    fpu_len: u32,
    xfeatures: u64,
}

/// Every thread of the target's process (only current with
/// `this_thread`), the others held still by `target.park_others` until the
/// checkpoint ends: task 0 the main thread (its tid is `pid`), the others
/// by increasing tid.
fn threads(target: &Target, pin: &FileRef, pid: u32, this_thread: bool) -> Result<KVVec<Thread>> {
    // The others stop even when only current is recorded: as fork's copy
    // of the address space, this one sees no thread run while it is made.
    target.park_others(pin)?;
    let n = if this_thread { 0 } else { target.parked() };
    let mut out = KVVec::with_capacity(n as usize + 1, GFP_KERNEL)?;
    let mut fpu = KVec::from_elem(0u8, FPU_MAX, GFP_KERNEL)?;
    let (fpu_len, xfeatures) = target.fpu(&mut fpu)?;
    out.push(Thread { s: target.task()?, fpu, fpu_len, xfeatures }, GFP_KERNEL)?;
    for i in 0..n {
        let (s, fpu, xfeatures) = target.parked_thread(i)?;
        let fpu_len = u32::try_from(fpu.len()).map_err(|_| E2BIG)?;
        out.push(Thread { s, fpu, fpu_len, xfeatures }, GFP_KERNEL)?;
    }
    out.sort_unstable_by_key(|t| (t.s.tid != pid, t.s.tid));
    Ok(out)
}

/// The FPU area: each thread's buffer at a 64-byte aligned offset; the
/// offsets (from the area's start).
fn fpu_area(threads: &[Thread]) -> Result<(KVVec<u8>, KVVec<u64>)> {
    let mut area = KVVec::new();
    let mut offs = KVVec::with_capacity(threads.len(), GFP_KERNEL)?;
    for t in threads {
        let off = area.len().next_multiple_of(64);
        area.resize(off, 0, GFP_KERNEL)?;
        offs.push(off as u64, GFP_KERNEL)?;
        area.extend_from_slice(t.fpu.get(..t.fpu_len as usize).ok_or(EINVAL)?, GFP_KERNEL)?;
    }
    Ok((area, offs))
}

/// Checkpoints `target`, which is current (the caller, or another process
/// in its checkpoint task_work): every thread, or with `this_thread` the
/// calling one alone.
fn checkpoint_of(pool: &Pool, target: &Target, pin: &FileRef, name: &[u8; uapi::NAME_LEN], this_thread: bool, t0: u64) -> Result<Outputs> {
    let mut path = KVec::from_elem(0u8, PATH_MAX, GFP_KERNEL)?;

    let (uid, gid, pid, comm) = target.ids();
    let threads = threads(target, pin, pid, this_thread)?;
    let (fpu, fpu_offs) = fpu_area(&threads)?;
    let fpu_len = u32::try_from(fpu.len()).map_err(|_| E2BIG)?;
    let n_tasks = u32::try_from(threads.len()).map_err(|_| E2BIG)?;
    let proc_state = target.proc()?;
    let mut h = boxed_zeroed::<ImageHeader>(GFP_KERNEL)?;
    target.mm(&mut h.mm);

    // Descriptors before the mmap lock: reading an epoll's or a pipe's
    // state takes ep->mtx or pipe->mutex, which the kernel takes before
    // mmap_lock (their syscalls fault on user memory under them).
    let mut c = Collected::new();
    let files = collect_files(target, &mut c, &mut path)?;
    let mm = target.mm_read_lock()?;
    let mut c = collect(&mm, c, this_thread, &mut path)?;
    // Every shared object's data pages (SEEK_DATA ranges) are stored.
    let mut n_obj_pages = 0u64;
    for o in c.objs.iter_mut() {
        o.file.data_pages(o.size, &mut o.pages)?;
        n_obj_pages += o.pages.len() as u64;
    }
    let n_objs = c.objs.len() as u32;
    let n = target.path(false, &mut path)?;
    let cwd = push_str(&mut c.strings, &path[..n])?;
    let n = target.path(true, &mut path)?;
    let exe = push_str(&mut c.strings, &path[..n])?;
    let n_upper = image::upper_table_count(&c.leaf_vaddrs);
    let n_leaves = u32::try_from(c.leaf_vaddrs.len()).map_err(|_| E2BIG)?;
    let (n_vmas, n_files, n_strings) = (c.vmas.len() as u32, files.len() as u32, c.strings.len() as u32);
    let layout = |n_data| ImageLayout::new(n_vmas, n_files, n_strings, n_tasks, fpu_len, (n_objs, n_obj_pages), n_upper, n_leaves, n_data);
    let most = layout(c.n_data + n_obj_pages).ok_or(E2BIG)?;
    let mut ip = InPool::new(pool, pool.reserve(most.size, uid, gid)?, c.n_data + n_obj_pages);
    let mut index = KVVec::with_capacity(c.leaf_vaddrs.len(), GFP_KERNEL)?;
    let n_leaf_data = copy_data(pool, &mm, &mut c, &mut ip, &most, &mut index)?;
    drop(mm);
    // The objects' pages follow the leaves' pages.
    let dst = ip.r()?.offset + most.data_off + n_leaf_data * PAGE_SIZE;
    copy_objs(pool, &c, &mut ip, dst)?;
    let n_data = n_leaf_data + n_obj_pages;
    // All-zero pages were left out: the image ends earlier.
    let l = layout(n_data).ok_or(E2BIG)?;
    if let Some(r) = ip.r.as_mut() {
        pool.shrink(r, l.size)?;
    }

    h.magic = IMG_MAGIC;
    h.version = IMG_VERSION;
    h.header_size = ImageHeader::SIZE as u32;
    h.id = ip.r()?.id;
    h.base = ip.r()?.offset;
    h.owner_host = pool.host_id();
    h.uid = uid;
    h.gid = gid;
    h.pid = pid;
    h.comm = comm;
    h.name = *name;
    h.kernel = target::kernel_release();
    h.n_vmas = c.vmas.len() as u32;
    h.n_files = files.len() as u32;
    h.strings_len = c.strings.len() as u32;
    h.n_tasks = n_tasks;
    h.n_objs = n_objs;
    h.n_obj_pages = n_obj_pages;
    h.fpu_len = fpu_len;
    h.n_upper = n_upper;
    h.n_leaves = n_leaves;
    h.n_data = n_data;
    h.anon_pages = c.anon_pages;
    h.file_pages = c.file_pages;
    h.accessed_pages = c.accessed;
    h.dirty_pages = c.dirty;
    image::place(&mut h, &l);
    let mut tasks = KVVec::with_capacity(threads.len(), GFP_KERNEL)?;
    for (t, off) in threads.iter().zip(fpu_offs.iter()) {
        tasks.push(task_image(&t.s, l.fpu_off + off, t.fpu_len, t.xfeatures), GFP_KERNEL)?;
    }
    let proc = proc_image(&proc_state, cwd, exe)?;
    write_meta(pool, ip.r()?, &l, &mut h, &c, &files, &proc, &tasks, &fpu, &index, t0)?;
    let (id, size) = ip.publish(h.created_ns)?;
    Ok(Outputs { id, size, pages: n_data, duration_ns: h.duration_ns })
}

#[allow(clippy::too_many_arguments)]
fn write_meta(
    pool: &Pool,
    r: &Reservation,
    l: &ImageLayout,
    h: &mut ImageHeader,
    c: &Collected,
    files: &[FileImage],
    proc: &ProcImage,
    tasks: &[TaskImage],
    fpu: &[u8],
    index: &[LeafIndex],
    t0: u64,
) -> Result {
    let mut meta = KVVec::from_elem(0u8, (l.leaves_off - META_OFF) as usize, GFP_KERNEL)?;
    for (i, v) in c.vmas.iter().enumerate() {
        put(&mut meta, l.vmas_off + (i * VmaImage::SIZE) as u64, v).ok_or(EINVAL)?;
    }
    for (i, f) in files.iter().enumerate() {
        put(&mut meta, l.files_off + (i * FileImage::SIZE) as u64, f).ok_or(EINVAL)?;
    }
    let s = (l.strings_off - META_OFF) as usize;
    meta.get_mut(s..s + c.strings.len()).ok_or(EINVAL)?.copy_from_slice(&c.strings);
    put(&mut meta, l.proc_off, proc).ok_or(EINVAL)?;
    for (i, t) in tasks.iter().enumerate() {
        put(&mut meta, l.tasks_off + (i * TaskImage::SIZE) as u64, t).ok_or(EINVAL)?;
    }
    let f = (l.fpu_off - META_OFF) as usize;
    meta.get_mut(f..f + fpu.len()).ok_or(EINVAL)?.copy_from_slice(fpu);
    let mut first = 0u64;
    for (i, o) in c.objs.iter().enumerate() {
        let oi = ObjImage { size: o.size, first, n_pages: o.pages.len() as u64, name_off: o.name.0, name_len: o.name.1, flags: 0, reserved: 0 };
        put(&mut meta, l.objs_off + (i * ObjImage::SIZE) as u64, &oi).ok_or(EINVAL)?;
        for (j, &p) in o.pages.iter().enumerate() {
            put(&mut meta, l.obj_pages_off + 8 * (first + j as u64), &p).ok_or(EINVAL)?;
        }
        first += o.pages.len() as u64;
    }
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
