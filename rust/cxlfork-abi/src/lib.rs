//! cxlfork's ABI (the ioctl structs of `include/uapi/linux/cxlfork.h`) and the
//! on-pool format, defined once.
//!
//! The kernel module compiles the very same files (`src/abi.rs` of the module
//! includes them with `#[path]`), so every file here is `no_std`, allocation
//! free, and refers to its siblings through `super::` only.
#![no_std]

pub mod crc;
pub mod dir;
pub mod image;
pub mod pod;
pub mod pool;
pub mod uapi;
