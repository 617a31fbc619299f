//! `/dev/cxlfork` and its ioctls.

use crate::error::{Error, Op, Result};
use cxlfork_abi::pod::Pod;
use cxlfork_abi::uapi::{self, PoolAttach, PoolInfo};
use rustix::fs::{open, Mode, OFlags};
use rustix::ioctl::{ioctl, NoArg, Setter, Updater};
use std::os::fd::OwnedFd;
use std::path::Path;

/// Where the module's misc device appears.
pub const DEVICE_PATH: &str = "/dev/cxlfork";

/// An open `/dev/cxlfork`.
#[derive(Debug)]
pub struct Device {
    fd: OwnedFd,
}

/// Arguments of [`Device::attach`].
#[derive(Clone, Copy, Debug, Default)]
pub struct AttachOptions {
    /// Physical address of the pool (2 MiB aligned).
    pub phys_base: u64,
    /// Its size in bytes (2 MiB aligned).
    pub phys_size: u64,
    /// This host's slot.
    pub host_id: u32,
    /// Write a new superblock (destroys the pool's contents).
    pub format: bool,
    /// With `format`: host slots (0: the default).
    pub max_hosts: u32,
    /// Claim the slot even if marked attached by a host that is gone.
    pub takeover: bool,
}

impl Device {
    /// Opens [`DEVICE_PATH`].
    pub fn open() -> Result<Self> {
        Self::open_path(Path::new(DEVICE_PATH))
    }

    /// Opens the device at `path`.
    pub fn open_path(path: &Path) -> Result<Self> {
        let fd = open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .map_err(|errno| Error::Kernel { op: Op::Open, errno })?;
        Ok(Self { fd })
    }

    /// `CXLFORK_IOC_POOL_ATTACH`.
    pub fn attach(&self, o: &AttachOptions) -> Result<()> {
        let mut flags = 0;
        if o.format {
            flags |= uapi::ATTACH_FORMAT;
        }
        if o.takeover {
            flags |= uapi::ATTACH_TAKEOVER;
        }
        let arg = PoolAttach {
            size: PoolAttach::SIZE as u32,
            flags,
            phys_base: o.phys_base,
            phys_size: o.phys_size,
            host_id: o.host_id,
            max_hosts: o.max_hosts,
        };
        // SAFETY: the opcode's direction and size match `PoolAttach`, which the
        // kernel only reads.
        unsafe { ioctl(&self.fd, Setter::<{ uapi::IOC_POOL_ATTACH }, PoolAttach>::new(arg)) }
            .map_err(|errno| Error::Kernel { op: Op::Attach, errno })
    }

    /// `CXLFORK_IOC_POOL_INFO`.
    pub fn pool_info(&self) -> Result<PoolInfo> {
        let mut info = PoolInfo::zeroed();
        info.size = PoolInfo::SIZE as u32;
        // SAFETY: the opcode's direction and size match `PoolInfo`, which the
        // kernel reads (`size`) and writes; any bytes it writes are a valid `PoolInfo`.
        unsafe { ioctl(&self.fd, Updater::<{ uapi::IOC_POOL_INFO }, PoolInfo>::new(&mut info)) }
            .map_err(|errno| Error::Kernel { op: Op::Info, errno })?;
        Ok(info)
    }

    /// `CXLFORK_IOC_POOL_DETACH`.
    pub fn detach(&self) -> Result<()> {
        // SAFETY: the command takes no argument.
        unsafe { ioctl(&self.fd, NoArg::<{ uapi::IOC_POOL_DETACH }>::new()) }
            .map_err(|errno| Error::Kernel { op: Op::Detach, errno })
    }
}
