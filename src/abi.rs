//! The shared ABI and on-pool format, compiled from the very files of the
//! user-space `cxlfork-abi` crate: one definition for module and tools.

#[path = "../rust/cxlfork-abi/src/crc.rs"]
#[allow(dead_code, unreachable_pub)]
pub(crate) mod crc;
#[path = "../rust/cxlfork-abi/src/pod.rs"]
#[allow(dead_code, unreachable_pub)]
pub(crate) mod pod;
#[path = "../rust/cxlfork-abi/src/pool.rs"]
#[allow(dead_code, unreachable_pub)]
pub(crate) mod pool;
#[path = "../rust/cxlfork-abi/src/uapi.rs"]
#[allow(dead_code, unreachable_pub)]
pub(crate) mod uapi;
