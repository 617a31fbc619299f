//! The pool's kernel mapping: a `memremap()`ed physical range, read and
//! written only through bounds-checked copies.
//!
//! Reads invalidate the cache lines first (another host may have written them);
//! writes use non-temporal stores and a fence, so they reach the device before
//! whatever is written next. Nothing is ever parsed in place: callers copy
//! bytes out and validate the copy, so another host cannot change what was
//! validated.

use crate::abi::pod::Pod;
use crate::ffi;
use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::prelude::*;

/// A write-back kernel mapping of a physical range of device memory.
///
/// # Invariants
///
/// `base` is the start of a live `memremap(MEMREMAP_WB)` mapping of `size`
/// bytes at physical address `phys`, unmapped only by `drop`. `pgmap` is a
/// reference on the ZONE_DEVICE (device-dax) page map covering the range
/// (its pages are refcounted struct pages, and its device cannot go away),
/// dropped only by `drop`.
pub(crate) struct PoolMap {
    base: NonNull<u8>,
    phys: u64,
    size: u64,
    pgmap: NonNull<c_void>,
}

// SAFETY: the mapping is plain memory usable from any CPU; all access goes
// through `&self` methods that copy with the kernel's own primitives.
unsafe impl Send for PoolMap {}
// SAFETY: as above; concurrent copies to the same bytes are the callers'
// concern (they serialise on the pool lock), never memory unsafety in Rust.
unsafe impl Sync for PoolMap {}

impl PoolMap {
    /// Maps `[phys, phys + size)`, which must be one device-dax range.
    pub(crate) fn new(phys: u64, size: u64) -> Result<Self> {
        // SAFETY: reads the page maps; returns a referenced map or NULL.
        let pgmap = NonNull::new(unsafe { ffi::cxlfork_pool_pin_pages(phys, size) }).ok_or(EINVAL)?;
        // SAFETY: `memremap` validates its arguments and returns NULL on failure.
        let p = unsafe { ffi::cxlfork_memremap_wb(phys, size) };
        let Some(base) = NonNull::new(p.cast::<u8>()) else {
            // SAFETY: we hold this reference, dropped once, here.
            unsafe { ffi::cxlfork_pool_unpin_pages(pgmap.as_ptr()) };
            return Err(ENOMEM);
        };
        // INVARIANT: `base` maps `size` bytes at `phys`; `pgmap` is referenced.
        Ok(Self { base, phys, size, pgmap })
    }

    /// Physical address of the range.
    pub(crate) fn phys(&self) -> u64 {
        self.phys
    }

    /// Size of the range in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Kernel address of `off..off + len`, which must lie inside the range.
    fn at(&self, off: u64, len: usize) -> Result<*mut c_void> {
        let end = off.checked_add(len as u64).ok_or(EINVAL)?;
        if end > self.size {
            return Err(EINVAL);
        }
        // SAFETY: `off + len <= size`, so the pointer stays inside the mapping (invariant).
        Ok(unsafe { self.base.as_ptr().add(off as usize) }.cast::<c_void>())
    }

    /// Copies `out.len()` bytes at pool offset `off` into `out`.
    pub(crate) fn read(&self, off: u64, out: &mut [u8]) -> Result {
        let src = self.at(off, out.len())?;
        // SAFETY: `src` is valid for `out.len()` bytes (checked by `at`), `out` is a distinct
        // kernel buffer of that length.
        unsafe { ffi::cxlfork_pool_read(out.as_mut_ptr().cast::<c_void>(), src, out.len()) };
        Ok(())
    }

    /// Copies `data` to pool offset `off`, flushed to the device.
    pub(crate) fn write(&self, off: u64, data: &[u8]) -> Result {
        let dst = self.at(off, data.len())?;
        // SAFETY: `dst` is valid for `data.len()` bytes (checked by `at`), `data` is a distinct
        // kernel buffer of that length.
        unsafe { ffi::cxlfork_pool_write(dst, data.as_ptr().cast::<c_void>(), data.len()) };
        Ok(())
    }

    /// Zeroes `len` bytes at pool offset `off`, flushed to the device.
    pub(crate) fn zero(&self, off: u64, len: usize) -> Result {
        let dst = self.at(off, len)?;
        // SAFETY: `dst` is valid for `len` bytes (checked by `at`).
        unsafe { ffi::cxlfork_pool_zero(dst, len) };
        Ok(())
    }

    /// Drops this host's cached lines of pool bytes `off..off + len` (before
    /// they are mapped into a clone: another host may have rewritten them).
    pub(crate) fn invalidate(&self, off: u64, len: usize) -> Result {
        let p = self.at(off, len)?;
        // SAFETY: `p` is valid for `len` bytes (checked by `at`); flushing
        // cache lines does not change memory contents.
        unsafe { ffi::cxlfork_pool_invalidate(p.cast_const(), len) };
        Ok(())
    }

    /// A full fence: the pool writes before it are visible to every host
    /// before the reads after it (the store-load order a lease handshake
    /// needs).
    pub(crate) fn fence(&self) {
        // SAFETY: a memory barrier, no preconditions.
        unsafe { ffi::cxlfork_pool_fence() };
    }

    /// Runs `f` with the kernel address of pool bytes `off..off + len`, which
    /// must lie inside the range; `f` may write them (the caller owns them).
    pub(crate) fn with_dst<R>(&self, off: u64, len: usize, f: impl FnOnce(*mut c_void) -> Result<R>) -> Result<R> {
        f(self.at(off, len)?)
    }

    /// Reads a plain-old-data struct at `off`.
    pub(crate) fn read_pod<T: Pod>(&self, off: u64) -> Result<T> {
        let mut v = T::zeroed();
        self.read(off, v.as_bytes_mut())?;
        Ok(v)
    }

    /// Writes a plain-old-data struct at `off`.
    pub(crate) fn write_pod<T: Pod>(&self, off: u64, v: &T) -> Result {
        self.write(off, v.as_bytes())
    }
}

impl Drop for PoolMap {
    fn drop(&mut self) {
        // SAFETY: `base` is a live `memremap` mapping (invariant), unmapped once, here.
        unsafe { ffi::cxlfork_memunmap(self.base.as_ptr().cast::<c_void>()) };
        // SAFETY: we hold this reference (invariant), dropped once, here,
        // after the mapping of the range is gone.
        unsafe { ffi::cxlfork_pool_unpin_pages(self.pgmap.as_ptr()) };
    }
}
