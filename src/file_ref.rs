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
