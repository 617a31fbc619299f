//! Raw declarations of the C shim (`shim.c`). Only the thin wrappers in
//! `pool_map.rs` and `kernel_util.rs` call these.

use core::ffi::c_void;

unsafe extern "C" {
    pub(crate) fn cxlfork_check_range(phys: u64, size: u64) -> i32;
    pub(crate) fn cxlfork_memremap_wb(phys: u64, size: u64) -> *mut c_void;
    pub(crate) fn cxlfork_memunmap(addr: *mut c_void);
    pub(crate) fn cxlfork_pool_read(dst: *mut c_void, src: *const c_void, len: usize);
    pub(crate) fn cxlfork_pool_write(dst: *mut c_void, src: *const c_void, len: usize);
    pub(crate) fn cxlfork_pool_zero(dst: *mut c_void, len: usize);
    pub(crate) fn cxlfork_capable_sys_admin() -> bool;
    pub(crate) fn cxlfork_realtime_ns() -> u64;
    pub(crate) fn cxlfork_random_u64() -> u64;
    pub(crate) fn cxlfork_random_uuid(out: *mut u8);
    pub(crate) fn cxlfork_nodename(buf: *mut u8, len: usize);
}

/// Opaque `struct cxlfork_target` of `shim_task.c`.
#[repr(C)]
pub(crate) struct CxlforkTarget {
    _private: [u8; 0],
}

unsafe extern "C" {
    pub(crate) fn cxlfork_target_get(pid: i32, out: *mut *mut CxlforkTarget) -> i32;
    pub(crate) fn cxlfork_target_put(t: *mut CxlforkTarget);
    pub(crate) fn cxlfork_target_is_self(t: *const CxlforkTarget) -> bool;
    pub(crate) fn cxlfork_target_stop(t: *mut CxlforkTarget) -> i32;
    pub(crate) fn cxlfork_target_finish(t: *mut CxlforkTarget, how: i32);
    pub(crate) fn cxlfork_target_regs(t: *mut CxlforkTarget, out: *mut u64) -> i32;
    pub(crate) fn cxlfork_target_fpu(t: *mut CxlforkTarget, buf: *mut c_void, buflen: u32, len: *mut u32, xfeatures: *mut u64) -> i32;
    pub(crate) fn cxlfork_target_sig(t: *mut CxlforkTarget, out: *mut u64);
    pub(crate) fn cxlfork_target_mm(t: *mut CxlforkTarget, out: *mut u64, auxv_words: u32);
    pub(crate) fn cxlfork_target_ids(t: *mut CxlforkTarget, uid: *mut u32, gid: *mut u32, pid: *mut u32, comm: *mut u8);
    pub(crate) fn cxlfork_kernel_release(buf: *mut u8, len: usize);
    pub(crate) fn cxlfork_mm_read_lock(t: *mut CxlforkTarget) -> i32;
    pub(crate) fn cxlfork_mm_read_unlock(t: *mut CxlforkTarget);
    pub(crate) fn cxlfork_vma_next(t: *mut CxlforkTarget, addr: u64, out: *mut u64, path: *mut u8, pathlen: usize) -> i32;
    pub(crate) fn cxlfork_read_leaf(t: *mut CxlforkTarget, addr: u64, ptes: *mut u64) -> i32;
    pub(crate) fn cxlfork_pte_is_zero_page(pte: u64) -> bool;
    pub(crate) fn cxlfork_copy_pages(t: *mut CxlforkTarget, addr: u64, n: u32, dst: *mut c_void) -> i32;
    pub(crate) fn cxlfork_file_next(t: *mut CxlforkTarget, fd: u32, out: *mut u64, path: *mut u8, pathlen: usize) -> i32;
    pub(crate) fn cxlfork_current_euid() -> u32;
    pub(crate) fn cxlfork_monotonic_ns() -> u64;
}

/// Opaque `struct vm_area_struct` / `struct file` as the shims pass them.
#[repr(C)]
pub(crate) struct VmArea {
    _private: [u8; 0],
}

/// Opaque `struct file`.
#[repr(C)]
pub(crate) struct KFile {
    _private: [u8; 0],
}

unsafe extern "C" {
    pub(crate) fn cxlfork_module_pin_file() -> *mut KFile;
    pub(crate) fn cxlfork_make_clone_vma(addr: u64, len: u64, ctx: *const c_void) -> i32;
    pub(crate) fn cxlfork_vma_start(vma: *mut VmArea) -> u64;
    pub(crate) fn cxlfork_vma_end(vma: *mut VmArea) -> u64;
    pub(crate) fn cxlfork_vma_insert_pfn(vma: *mut VmArea, addr: u64, pfn: u64) -> u32;
    pub(crate) fn cxlfork_vma_insert_zero(vma: *mut VmArea, addr: u64) -> u32;
    pub(crate) fn cxlfork_vma_insert_copy(vma: *mut VmArea, addr: u64, src: *const c_void) -> u32;
    pub(crate) fn cxlfork_vma_insert_file(vma: *mut VmArea, addr: u64, file: *mut KFile, pos: u64) -> u32;
    pub(crate) fn cxlfork_current_single_threaded() -> bool;
    pub(crate) fn cxlfork_check_special(start: u64, end: u64, name: *const u8) -> i32;
    pub(crate) fn cxlfork_unmap_all_but_special() -> i32;
    pub(crate) fn cxlfork_vm_mmap(file: *mut KFile, addr: u64, len: u64, prot: u64, flags: u64, off: u64) -> i64;
    pub(crate) fn cxlfork_prefault_write(addr: u64, n: u32) -> i32;
    pub(crate) fn cxlfork_copy_to_user_page(addr: u64, src: *const c_void) -> i32;
    pub(crate) fn cxlfork_set_mm(w: *const u64, auxv_words: u32);
    pub(crate) fn cxlfork_check_regs(r: *const u64) -> i32;
    pub(crate) fn cxlfork_set_regs(r: *const u64, ax: u64);
    pub(crate) fn cxlfork_fpu_check(buf: *const c_void, len: u32, xfeatures: u64) -> i32;
    pub(crate) fn cxlfork_fpu_set(buf: *const c_void, len: u32);
    pub(crate) fn cxlfork_sig_check(s: *const u64) -> i32;
    pub(crate) fn cxlfork_sig_set(s: *const u64);
    pub(crate) fn cxlfork_set_comm(comm: *const u8);
    pub(crate) fn cxlfork_file_open(path: *const u8, flags: u32, pos: u64, seek: bool) -> *mut KFile;
    pub(crate) fn cxlfork_file_put(f: *mut KFile);
    pub(crate) fn cxlfork_close_fds_from(first: u32);
    pub(crate) fn cxlfork_install_fd(file: *mut KFile, fd: u32, cloexec: bool) -> i32;
    pub(crate) fn cxlfork_kill_current();
    pub(crate) fn cxlfork_vma_pgoff(vma: *mut VmArea) -> u64;
    pub(crate) fn cxlfork_target_clone_ctx(t: *mut CxlforkTarget) -> *const c_void;
}
