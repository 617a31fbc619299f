//! Raw declarations of the C shims (`shim.c`, `shim_task.c`,
//! `shim_restore.c`). Only the thin wrappers in `pool_map.rs`,
//! `kernel_util.rs`, `target.rs`, `clone.rs` and `restore.rs` call these.

use core::ffi::c_void;

unsafe extern "C" {
    pub(crate) fn cxlfork_check_range(phys: u64, size: u64) -> i32;
    pub(crate) fn cxlfork_pool_pin_pages(phys: u64, size: u64) -> *mut c_void;
    pub(crate) fn cxlfork_pool_unpin_pages(pgmap: *mut c_void);
    pub(crate) fn cxlfork_memremap_wb(phys: u64, size: u64) -> *mut c_void;
    pub(crate) fn cxlfork_memunmap(addr: *mut c_void);
    pub(crate) fn cxlfork_pool_read(dst: *mut c_void, src: *const c_void, len: usize);
    pub(crate) fn cxlfork_pool_write(dst: *mut c_void, src: *const c_void, len: usize);
    pub(crate) fn cxlfork_pool_zero(dst: *mut c_void, len: usize);
    pub(crate) fn cxlfork_pool_invalidate(addr: *const c_void, len: usize);
    pub(crate) fn cxlfork_pool_fence();
    pub(crate) fn cxlfork_capable_sys_admin() -> bool;
    pub(crate) fn cxlfork_realtime_ns() -> u64;
    pub(crate) fn cxlfork_random_u64() -> u64;
    pub(crate) fn cxlfork_random_uuid(out: *mut u8);
    pub(crate) fn cxlfork_nodename(buf: *mut u8, len: usize);
}

/// `struct cxlfork_task_state` of `shim.h`: one thread's state as the shim
/// reads it from a target and installs it into current.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct TaskState {
    pub(crate) regs: [u64; 21],
    pub(crate) fs_base: u64,
    pub(crate) gs_base: u64,
    pub(crate) origin: u64,
    pub(crate) blocked: u64,
    pub(crate) ss_sp: u64,
    pub(crate) ss_size: u64,
    pub(crate) ss_flags: u32,
    pub(crate) pkru: u32,
    pub(crate) rseq: u64,
    pub(crate) rseq_len: u32,
    pub(crate) rseq_sig: u32,
    pub(crate) rseq_version: u32,
    pub(crate) tid: u32,
    pub(crate) robust_list: u64,
    pub(crate) robust_len: u64,
    pub(crate) clear_child_tid: u64,
    pub(crate) timer_slack_ns: u64,
    pub(crate) comm: [u8; 16],
    pub(crate) nice: i32,
    pub(crate) policy: u32,
    pub(crate) rt_priority: u32,
    pub(crate) pad: u32,
}

/// `struct cxlfork_proc_state` of `shim.h`: process-wide state.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct ProcState {
    pub(crate) actions: [[u64; 4]; 64],
    pub(crate) rlim: [[u64; 2]; 16],
    pub(crate) personality: u64,
    pub(crate) mm_flags: u64,
    pub(crate) umask: u32,
    pub(crate) proc_flags: u32,
    pub(crate) dumpable: u32,
    pub(crate) coredump_filter: u32,
    pub(crate) pkey_map: u32,
    pub(crate) exec_only_pkey: u32,
    pub(crate) realtime_ns: u64,
    pub(crate) monotonic_ns: u64,
    pub(crate) boottime_ns: u64,
}

// The C side has the same layout (no padding: every field is naturally aligned).
const _: () = assert!(core::mem::size_of::<TaskState>() == 8 * (21 + 2 + 1 + 1 + 2 + 1 + 1 + 2 + 3 + 1 + 2 + 2));
const _: () = assert!(core::mem::size_of::<ProcState>() == 8 * (256 + 32 + 2 + 3 + 3));

impl TaskState {
    /// All zero.
    pub(crate) fn zeroed() -> Self {
        // SAFETY: a struct of integers: all-zero bytes are a valid value.
        unsafe { core::mem::zeroed() }
    }
}

impl ProcState {
    /// All zero, on the heap (too large for a kernel stack frame).
    pub(crate) fn boxed() -> kernel::prelude::Result<kernel::prelude::KBox<Self>> {
        use kernel::alloc::flags::{GFP_KERNEL, __GFP_ZERO};
        let b = kernel::prelude::KBox::<Self>::new_uninit(GFP_KERNEL | __GFP_ZERO)?;
        // SAFETY: `__GFP_ZERO` zeroed it; all-zero bytes are a valid value of
        // this struct of integers.
        Ok(unsafe { b.assume_init() })
    }
}

/// `CXLFORK_COPY_SKIP_ZERO`: leave all-zero pages out of a copy.
pub(crate) const COPY_SKIP_ZERO: u32 = 1;
/// `CXLFORK_COPY_SKIP_FILE`: leave a file's own page-cache pages out of a copy.
pub(crate) const COPY_SKIP_FILE: u32 = 2;

/// Opaque `struct cxlfork_rgroup` of `shim_rgroup.c`.
#[repr(C)]
pub(crate) struct CxlforkRgroup {
    _private: [u8; 0],
}

/// Opaque `struct cxlfork_target` of `shim_task.c`.
#[repr(C)]
pub(crate) struct CxlforkTarget {
    _private: [u8; 0],
}

unsafe extern "C" {
    pub(crate) fn cxlfork_target_get(pid: i32, mem_fd: i32, purpose: i32, out: *mut *mut CxlforkTarget) -> i32;
    pub(crate) fn cxlfork_target_put(t: *mut CxlforkTarget);
    pub(crate) fn cxlfork_target_is_self(t: *const CxlforkTarget) -> bool;
    pub(crate) fn cxlfork_target_run(t: *mut CxlforkTarget, arg: *mut c_void, after: i32, pin: *mut KFile) -> i32;
    pub(crate) fn cxlfork_target_task(t: *mut CxlforkTarget, out: *mut TaskState) -> i32;
    pub(crate) fn cxlfork_target_fpu(t: *mut CxlforkTarget, buf: *mut c_void, buflen: u32, len: *mut u32, xfeatures: *mut u64) -> i32;
    pub(crate) fn cxlfork_target_park(t: *mut CxlforkTarget, pin: *mut KFile) -> i32;
    pub(crate) fn cxlfork_target_park_count(t: *const CxlforkTarget) -> u32;
    pub(crate) fn cxlfork_target_park_thread(t: *const CxlforkTarget, i: u32, s: *mut TaskState, fpu: *mut c_void, cap: u32, len: *mut u32, xfeatures: *mut u64) -> i32;
    pub(crate) fn cxlfork_target_proc(t: *mut CxlforkTarget, out: *mut ProcState) -> i32;
    pub(crate) fn cxlfork_target_path(t: *mut CxlforkTarget, which: i32, buf: *mut u8, len: usize) -> i32;
    pub(crate) fn cxlfork_target_mm(t: *mut CxlforkTarget, out: *mut u64, auxv_words: u32);
    pub(crate) fn cxlfork_target_ids(t: *mut CxlforkTarget, uid: *mut u32, gid: *mut u32, pid: *mut u32, comm: *mut u8);
    pub(crate) fn cxlfork_kernel_release(buf: *mut u8, len: usize);
    pub(crate) fn cxlfork_mm_read_lock(t: *mut CxlforkTarget) -> i32;
    pub(crate) fn cxlfork_mm_read_unlock(t: *mut CxlforkTarget);
    pub(crate) fn cxlfork_vma_next(t: *mut CxlforkTarget, addr: u64, fork_only: bool, out: *mut u64, path: *mut u8, pathlen: usize) -> i32;
    pub(crate) fn cxlfork_read_leaf(t: *mut CxlforkTarget, addr: u64, ptes: *mut u64) -> i32;
    pub(crate) fn cxlfork_pte_is_zero_page(pte: u64) -> bool;
    pub(crate) fn cxlfork_copy_pages(t: *mut CxlforkTarget, addr: u64, n: u32, dst: *mut c_void, mode: u32, copied: *mut u64) -> i32;
    pub(crate) fn cxlfork_file_identity(file: *mut KFile, size: *mut u64, mtime_ns: *mut u64);
    pub(crate) fn cxlfork_file_next(t: *mut CxlforkTarget, fd: u32, out: *mut u64, path: *mut u8, pathlen: usize, filep: *mut *mut KFile) -> i32;
    pub(crate) fn cxlfork_vma_file(t: *mut CxlforkTarget, addr: u64) -> *mut KFile;
    pub(crate) fn cxlfork_file_get(file: *mut KFile) -> *mut KFile;
    pub(crate) fn cxlfork_file_key(file: *mut KFile) -> u64;
    pub(crate) fn cxlfork_file_is_shared_anon(file: *mut KFile) -> bool;
    pub(crate) fn cxlfork_file_seek(file: *mut KFile, off: u64, whence: i32) -> i64;
    pub(crate) fn cxlfork_file_read_page(file: *mut KFile, pos: u64, buf: *mut c_void) -> i32;
    pub(crate) fn cxlfork_file_kind(file: *mut KFile) -> u32;
    pub(crate) fn cxlfork_file_fdinfo(file: *mut KFile, buf: *mut u8, len: usize) -> isize;
    pub(crate) fn cxlfork_pipe_peek(file: *mut KFile, capacity: *mut u64, packet: *mut bool, buf: *mut u8, len: usize) -> isize;
    pub(crate) fn cxlfork_file_writable(file: *mut KFile) -> bool;
    pub(crate) fn cxlfork_file_ino(file: *mut KFile) -> u64;
    pub(crate) fn cxlfork_file_flags(file: *mut KFile) -> u32;
    pub(crate) fn cxlfork_file_write(file: *mut KFile, buf: *const u8, len: usize) -> isize;
    pub(crate) fn cxlfork_current_fd_file(fd: u32) -> *mut KFile;
    pub(crate) fn cxlfork_current_fd_cloexec(fd: u32) -> bool;
    pub(crate) fn cxlfork_current_euid() -> u32;
    pub(crate) fn cxlfork_uid_for_caller(uid: u32) -> u32;
    pub(crate) fn cxlfork_gid_for_caller(gid: u32) -> u32;
    pub(crate) fn cxlfork_monotonic_ns() -> u64;
}

/// Opaque `struct vm_area_struct`.
#[repr(C)]
pub(crate) struct VmArea {
    _private: [u8; 0],
}

/// Opaque `struct file`.
#[repr(C)]
pub(crate) struct KFile {
    _private: [u8; 0],
}

/// Opaque `struct cxlfork_cvma` of `shim_restore.c`: a clone VMA's state.
#[repr(C)]
pub(crate) struct Cvma {
    _private: [u8; 0],
}

/// `CXLFORK_FAULT_FALLBACK` of `shim.h`: the page is not (or no longer) the
/// image's; the shim gives what any process reads there.
pub(crate) const FAULT_FALLBACK: u32 = 0x8000_0000;

unsafe extern "C" {
    pub(crate) fn cxlfork_module_pin_file() -> *mut KFile;
    pub(crate) fn cxlfork_cvma_alloc(ias: *const u64, n: u32) -> *mut Cvma;
    pub(crate) fn cxlfork_cvma_free(cv: *mut Cvma);
    pub(crate) fn cxlfork_cvma_addr(cv: *const Cvma, vma: *const VmArea, ia: u64) -> u64;
    pub(crate) fn cxlfork_cvma_installed(cv: *const Cvma, ia: u64) -> bool;
    pub(crate) fn cxlfork_cvma_set_installed(cv: *mut Cvma, ia: u64);
    pub(crate) fn cxlfork_vma_prot(vma: *const VmArea) -> u32;
    pub(crate) fn cxlfork_make_clone_vma(
        addr: u64,
        len: u64,
        ctx: *const c_void,
        cv: *mut Cvma,
        img: u32,
        img_start: u64,
        img_pgoff: u64,
        wipe: bool,
    ) -> i32;
    pub(crate) fn cxlfork_vma_insert_pfn(vma: *mut VmArea, addr: u64, pfn: u64) -> u32;
    pub(crate) fn cxlfork_vma_insert_copy(vma: *mut VmArea, addr: u64, src: *const c_void) -> u32;
    pub(crate) fn cxlfork_pkeys_usable() -> bool;
    pub(crate) fn cxlfork_totalram_pages() -> u64;
    pub(crate) fn cxlfork_current_threads() -> u32;
    pub(crate) fn cxlfork_current_shares_state() -> bool;
    pub(crate) fn cxlfork_check_special(start: u64, end: u64, name: *const u8) -> i32;
    pub(crate) fn cxlfork_check_caller(total_pages: u64, data_pages: u64, n_maps: u32) -> i32;
    pub(crate) fn cxlfork_probe_map(file: *mut KFile, addr: u64, len: u64, prot: u64, flags: u64, off: u64) -> i32;
    pub(crate) fn cxlfork_unmap_all_but_special() -> i32;
    pub(crate) fn cxlfork_vm_mmap(file: *mut KFile, addr: u64, len: u64, prot: u64, flags: u64, off: u64) -> i64;
    pub(crate) fn cxlfork_vma_set_flags(addr: u64, len: u64, image_flags: u64);
    pub(crate) fn cxlfork_shmem_create(name: *const u8, size: u64) -> *mut KFile;
    pub(crate) fn cxlfork_file_write_page(file: *mut KFile, pos: u64, src: *const c_void) -> i32;
    pub(crate) fn cxlfork_set_mm(w: *const u64, auxv_words: u32, p: *const ProcState);
    pub(crate) fn cxlfork_task_check(s: *const TaskState) -> i32;
    pub(crate) fn cxlfork_task_prepare(s: *const TaskState, pin: *mut KFile) -> *mut c_void;
    pub(crate) fn cxlfork_task_discard(prepared: *mut c_void);
    pub(crate) fn cxlfork_rgroup_follow(id: u64, ax: *mut core::ffi::c_long) -> i32;
    pub(crate) fn cxlfork_rgroup_lead(id: u64, n: u32, out: *mut *mut CxlforkRgroup) -> i32;
    pub(crate) fn cxlfork_rgroup_stage(g: *mut CxlforkRgroup, k: u32, prepared: *mut c_void, fpu: *const c_void, fpu_len: u32, ax: core::ffi::c_long, personality: u64, nnp: bool) -> i32;
    pub(crate) fn cxlfork_rgroup_commit(g: *mut CxlforkRgroup) -> i32;
    pub(crate) fn cxlfork_rgroup_go(g: *mut CxlforkRgroup, leader_ctid: u64, failed: bool);
    pub(crate) fn cxlfork_rgroup_abort(g: *mut CxlforkRgroup, err: i32);
    pub(crate) fn cxlfork_forget_user_addresses();
    pub(crate) fn cxlfork_task_set(prepared: *mut c_void);
    pub(crate) fn cxlfork_fpu_check(buf: *const c_void, len: u32, xfeatures: u64) -> i32;
    pub(crate) fn cxlfork_fpu_set(buf: *const c_void, len: u32);
    pub(crate) fn cxlfork_proc_check(p: *const ProcState) -> i32;
    pub(crate) fn cxlfork_proc_set(p: *const ProcState);
    pub(crate) fn cxlfork_file_open(path: *const u8, flags: u32, pos: u64, seek: bool) -> *mut KFile;
    pub(crate) fn cxlfork_file_put(f: *mut KFile);
    pub(crate) fn cxlfork_fd_prepare(max_fd: u32) -> i32;
    pub(crate) fn cxlfork_close_fds_from(first: u32, keep: *const u32, n_keep: u32);
    pub(crate) fn cxlfork_install_fds(files: *const *mut KFile, fds: *const u32, cloexec: *const bool, n: u32, first: u32) -> i32;
    pub(crate) fn cxlfork_kill_current();
    pub(crate) fn cxlfork_clone_vmas_settle();
    pub(crate) fn cxlfork_exe_prepare(exe: *mut KFile) -> i32;
    pub(crate) fn cxlfork_exe_discard(exe: *mut KFile);
    pub(crate) fn cxlfork_exe_install(exe: *mut KFile);
    pub(crate) fn cxlfork_target_clone_ctx(t: *mut CxlforkTarget) -> *const c_void;
}
