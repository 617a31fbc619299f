//! Safe wrappers over small kernel facilities reached through the shim.

use crate::ffi;
use kernel::prelude::*;

/// Whether the caller has `CAP_SYS_ADMIN` (audited, like `capable()`).
pub(crate) fn capable_sys_admin() -> bool {
    // SAFETY: `capable()` only inspects the current task's credentials.
    unsafe { ffi::cxlfork_capable_sys_admin() }
}

/// `CLOCK_REALTIME` in ns.
pub(crate) fn realtime_ns() -> u64 {
    // SAFETY: reads the clock, no preconditions.
    unsafe { ffi::cxlfork_realtime_ns() }
}

/// `CLOCK_MONOTONIC` in ns.
pub(crate) fn monotonic_ns() -> u64 {
    // SAFETY: reads the clock, no preconditions.
    unsafe { ffi::cxlfork_monotonic_ns() }
}

/// The caller's effective uid as the kernel knows it (initial user
/// namespace): what images are owned by and compared with.
pub(crate) fn current_euid() -> u32 {
    // SAFETY: reads the current task's credentials.
    unsafe { ffi::cxlfork_current_euid() }
}

/// A kernel gid (initial namespace) as the caller's user namespace shows it.
pub(crate) fn gid_for_caller(gid: u32) -> u32 {
    // SAFETY: reads the current task's credentials.
    unsafe { ffi::cxlfork_gid_for_caller(gid) }
}

/// A kernel uid (initial namespace) as the caller's user namespace shows
/// it (the overflow uid if it has no mapping there).
pub(crate) fn uid_for_caller(uid: u32) -> u32 {
    // SAFETY: reads the current task's credentials.
    unsafe { ffi::cxlfork_uid_for_caller(uid) }
}

/// A random u64.
pub(crate) fn random_u64() -> u64 {
    // SAFETY: no preconditions.
    unsafe { ffi::cxlfork_random_u64() }
}

/// A random (version 4) uuid.
pub(crate) fn random_uuid() -> [u8; 16] {
    let mut u = [0u8; 16];
    // SAFETY: `u` is 16 writable bytes, what `generate_random_uuid` fills.
    unsafe { ffi::cxlfork_random_uuid(u.as_mut_ptr()) };
    u
}

/// This host's node name (uts namespace of the caller), NUL-padded.
pub(crate) fn nodename() -> [u8; 64] {
    let mut n = [0u8; 64];
    // SAFETY: `n` is `n.len()` writable bytes; `strscpy` NUL-terminates within them.
    unsafe { ffi::cxlfork_nodename(n.as_mut_ptr(), n.len()) };
    n
}

/// Classification of a physical range by the iomem resource tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeKind {
    /// Inside a CXL window.
    Cxl,
    /// Inside other device memory (not RAM, not CXL).
    Device,
}

/// Checks `[phys, phys + size)` is not System RAM and is either a claimed
/// range (a bound region) inside a CXL window or inside other device memory.
pub(crate) fn classify_range(phys: u64, size: u64) -> Result<RangeKind> {
    // SAFETY: `region_intersects` only reads the resource tree under its lock.
    match unsafe { ffi::cxlfork_check_range(phys, size) } {
        1 => Ok(RangeKind::Cxl),
        0 => Ok(RangeKind::Device),
        _ => Err(EINVAL),
    }
}

/// Allocation flags for memory sized by an image or kept as long as a
/// clone lives: charged to the caller's memory cgroup, and no allocator
/// warning for a size an image asks for (the request fails with ENOMEM).
pub(crate) fn image_gfp() -> kernel::alloc::Flags {
    kernel::alloc::flags::GFP_KERNEL_ACCOUNT | kernel::alloc::flags::__GFP_NOWARN
}

/// Sorts `v` in place (heapsort: no recursion, no allocation; core's
/// sort_unstable pulls in a panic path objtool cannot follow).
pub(crate) fn sort<T: Ord>(v: &mut [T]) {
    fn sift<T: Ord>(v: &mut [T], mut root: usize, end: usize) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end && v[child] < v[child + 1] {
                child += 1;
            }
            if v[root] >= v[child] {
                return;
            }
            v.swap(root, child);
            root = child;
        }
    }
    let n = v.len();
    for i in (0..n / 2).rev() {
        sift(v, i, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift(v, 0, end);
    }
}
