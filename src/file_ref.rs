//! A counted reference to a kernel `struct file`.

use crate::ffi::{self, KFile};
use core::ptr::NonNull;
use kernel::prelude::*;

/// A referenced `struct file`.
///
/// # Invariants
///
/// `0` holds one reference, dropped only by `drop`.
pub(crate) struct FileRef(NonNull<KFile>);

// SAFETY: a file reference may be used and dropped from any task.
unsafe impl Send for FileRef {}
// SAFETY: `FileRef` only hands out the raw pointer; files are thread safe.
unsafe impl Sync for FileRef {}

impl FileRef {
    /// Takes ownership of a reference (`ptr` from a successful open).
    ///
    /// # Safety
    ///
    /// `ptr` must be a valid file pointer holding a reference the caller gives up.
    pub(crate) unsafe fn from_raw(ptr: NonNull<KFile>) -> Self {
        // INVARIANT: the caller gives us its reference.
        Self(ptr)
    }

    /// Takes the reference a kernel function returned as a `struct file *`
    /// that may be an `ERR_PTR` (or NULL: `ENOMEM`).
    ///
    /// # Safety
    ///
    /// Unless an error, `ptr` must be a valid file holding a reference the caller gives up.
    pub(crate) unsafe fn from_err_ptr(ptr: *mut KFile) -> Result<Self> {
        let e = ptr as isize;
        if (-4095..0).contains(&e) {
            return Err(Error::from_errno(e as i32));
        }
        let ptr = NonNull::new(ptr).ok_or(ENOMEM)?;
        // SAFETY: not an error: the caller's contract applies.
        Ok(unsafe { Self::from_raw(ptr) })
    }

    /// A new file whose only job is to keep this module loaded while it
    /// lives (its last, deferred `fput` drops the module reference outside
    /// the module's code).
    pub(crate) fn module_pin() -> Result<Self> {
        // SAFETY: no preconditions; it returns a new file holding one reference, or an error.
        unsafe { Self::from_err_ptr(ffi::cxlfork_module_pin_file()) }
    }

    /// The file's (size, modification time in ns).
    pub(crate) fn identity(&self) -> (u64, u64) {
        let (mut size, mut mtime) = (0, 0);
        // SAFETY: the file is referenced (invariant); the out-pointers are valid.
        unsafe { ffi::cxlfork_file_identity(self.as_ptr(), &mut size, &mut mtime) };
        (size, mtime)
    }

    /// Another reference to the same file.
    pub(crate) fn try_clone(&self) -> Self {
        // SAFETY: the file is referenced (invariant); `get_file` takes one more.
        let p = unsafe { ffi::cxlfork_file_get(self.as_ptr()) };
        // INVARIANT: `get_file` returns the file with the new reference.
        Self(NonNull::new(p).unwrap_or(self.0))
    }

    /// A key telling files of the same inode apart from others (valid
    /// while a reference is held).
    pub(crate) fn inode_key(&self) -> u64 {
        // SAFETY: the file is referenced (invariant).
        unsafe { ffi::cxlfork_file_key(self.as_ptr()) }
    }

    /// Whether it is shared memory with no name to reopen (an unlinked
    /// shmem file: MAP_SHARED|MAP_ANONYMOUS, a memfd, a deleted tmpfs file).
    pub(crate) fn is_shared_anon(&self) -> bool {
        // SAFETY: the file is referenced (invariant).
        unsafe { ffi::cxlfork_file_is_shared_anon(self.as_ptr()) }
    }

    /// The file's data ranges (SEEK_DATA/SEEK_HOLE) below `size`, as page
    /// offsets, pushed to `out`.
    pub(crate) fn data_pages(&self, size: u64, out: &mut KVVec<u64>) -> Result {
        const SEEK_DATA: i32 = 3;
        const SEEK_HOLE: i32 = 4;
        let mut off = 0u64;
        while off < size {
            // SAFETY: the file is referenced (invariant).
            let data = unsafe { ffi::cxlfork_file_seek(self.as_ptr(), off, SEEK_DATA) };
            if data < 0 {
                // ENXIO: no data at or after `off`.
                return if data == i64::from(ENXIO.to_errno()) { Ok(()) } else { Err(Error::from_errno(data as i32)) };
            }
            // SAFETY: as above.
            let hole = unsafe { ffi::cxlfork_file_seek(self.as_ptr(), data as u64, SEEK_HOLE) };
            if hole < 0 {
                return Err(Error::from_errno(hole as i32));
            }
            let (first, end) = (data as u64 / 4096, (hole as u64).min(size).div_ceil(4096));
            for p in first..end {
                out.push(p, GFP_KERNEL)?;
            }
            off = end.max(first + 1) * 4096;
        }
        Ok(())
    }

    /// Sets the file position.
    pub(crate) fn seek(&self, pos: u64) -> Result {
        // SAFETY: the file is referenced (invariant).
        let r = unsafe { ffi::cxlfork_file_seek(self.as_ptr(), pos, 0) };
        if r < 0 {
            return Err(Error::from_errno(r as i32));
        }
        Ok(())
    }

    /// Reads the page at page offset `page` into `buf` (4 KiB; zero past
    /// the end of the file).
    pub(crate) fn read_page(&self, page: u64, buf: &mut [u8]) -> Result {
        if buf.len() != 4096 {
            return Err(EINVAL);
        }
        // SAFETY: the file is referenced (invariant); `buf` is 4 KiB writable.
        let r = unsafe { ffi::cxlfork_file_read_page(self.as_ptr(), page * 4096, buf.as_mut_ptr().cast()) };
        if r < 0 {
            return Err(Error::from_errno(r));
        }
        Ok(())
    }

    /// The restorer's (current's) file at descriptor `fd`, if any.
    pub(crate) fn current_fd(fd: u32) -> Option<Self> {
        // SAFETY: no preconditions; a non-NULL result holds a reference for us.
        let p = unsafe { ffi::cxlfork_current_fd_file(fd) };
        // INVARIANT: `fget` took the reference we now own.
        NonNull::new(p).map(Self)
    }

    /// `file_kind::*` of the file.
    pub(crate) fn kind(&self) -> u32 {
        // SAFETY: the file is referenced (invariant).
        unsafe { ffi::cxlfork_file_kind(self.as_ptr()) }
    }

    /// The file's `f_flags`.
    pub(crate) fn flags(&self) -> u32 {
        // SAFETY: the file is referenced (invariant).
        unsafe { ffi::cxlfork_file_flags(self.as_ptr()) }
    }

    /// Whether it is open for writing.
    pub(crate) fn writable(&self) -> bool {
        // SAFETY: the file is referenced (invariant).
        unsafe { ffi::cxlfork_file_writable(self.as_ptr()) }
    }

    /// Its inode number.
    pub(crate) fn ino(&self) -> u64 {
        // SAFETY: the file is referenced (invariant).
        unsafe { ffi::cxlfork_file_ino(self.as_ptr()) }
    }

    /// Its own fdinfo lines (eventfd, epoll...) into `buf`: their length
    /// (`EOVERFLOW` if they do not fit).
    pub(crate) fn fdinfo(&self, buf: &mut [u8]) -> Result<usize> {
        // SAFETY: the file is referenced (invariant); `buf` is writable for its length.
        let r = unsafe { ffi::cxlfork_file_fdinfo(self.as_ptr(), buf.as_mut_ptr(), buf.len()) };
        if r < 0 {
            return Err(Error::from_errno(r as i32));
        }
        Ok(r as usize)
    }

    /// An anonymous pipe's (capacity in bytes, packet mode, bytes
    /// buffered); with `buf`, the bytes are copied there (`EOVERFLOW` if
    /// they do not fit).
    pub(crate) fn pipe_peek(&self, buf: Option<&mut [u8]>) -> Result<(u64, bool, usize)> {
        let (mut cap, mut packet) = (0u64, false);
        let (p, len) = buf.map_or((core::ptr::null_mut(), 0), |b| (b.as_mut_ptr(), b.len()));
        // SAFETY: the file is referenced (invariant); `p` is NULL or writable
        // for `len` bytes; the out-pointers are valid.
        let r = unsafe { ffi::cxlfork_pipe_peek(self.as_ptr(), &mut cap, &mut packet, p, len) };
        if r < 0 {
            return Err(Error::from_errno(r as i32));
        }
        Ok((cap, packet, r as usize))
    }

    /// Writes all of `bytes` to the file.
    pub(crate) fn write_all(&self, bytes: &[u8]) -> Result {
        // SAFETY: the file is referenced (invariant); `bytes` is readable.
        let r = unsafe { ffi::cxlfork_file_write(self.as_ptr(), bytes.as_ptr(), bytes.len()) };
        if r < 0 {
            return Err(Error::from_errno(r as i32));
        }
        if r as usize != bytes.len() {
            return Err(EIO);
        }
        Ok(())
    }

    /// The raw pointer (valid while `self` lives).
    pub(crate) fn as_ptr(&self) -> *mut KFile {
        self.0.as_ptr()
    }
}

impl Drop for FileRef {
    fn drop(&mut self) {
        // SAFETY: we own one reference (invariant).
        unsafe { ffi::cxlfork_file_put(self.0.as_ptr()) };
    }
}
