//! The shared ABI and on-pool format, compiled from the very files of the
//! user-space `cxlfork-abi` crate: one definition for module and tools.

#[path = "../rust/cxlfork-abi/src/crc.rs"]
#[allow(dead_code, unreachable_pub)]
pub(crate) mod crc;
#[path = "../rust/cxlfork-abi/src/dir.rs"]
#[allow(dead_code, unreachable_pub)]
pub(crate) mod dir;
#[path = "../rust/cxlfork-abi/src/image.rs"]
#[allow(dead_code, unreachable_pub)]
pub(crate) mod image;
#[path = "../rust/cxlfork-abi/src/pod.rs"]
#[allow(dead_code, unreachable_pub)]
pub(crate) mod pod;
#[path = "../rust/cxlfork-abi/src/pool.rs"]
#[allow(dead_code, unreachable_pub)]
pub(crate) mod pool;
#[path = "../rust/cxlfork-abi/src/uapi.rs"]
#[allow(dead_code, unreachable_pub)]
pub(crate) mod uapi;

use kernel::alloc::{flags::__GFP_ZERO, Flags, KBox};
use kernel::prelude::*;

/// A zeroed `T` on the heap (the image structs are too large for the
/// kernel stack).
pub(crate) fn boxed_zeroed<T: pod::Pod>(flags: Flags) -> Result<KBox<T>> {
    let b = KBox::<T>::new_uninit(flags | __GFP_ZERO)?;
    // SAFETY: `__GFP_ZERO` zeroed the memory, and all-zero bytes are a valid `T: Pod`.
    Ok(unsafe { b.assume_init() })
}
