//! Copying versioned ioctl structs (leading `u32 size`) to and from user space.
//!
//! Rules (as `copy_struct_from_user`): a caller may pass any size from the
//! first published one up to one page. Input past what this module knows must
//! be zero (E2BIG otherwise); output is truncated to the caller's size.

use crate::abi::pod::Pod;
use kernel::prelude::*;
use kernel::uaccess::{UserPtr, UserSlice};

/// Largest struct size accepted from a caller.
const MAX_STRUCT: usize = 4096;

/// Reads a `T` whose first field is its `u32` size, at user address `arg`.
/// Returns the value and the caller's size.
pub(crate) fn read_versioned<T: Pod>(arg: usize, min: usize) -> Result<(T, usize)> {
    let ptr = UserPtr::from_addr(arg);
    let size = UserSlice::new(ptr, 4).reader().read::<u32>()? as usize;
    if size < min {
        return Err(EINVAL);
    }
    if size > MAX_STRUCT {
        return Err(E2BIG);
    }
    let mut v = T::zeroed();
    let n = size.min(core::mem::size_of::<T>());
    let mut r = UserSlice::new(ptr, size).reader();
    r.read_slice(&mut v.as_bytes_mut()[..n])?;
    let mut rest = [0u8; 64];
    while !r.is_empty() {
        let k = r.len().min(rest.len());
        r.read_slice(&mut rest[..k])?;
        if rest[..k].iter().any(|&b| b != 0) {
            return Err(E2BIG);
        }
    }
    Ok((v, size))
}

/// Writes `v` to user address `arg`, truncated to the caller's `size`.
pub(crate) fn write_versioned<T: Pod>(arg: usize, size: usize, v: &T) -> Result {
    let n = size.min(core::mem::size_of::<T>());
    UserSlice::new(UserPtr::from_addr(arg), n).writer().write_slice(&v.as_bytes()[..n])
}
