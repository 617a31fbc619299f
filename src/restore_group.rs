//! The threads of a multi-threaded restore: safe wrapper over
//! `shim_rgroup.c`.
//!
//! The caller of `CXLFORK_IOC_RESTORE` (the leader, the main thread)
//! becomes the image's main thread; each other thread of its process,
//! waiting in `CXLFORK_IOC_RESTORE_THREAD` ([`follow`]), becomes one of the
//! image's other threads. The leader gathers them ([`RestoreGroup::lead`]),
//! stages each one's state before the point of no return
//! ([`RestoreGroup::stage`]), crosses it for the whole group
//! ([`RestoreGroup::commit`]) and, once the process is the clone, lets them
//! go ([`Committed::go`]).

use crate::ffi::{self, CxlforkRgroup};
use core::ffi::{c_long, c_void};
use core::ptr::NonNull;
use kernel::prelude::*;

fn check(r: i32) -> Result {
    if r < 0 {
        Err(Error::from_errno(r))
    } else {
        Ok(())
    }
}

/// `CXLFORK_IOC_RESTORE_THREAD`: waits to become one of the other threads
/// of image `id`; returns the value the call returns in that thread (its
/// state is installed), or the errno that sent it back.
pub(crate) fn follow(id: u64) -> Result<isize> {
    let mut ax: c_long = 0;
    // SAFETY: `ax` is a valid out-pointer; acts on current.
    check(unsafe { ffi::cxlfork_rgroup_follow(id, &mut ax) })?;
    Ok(ax as i32 as isize)
}

/// The leader's hold on a group before its point of no return: dropping
/// it sends every follower back with the error given to [`Self::fail`]
/// (`EINTR` by default), no thread changed.
///
/// # Invariants
///
/// `ptr` is the leader's reference from `cxlfork_rgroup_lead`, given up
/// by `drop` or by [`Self::commit`].
pub(crate) struct RestoreGroup {
    ptr: NonNull<CxlforkRgroup>,
    err: Error,
}

impl RestoreGroup {
    /// Waits (up to 10 s) for exactly `followers` other threads of the
    /// caller's process to wait for image `id`.
    pub(crate) fn lead(id: u64, followers: u32) -> Result<Self> {
        let mut p = core::ptr::null_mut();
        // SAFETY: `p` is a valid out-pointer; acts on current.
        check(unsafe { ffi::cxlfork_rgroup_lead(id, followers, &mut p) })?;
        // INVARIANT: the reference `cxlfork_rgroup_lead` gave.
        Ok(Self { ptr: NonNull::new(p).ok_or(EINVAL)?, err: EINTR })
    }

    /// The errno the followers get if the group is dropped.
    pub(crate) fn fail(&mut self, err: Error) {
        self.err = err;
    }

    /// Gives follower `k` (by increasing tid) its image thread's state:
    /// `prepared` (a `cxlfork_task_prepare` result, consumed even on
    /// error), a copy of `fpu`, the value its call returns, personality
    /// and no_new_privs.
    pub(crate) fn stage(&self, k: u32, prepared: *mut c_void, fpu: &[u8], ax: u64, personality: u64, nnp: bool) -> Result {
        let len = u32::try_from(fpu.len()).map_err(|_| EINVAL)?;
        // SAFETY: `ptr` is valid (invariant); `prepared` is owned by the
        // caller and handed over; `fpu` is `len` readable bytes (copied).
        check(unsafe { ffi::cxlfork_rgroup_stage(self.ptr.as_ptr(), k, prepared, fpu.as_ptr().cast::<c_void>(), len, ax as c_long, personality, nnp) })
    }

    /// The point of no return of the whole group: on error nothing has
    /// changed (and dropping `self` sends the followers back).
    pub(crate) fn commit(mut self) -> Result<Committed> {
        // SAFETY: `ptr` is valid (invariant).
        if let Err(e) = check(unsafe { ffi::cxlfork_rgroup_commit(self.ptr.as_ptr()) }) {
            self.err = e;
            return Err(e);
        }
        let ptr = self.ptr;
        core::mem::forget(self);
        // INVARIANT: the leader's reference, now committed.
        Ok(Committed { ptr, gone: false })
    }
}

impl Drop for RestoreGroup {
    fn drop(&mut self) {
        // SAFETY: the leader's reference (invariant), given up once, here.
        unsafe { ffi::cxlfork_rgroup_abort(self.ptr.as_ptr(), self.err.to_errno()) };
    }
}

/// A committed group: its followers wait until [`Committed::go`], which a
/// drop stands for (with nothing to install: the restore failed after its
/// point of no return and the process is being killed).
///
/// # Invariants
///
/// `ptr` is the leader's reference of a committed group, given up once.
pub(crate) struct Committed {
    ptr: NonNull<CxlforkRgroup>,
    gone: bool,
}

impl Committed {
    /// In the restored address space: writes each thread's tid where its
    /// image keeps it (`leader_ctid` for the caller's) and lets the
    /// followers install their states.
    pub(crate) fn go(mut self, leader_ctid: u64) {
        self.gone = true;
        // SAFETY: the leader's reference (invariant), given up once, here.
        unsafe { ffi::cxlfork_rgroup_go(self.ptr.as_ptr(), leader_ctid, false) };
    }
}

impl Drop for Committed {
    fn drop(&mut self) {
        if !self.gone {
            // SAFETY: the leader's reference (invariant), given up once, here.
            unsafe { ffi::cxlfork_rgroup_go(self.ptr.as_ptr(), 0, true) };
        }
    }
}
