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
