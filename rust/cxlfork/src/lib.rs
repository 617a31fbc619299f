//! Safe Rust interface to `/dev/cxlfork`, the cxlfork kernel module.
//!
//! ```no_run
//! let dev = cxlfork::Device::open()?;
//! let info = dev.pool_info()?;
//! println!("pool {} bytes, {} free", info.pool_size, info.free_bytes);
//! # Ok::<(), cxlfork::Error>(())
//! ```

pub mod dax;
mod device;
mod error;
pub mod image;

pub use cxlfork_abi::{dir::id_host, uapi};
pub use device::{After, AttachOptions, CheckpointResult, Device, Forked, Policy, DEVICE_PATH};
pub use error::{Error, Op, Result};
