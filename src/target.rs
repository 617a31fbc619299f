//! A checkpoint target: a pinned process, read in its own context.
//!
//! Thin safe wrapper over `shim_task.c`; all kernel data-structure access
//! happens there, under the locks its comments name. Another process is
//! read by making it run the checkpoint itself ([`Target::run`]).

use crate::abi::image::{FileImage, MmImage, AUXV_WORDS};
use crate::ffi::{self, CxlforkTarget, ProcState, TaskState};
use crate::file_ref::FileRef;
use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::prelude::*;

/// What to do with a target once the checkpoint is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum After {
    /// Let it go on (a target that was stopped stays stopped).
    Resume = 0,
    /// Leave it stopped.
    LeaveStopped = 1,
    /// Kill it.
    Kill = 2,
}

fn check(ret: i32) -> Result {
    if ret < 0 {
        Err(Error::from_errno(ret))
    } else {
        Ok(())
    }
}

/// A pinned target process and its mm.
///
/// # Invariants
///
/// `ptr` is valid while `self` lives: it came from a successful
/// `cxlfork_target_get` (`owned`: released only by `drop`), or it is the
/// shim's view of current inside its checkpoint task_work (not owned).
pub(crate) struct Target {
    ptr: NonNull<CxlforkTarget>,
    owned: bool,
}

impl Target {
    /// Looks up `pid` (0: the caller) to checkpoint it: another process
    /// needs `mem_fd`, the caller's descriptor of its `/proc/PID/mem`
    /// (proof of the ptrace access check).
    pub(crate) fn get(pid: i32, mem_fd: i32) -> Result<Self> {
        Self::get_for(pid, mem_fd, 0)
    }

    /// Looks up `pid` (0: the caller) to read its clone statistics: the
    /// same user, or CAP_SYS_ADMIN.
    pub(crate) fn get_for_stat(pid: i32) -> Result<Self> {
        Self::get_for(pid, -1, 1)
    }

    fn get_for(pid: i32, mem_fd: i32, purpose: i32) -> Result<Self> {
        let mut p = core::ptr::null_mut();
        // SAFETY: `p` is a valid out-pointer.
        check(unsafe { ffi::cxlfork_target_get(pid, mem_fd, purpose, &mut p) })?;
        let ptr = NonNull::new(p).ok_or(EINVAL)?;
        // INVARIANT: `ptr` came from a successful `cxlfork_target_get`.
        Ok(Self { ptr, owned: true })
    }

    /// Makes the target (another process) run `f` on itself, in its own
    /// context, and waits for it; then resumes it, leaves it stopped or
    /// kills it.
    pub(crate) fn run(&self, after: After, pin: &crate::file_ref::FileRef, f: &mut dyn FnMut(&Target) -> Result) -> Result {
        let mut job: &mut dyn FnMut(&Target) -> Result = f;
        let arg = core::ptr::from_mut(&mut job).cast::<c_void>();
        // SAFETY: `raw()` is valid (invariant); `arg` outlives the job: the
        // shim returns only once the job ran, or was cancelled unstarted.
        check(unsafe { ffi::cxlfork_target_run(self.raw(), arg, after as i32, pin.as_ptr()) })
    }

    fn raw(&self) -> *mut CxlforkTarget {
        self.ptr.as_ptr()
    }

    /// Whether the target is the caller itself.
    pub(crate) fn is_self(&self) -> bool {
        // SAFETY: `raw()` is valid (invariant).
        unsafe { ffi::cxlfork_target_is_self(self.raw()) }
    }

    /// The thread's state: registers (in the restarted form if stopped in
    /// a restartable call), signal mask, altstack, rseq, robust list, child
    /// tid address, PKRU, timer slack, name.
    pub(crate) fn task(&self) -> Result<TaskState> {
        let mut s = TaskState::zeroed();
        // SAFETY: `s` is a writable `struct cxlfork_task_state`.
        check(unsafe { ffi::cxlfork_target_task(self.raw(), &mut s) })?;
        Ok(s)
    }

    /// Holds every other thread of the target's process (current) still in
    /// the kernel, each having recorded its own state, until the target is
    /// dropped or its checkpoint job ends (`shim_park.c`).
    pub(crate) fn park_others(&self, pin: &FileRef) -> Result {
        // SAFETY: `raw()` is valid (invariant); `pin` is a referenced file
        // (the park takes its own reference).
        check(unsafe { ffi::cxlfork_target_park(self.raw(), pin.as_ptr()) })
    }

    /// How many other threads [`Target::park_others`] holds.
    pub(crate) fn parked(&self) -> u32 {
        // SAFETY: `raw()` is valid (invariant).
        unsafe { ffi::cxlfork_target_park_count(self.raw()) }
    }

    /// Parked thread `i` (by increasing tid): its state, its XSAVE buffer
    /// and the buffer's xfeatures.
    pub(crate) fn parked_thread(&self, i: u32) -> Result<(TaskState, KVec<u8>, u64)> {
        let mut s = TaskState::zeroed();
        let (mut len, mut xf) = (0u32, 0u64);
        // SAFETY: `s` is a writable state; a null buffer of capacity 0;
        // `len` and `xf` are valid out-pointers.
        let r = unsafe { ffi::cxlfork_target_park_thread(self.raw(), i, &mut s, core::ptr::null_mut(), 0, &mut len, &mut xf) };
        if r != E2BIG.to_errno() {
            check(r)?;
        }
        let mut fpu = KVec::from_elem(0u8, len as usize, GFP_KERNEL)?;
        // SAFETY: as above, with `fpu` `len` writable bytes.
        check(unsafe { ffi::cxlfork_target_park_thread(self.raw(), i, &mut s, fpu.as_mut_ptr().cast::<c_void>(), len, &mut len, &mut xf) })?;
        Ok((s, fpu, xf))
    }

    /// Process-wide state; `EOPNOTSUPP` for state a clone cannot be given.
    pub(crate) fn proc(&self) -> Result<KBox<ProcState>> {
        let mut p = ProcState::boxed()?;
        // SAFETY: `p` is a writable `struct cxlfork_proc_state`.
        check(unsafe { ffi::cxlfork_target_proc(self.raw(), &mut *p) })?;
        Ok(p)
    }

    /// The path of the current directory (`exe` false) or the executable
    /// into `buf`; its length (0 if there is none).
    pub(crate) fn path(&self, exe: bool, buf: &mut [u8]) -> Result<usize> {
        // SAFETY: `buf` is `buf.len()` writable bytes; the shim NUL-terminates within them.
        check(unsafe { ffi::cxlfork_target_path(self.raw(), i32::from(exe), buf.as_mut_ptr(), buf.len()) })?;
        Ok(buf.iter().position(|&b| b == 0).unwrap_or(0))
    }

    /// The FPU/extended state into `buf`; returns (length, xfeatures).
    pub(crate) fn fpu(&self, buf: &mut [u8]) -> Result<(u32, u64)> {
        let (mut len, mut xf) = (0u32, 0u64);
        let cap = u32::try_from(buf.len()).map_err(|_| EINVAL)?;
        // SAFETY: `buf` is `cap` writable bytes; `len` and `xf` are valid out-pointers.
        check(unsafe { ffi::cxlfork_target_fpu(self.raw(), buf.as_mut_ptr().cast::<c_void>(), cap, &mut len, &mut xf) })?;
        Ok((len, xf))
    }

    /// mm fields.
    pub(crate) fn mm(&self, out: &mut MmImage) {
        const _: () = assert!(MmImage::SIZE == (11 + AUXV_WORDS) * 8);
        // SAFETY: `out` is 11 + AUXV_WORDS writable u64 words.
        unsafe { ffi::cxlfork_target_mm(self.raw(), core::ptr::from_mut(out).cast::<u64>(), AUXV_WORDS as u32) };
    }

    /// (euid, egid, tgid, comm).
    pub(crate) fn ids(&self) -> (u32, u32, u32, [u8; 16]) {
        let (mut uid, mut gid, mut pid, mut comm) = (0, 0, 0, [0u8; 16]);
        // SAFETY: out-pointers are valid; `comm` is TASK_COMM_LEN (16) bytes.
        unsafe { ffi::cxlfork_target_ids(self.raw(), &mut uid, &mut gid, &mut pid, comm.as_mut_ptr()) };
        (uid, gid, pid, comm)
    }

    /// Takes the target's mmap lock for reading.
    pub(crate) fn mm_read_lock(&self) -> Result<MmReadGuard<'_>> {
        // SAFETY: `raw()` is valid (invariant).
        check(unsafe { ffi::cxlfork_mm_read_lock(self.raw()) })?;
        Ok(MmReadGuard { target: self })
    }

    /// The next open file at or after `fd`: its record (path bytes in
    /// `path`, their length) and the file.
    pub(crate) fn file_next(&self, fd: u32, path: &mut [u8]) -> Result<Option<(FileImage, usize, FileRef)>> {
        let mut w = [0u64; 6];
        let mut fp = core::ptr::null_mut();
        // SAFETY: `w` holds 6 words; `path` is `path.len()` writable bytes;
        // `fp` is a valid out-pointer.
        let r = unsafe { ffi::cxlfork_file_next(self.raw(), fd, w.as_mut_ptr(), path.as_mut_ptr(), path.len(), &mut fp) };
        check(r)?;
        if r == 1 {
            return Ok(None);
        }
        // SAFETY: on success the shim gave us a file reference.
        let file = unsafe { FileRef::from_raw(core::ptr::NonNull::new(fp).ok_or(EINVAL)?) };
        let len = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        let f = FileImage {
            fd: w[0] as u32,
            kind: w[1] as u32,
            flags: w[2] as u32,
            cloexec: w[3] as u32,
            pos: w[4],
            mode: w[5] as u32,
            path_off: 0,
            path_len: 0,
            obj: 0,
            ident: 0,
            sub: 0,
            value: 0,
            data_off: 0,
            data_len: 0,
        };
        Ok(Some((f, len, file)))
    }
}

impl Target {
    /// The clone context the target maps, if it is a clone.
    pub(crate) fn clone_ctx(&self) -> Option<kernel::sync::Arc<crate::clone::CloneCtx>> {
        // SAFETY: `raw()` is valid (invariant).
        let p = unsafe { ffi::cxlfork_target_clone_ctx(self.raw()) };
        if p.is_null() {
            return None;
        }
        // SAFETY: the shim took a new reference on a context from `Arc::into_raw`: now ours.
        Some(unsafe { kernel::sync::Arc::from_raw(p.cast::<crate::clone::CloneCtx>()) })
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: `raw()` is valid (invariant) and released once, here.
            unsafe { ffi::cxlfork_target_put(self.raw()) };
        }
    }
}

/// Runs a [`Target::run`] job in the target's task_work (`shim_task.c`).
///
/// # Safety
///
/// `arg` is the job `Target::run` passed (alive until this returns);
/// `me` is the shim's view of current, valid for this call.
#[no_mangle]
pub(crate) unsafe extern "C" fn cxlfork_rust_ckpt_job(arg: *mut c_void, me: *mut CxlforkTarget) -> i32 {
    // SAFETY: per the contract, `arg` points at the caller's `&mut dyn FnMut`.
    let job = unsafe { &mut *arg.cast::<&mut dyn FnMut(&Target) -> Result>() };
    let Some(ptr) = NonNull::new(me) else { return EINVAL.to_errno() };
    // INVARIANT: `me` is valid for this call; not ours to release.
    let t = Target { ptr, owned: false };
    match job(&t) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// A VMA as the shim reports it.
pub(crate) struct VmaRaw {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) vm_flags: u64,
    pub(crate) pgoff: u64,
    pub(crate) kind: u32,
    pub(crate) file_size: u64,
    pub(crate) file_mtime_ns: u64,
}

/// The target's mmap lock, held for reading.
pub(crate) struct MmReadGuard<'a> {
    target: &'a Target,
}

impl MmReadGuard<'_> {
    /// The first VMA ending above `addr` (with `fork_only`, not counting
    /// MADV_DONTFORK ones), its path or name in `path` (returns the path
    /// length).
    pub(crate) fn vma_next(&self, addr: u64, fork_only: bool, path: &mut [u8]) -> Result<Option<(VmaRaw, usize)>> {
        let mut w = [0u64; 7];
        // SAFETY: the mmap lock is held (guard); `w` holds 7 words; `path` is writable.
        let r = unsafe { ffi::cxlfork_vma_next(self.target.raw(), addr, fork_only, w.as_mut_ptr(), path.as_mut_ptr(), path.len()) };
        check(r)?;
        if r == 1 {
            return Ok(None);
        }
        let len = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        Ok(Some((VmaRaw { start: w[0], end: w[1], vm_flags: w[2], pgoff: w[3], kind: w[4] as u32, file_size: w[5], file_mtime_ns: w[6] }, len)))
    }

    /// The file the VMA at `addr` maps.
    pub(crate) fn vma_file(&self, addr: u64) -> Result<FileRef> {
        // SAFETY: the mmap lock is held (guard); the shim returns a referenced file or an error.
        unsafe { FileRef::from_err_ptr(ffi::cxlfork_vma_file(self.target.raw(), addr)) }
    }

    /// The hardware entries of the leaf table mapping the 2 MiB block at
    /// `addr` into `ptes` (512 words); false if there is no table.
    pub(crate) fn read_leaf(&self, addr: u64, ptes: &mut [u64]) -> Result<bool> {
        if ptes.len() != 512 {
            return Err(EINVAL);
        }
        // SAFETY: the mmap lock is held (guard); `ptes` holds 512 words.
        let r = unsafe { ffi::cxlfork_read_leaf(self.target.raw(), addr, ptes.as_mut_ptr()) };
        check(r)?;
        Ok(r == 1)
    }

    /// Copies the `n` mapped pages at `addr` to pool memory at `dst`,
    /// packed, leaving out what `mode` says (`ffi::COPY_SKIP_*`). Returns
    /// the mask of the pages copied (bit `j`: page `j`).
    ///
    /// # Safety
    ///
    /// `dst` must be valid for writes of `n` pages and not used concurrently.
    pub(crate) unsafe fn copy_pages(&self, addr: u64, n: u32, dst: *mut c_void, mode: u32) -> Result<u64> {
        let mut copied = 0u64;
        // SAFETY: the mmap lock is held (guard); the caller guarantees `dst`;
        // `copied` is a valid out-pointer.
        check(unsafe { ffi::cxlfork_copy_pages(self.target.raw(), addr, n, dst, mode, &mut copied) })?;
        Ok(copied)
    }
}

impl Drop for MmReadGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the lock was taken by `mm_read_lock` and is released once, here.
        unsafe { ffi::cxlfork_mm_read_unlock(self.target.raw()) };
    }
}

/// Whether a PTE maps the shared zero page.
pub(crate) fn is_zero_page(pte: u64) -> bool {
    // SAFETY: a pure computation on the value.
    unsafe { ffi::cxlfork_pte_is_zero_page(pte) }
}

/// This kernel's release string, NUL padded.
pub(crate) fn kernel_release() -> [u8; 64] {
    let mut b = [0u8; 64];
    // SAFETY: `b` is 64 writable bytes; strscpy NUL-terminates within them.
    unsafe { ffi::cxlfork_kernel_release(b.as_mut_ptr(), b.len()) };
    b
}
