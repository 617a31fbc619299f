//! `/dev/cxlfork`: the misc device and its ioctl dispatch.

use crate::abi::pod::Pod;
use crate::abi::uapi::{self, Checkpoint, CloneStat, Delete, List, PoolAttach, PoolInfo, Read, Restore, RestoreThread, Stat};
use crate::pool::Pool;
use crate::uaccess::{read_versioned, write_versioned};
use crate::target::Target;
use crate::{checkpoint, images, kernel_util, restore, restore_group, POOL};
use kernel::fs::File;
use kernel::miscdevice::{MiscDevice, MiscDeviceRegistration};
use kernel::prelude::*;
use kernel::sync::Arc;

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
        let expect = match nr {
            uapi::NR_POOL_ATTACH => uapi::IOC_POOL_ATTACH,
            uapi::NR_POOL_INFO => uapi::IOC_POOL_INFO,
            uapi::NR_POOL_DETACH => uapi::IOC_POOL_DETACH,
            uapi::NR_CHECKPOINT => uapi::IOC_CHECKPOINT,
            uapi::NR_LIST => uapi::IOC_LIST,
            uapi::NR_STAT => uapi::IOC_STAT,
            uapi::NR_READ => uapi::IOC_READ_IMAGE,
            uapi::NR_DELETE => uapi::IOC_DELETE,
            uapi::NR_RESTORE => uapi::IOC_RESTORE,
            uapi::NR_CLONE_STAT => uapi::IOC_CLONE_STAT,
            uapi::NR_RESTORE_THREAD => uapi::IOC_RESTORE_THREAD,
            _ => return Err(ENOTTY),
        };
        if ioc_dir(cmd) != ioc_dir(expect) {
            return Err(ENOTTY);
        }
        if nr == uapi::NR_RESTORE_THREAD {
            // No pool needed to wait: the leader's restore checks it.
            let (req, _) = read_versioned::<RestoreThread>(arg, uapi::min_size::RESTORE_THREAD)?;
            if req.flags != 0 {
                return Err(EINVAL);
            }
            return restore_group::follow(req.id);
        }
        if nr == uapi::NR_RESTORE {
            let (req, _) = read_versioned::<Restore>(arg, uapi::min_size::RESTORE)?;
            return restore::restore(&attached()?, &req);
        }
        match nr {
            uapi::NR_POOL_ATTACH => pool_attach(arg),
            uapi::NR_POOL_INFO => pool_info(arg),
            uapi::NR_POOL_DETACH => pool_detach(),
            uapi::NR_CHECKPOINT => in_out::<Checkpoint>(arg, uapi::min_size::CHECKPOINT, checkpoint::checkpoint),
            uapi::NR_LIST => in_out::<List>(arg, uapi::min_size::LIST, images::list),
            uapi::NR_STAT => in_out::<Stat>(arg, uapi::min_size::STAT, images::stat),
            uapi::NR_CLONE_STAT => in_out::<CloneStat>(arg, uapi::min_size::CLONE_STAT, |_, st| clone_stat(st)),
            uapi::NR_READ => {
                let (req, _) = read_versioned::<Read>(arg, uapi::min_size::READ)?;
                images::read(&*attached()?, &req)
            }
            _ => {
                let (req, _) = read_versioned::<Delete>(arg, uapi::min_size::DELETE)?;
                images::delete(&*attached()?, req.id)
            }
        }
        .map(|()| 0)
    }
}

/// The attached pool (a reference: detach cannot unmap it under us).
fn attached() -> Result<Arc<Pool>> {
    POOL.lock().as_ref().cloned().ok_or(ENODEV)
}

/// Reads a versioned struct, runs `f` on the attached pool, writes it back.
fn in_out<T: Pod>(arg: usize, min: usize, f: impl FnOnce(&Pool, &mut T) -> Result) -> Result {
    let (mut v, size) = read_versioned::<T>(arg, min)?;
    f(&*attached()?, &mut v)?;
    write_versioned(arg, size, &v)
}

/// `CXLFORK_IOC_CLONE_STAT`: statistics of the clone `st.pid` (0: the
/// caller); EAGAIN while its restore is under way (its address space is
/// the image's before its registers, signal mask and handlers are: a
/// caller waiting to signal it waits for this).
fn clone_stat(st: &mut CloneStat) -> Result {
    let t = Target::get_for_stat(st.pid as i32)?;
    let ctx = t.clone_ctx().ok_or(ENOENT)?;
    if !ctx.restored() {
        return Err(EAGAIN);
    }
    ctx.stat(st);
    Ok(())
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
    let mut info = attached()?.info()?;
    info.size = size.min(PoolInfo::SIZE) as u32;
    write_versioned(arg, size, &*info)
}

fn pool_detach() -> Result {
    if !kernel_util::capable_sys_admin() {
        return Err(EPERM);
    }
    let mut pool = POOL.lock();
    pool.as_ref().ok_or(ENODEV)?.detach()?;
    *pool = None;
    Ok(())
}
