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
