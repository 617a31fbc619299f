//! `/dev/cxlfork`: the misc device and its ioctl dispatch.

use crate::abi::uapi::{self, PoolAttach, PoolInfo};
use crate::kernel_util;
use crate::pool::Pool;
use crate::uaccess::{read_versioned, write_versioned};
use crate::POOL;
use kernel::fs::File;
use kernel::miscdevice::{MiscDevice, MiscDeviceRegistration};
use kernel::prelude::*;

/// `_IOC_DIR` bits of a command.
const fn ioc_dir(cmd: u32) -> u32 {
    cmd >> 30
}

/// An open `/dev/cxlfork`: no per-file state yet; the pool is per host.
pub(crate) struct CxlforkDevice;

#[vtable]
impl MiscDevice for CxlforkDevice {
    type Ptr = ();

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<()> {
        Ok(())
    }

    fn ioctl(_me: (), _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let (ty, nr) = uapi::ioc_type_nr(cmd);
        if ty != uapi::IOC_MAGIC {
            return Err(ENOTTY);
        }
        // Dispatch on number and direction, not on the size bits: the structs
        // carry their own size so they can grow.
        let expect_dir = match nr {
            uapi::NR_POOL_ATTACH => ioc_dir(uapi::IOC_POOL_ATTACH),
            uapi::NR_POOL_INFO => ioc_dir(uapi::IOC_POOL_INFO),
            uapi::NR_POOL_DETACH => ioc_dir(uapi::IOC_POOL_DETACH),
            _ => return Err(ENOTTY),
        };
        if ioc_dir(cmd) != expect_dir {
            return Err(ENOTTY);
        }
        match nr {
            uapi::NR_POOL_ATTACH => pool_attach(arg),
            uapi::NR_POOL_INFO => pool_info(arg),
            _ => pool_detach(),
        }
        .map(|()| 0)
    }
}

fn pool_attach(arg: usize) -> Result {
    if !kernel_util::capable_sys_admin() {
        return Err(EPERM);
    }
    let (req, _) = read_versioned::<PoolAttach>(arg, uapi::min_size::POOL_ATTACH)?;
    let mut pool = POOL.lock();
    if pool.is_some() {
        return Err(EBUSY);
    }
    *pool = Some(Pool::attach(&req)?);
    Ok(())
}

fn pool_info(arg: usize) -> Result {
    let (_, size) = read_versioned::<PoolInfo>(arg, uapi::min_size::POOL_INFO)?;
    let mut info = POOL.lock().as_ref().ok_or(ENODEV)?.info();
    info.size = size.min(PoolInfo::SIZE) as u32;
    write_versioned(arg, size, &info)
}

fn pool_detach() -> Result {
    if !kernel_util::capable_sys_admin() {
        return Err(EPERM);
    }
    POOL.lock().take().ok_or(ENODEV)?.detach();
    Ok(())
}
