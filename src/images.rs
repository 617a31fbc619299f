//! Image ioctls: list, stat, read (raw bytes for inspection), delete.
//!
//! A user sees, reads, restores and deletes only the images it owns (the
//! owner is the kernel uid, in the initial user namespace, of the process
//! checkpointed); CAP_SYS_ADMIN (in the initial namespace) sees all. To
//! anyone else an image does not exist (ENOENT).

use crate::abi::boxed_zeroed;
use crate::abi::image::ImageHeader;
use crate::abi::pod::Pod;
use crate::abi::uapi::{ImageInfo, List, Read, Stat};
use crate::kernel_util;
use crate::pool::Pool;
use kernel::prelude::*;
use kernel::uaccess::{UserPtr, UserSlice};

/// Largest chunk copied per step of a read.
const READ_CHUNK: usize = 64 << 10;

/// `CXLFORK_IOC_LIST`: fills up to `req.count` infos at `req.images`.
pub(crate) fn list(pool: &Pool, req: &mut List) -> Result {
    let room = req.count as usize;
    let mut infos = KVec::<ImageInfo>::new();
    let mut total = 0usize;
    pool.published(&mut |e, h| {
        if !may_access(e.uid) {
            return;
        }
        total += 1;
        if infos.len() < room {
            let mut info = ImageInfo::zeroed();
            pool.image_info(e, h, &mut info);
            // Allocation failure is reported below by a short count.
            let _ = infos.push(info, GFP_KERNEL);
        }
    })?;
    let mut w = UserSlice::new(UserPtr::from_addr(req.images as usize), infos.len() * ImageInfo::SIZE).writer();
    for info in infos.iter() {
        w.write_slice(info.as_bytes())?;
    }
    req.count = infos.len() as u32;
    req.total = u32::try_from(total).unwrap_or(u32::MAX);
    Ok(())
}

/// The directory entry of image `id`, if the caller may see it.
pub(crate) fn find_visible(pool: &Pool, id: u64) -> Result<crate::abi::dir::DirEntry> {
    let e = pool.find(id)?;
    if !may_access(e.uid) {
        return Err(ENOENT);
    }
    Ok(e)
}

/// Reads and validates the header of image `id`.
fn header(pool: &Pool, id: u64) -> Result<(crate::abi::dir::DirEntry, KBox<ImageHeader>, bool)> {
    let e = find_visible(pool, id)?;
    let mut h = boxed_zeroed::<ImageHeader>(GFP_KERNEL)?;
    pool.map().read(e.offset, h.as_bytes_mut())?;
    let valid = h.validate(e.offset, e.length).is_ok() && h.id == id;
    Ok((e, h, valid))
}

/// `CXLFORK_IOC_STAT`.
pub(crate) fn stat(pool: &Pool, req: &mut Stat) -> Result {
    let (e, h, valid) = header(pool, req.id)?;
    if !valid {
        return Err(EBADMSG);
    }
    pool.image_info(&e, Some(&h), &mut req.info);
    Ok(())
}

/// The owner (kernel uid) or CAP_SYS_ADMIN.
pub(crate) fn may_access(uid: u32) -> bool {
    kernel_util::current_euid() == uid || kernel_util::capable_sys_admin()
}

/// `CXLFORK_IOC_READ`: raw bytes of an image's extent.
pub(crate) fn read(pool: &Pool, req: &Read) -> Result {
    let e = find_visible(pool, req.id)?;
    let end = req.offset.checked_add(req.length).ok_or(EINVAL)?;
    if end > e.length {
        return Err(EINVAL);
    }
    let len = usize::try_from(req.length).map_err(|_| EINVAL)?;
    let mut w = UserSlice::new(UserPtr::from_addr(req.buf as usize), len).writer();
    let mut buf = KVec::from_elem(0u8, READ_CHUNK.min(len), GFP_KERNEL)?;
    let mut off = req.offset;
    while off < end {
        let n = ((end - off) as usize).min(READ_CHUNK);
        pool.map().read(e.offset + off, &mut buf[..n])?;
        w.write_slice(&buf[..n])?;
        off += n as u64;
    }
    Ok(())
}

/// `CXLFORK_IOC_DELETE`.
pub(crate) fn delete(pool: &Pool, id: u64) -> Result {
    find_visible(pool, id)?;
    pool.delete(id, |e| may_access(e.uid))
}
