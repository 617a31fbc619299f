//! Errors of cxlfork operations, with the kernel's errno explained per call.

use rustix::io::Errno;
use std::fmt;

/// The operation that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Opening `/dev/cxlfork`.
    Open,
    /// `CXLFORK_IOC_POOL_ATTACH`.
    Attach,
    /// `CXLFORK_IOC_POOL_INFO`.
    Info,
    /// `CXLFORK_IOC_POOL_DETACH`.
    Detach,
    /// `CXLFORK_IOC_CHECKPOINT`.
    Checkpoint,
    /// `CXLFORK_IOC_LIST`.
    List,
    /// `CXLFORK_IOC_STAT`.
    Stat,
    /// `CXLFORK_IOC_READ`.
    Read,
    /// `CXLFORK_IOC_DELETE`.
    Delete,
    /// `CXLFORK_IOC_RESTORE`.
    Restore,
    /// `CXLFORK_IOC_CLONE_STAT`.
    CloneStat,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Open => "open /dev/cxlfork",
            Op::Attach => "attach pool",
            Op::Info => "pool info",
            Op::Detach => "detach pool",
            Op::Checkpoint => "checkpoint",
            Op::List => "list images",
            Op::Stat => "stat image",
            Op::Read => "read image",
            Op::Delete => "delete image",
            Op::Restore => "restore",
            Op::CloneStat => "clone stat",
        })
    }
}

/// A cxlfork error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel refused a call.
    #[error("{op}: {} ({errno})", explain(*.op, *.errno))]
    Kernel {
        /// What was attempted.
        op: Op,
        /// The errno returned.
        errno: Errno,
    },
    /// A DAX device could not be resolved to a physical range.
    #[error("{0}")]
    Dax(String),
    /// An image read from the pool failed validation.
    #[error("image {id}: {reason}")]
    Invalid {
        /// The image.
        id: u64,
        /// Why.
        reason: &'static str,
    },
}

impl Error {
    /// The errno, if the kernel returned one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Kernel { errno, .. } => Some(*errno),
            Error::Dax(_) | Error::Invalid { .. } => None,
        }
    }
}

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What an errno means for this operation, in words a user can act on.
fn explain(op: Op, e: Errno) -> &'static str {
    match (op, e) {
        (Op::Open, Errno::NOENT) => "no /dev/cxlfork: is the cxlfork module loaded?",
        (Op::Open, Errno::ACCESS) => "no permission to open /dev/cxlfork",
        (Op::Open, Errno::NXIO | Errno::NODEV) => "the cxlfork module is not loaded",
        (Op::Attach | Op::Detach, Errno::PERM) => "needs CAP_SYS_ADMIN",
        (Op::Attach, Errno::INVAL) => {
            "invalid range or arguments (2 MiB aligned, non-zero, not System RAM, \
             inside a CXL window or device memory; host id below the pool's host count)"
        }
        (Op::Attach, Errno::BUSY) => {
            "a pool is already attached on this host, or another live host holds this host id \
             (use --takeover only if that host is gone)"
        }
        (Op::Attach, Errno::BADMSG) => {
            "no valid cxlfork superblock in this range (format it with --format), \
             or it describes a pool of another size"
        }
        (Op::Attach, Errno::NOMEM) => "could not map the pool",
        (Op::Attach | Op::Info, Errno::TOOBIG) => "argument struct has unknown non-zero fields (newer ABI?)",
        (_, Errno::NODEV) => "no pool attached on this host (cxlfork-ctl pool attach)",
        (Op::Checkpoint, Errno::SRCH) => "no such process (or it exited during the checkpoint)",
        (Op::Checkpoint, Errno::PERM) => {
            "not allowed: checkpointing another process needs the right to ptrace it (same user and dumpable, Yama, LSMs) or CAP_SYS_ADMIN"
        }
        (Op::Checkpoint, Errno::OPNOTSUPP) => {
            "the process cannot be checkpointed: it has an io_uring or other kernel-made worker thread, its main thread exited, or it has a hugetlb or PFN mapping, or a shared mapping of an unlinked non-tmpfs file (see the kernel log)"
        }
        (Op::Checkpoint, Errno::BUSY) => "a thread of the process is traced, or another checkpoint of it is under way",
        (Op::Checkpoint, Errno::TIMEDOUT) => "a thread of the process did not stop within 30 s (blocked uninterruptibly, or in vfork)",
        (Op::Checkpoint, Errno::NOSPC) => "no room in this host's pool partition (or its directory is full)",
        (Op::Checkpoint, Errno::AGAIN) => "some pages were being swapped or migrated, or threads kept being created; try again",
        (Op::Checkpoint, Errno::INTR) => "interrupted while waiting for the process to stop",
        (Op::Checkpoint, Errno::INVAL) => "invalid arguments (flags, name, or a kernel thread)",
        (Op::Checkpoint, Errno::TOOBIG) => "the process has too many mappings, files or path bytes for one image",
        (Op::Stat | Op::Read | Op::Delete, Errno::NOENT) => "no such image",
        (Op::Stat, Errno::BADMSG) => "the image's header is corrupt",
        (Op::Read | Op::Delete, Errno::PERM) => "not the image's owner (uid) and no CAP_SYS_ADMIN",
        (Op::Read, Errno::INVAL) => "range outside the image",
        (Op::Delete, Errno::XDEV) => "the image belongs to another host: only its owner host can delete it",
        (Op::Delete, Errno::BUSY) => "clones still hold leases on the image",
        (Op::Restore, Errno::NOENT) => "no such image",
        (Op::Restore, Errno::PERM) => "not the image's owner (uid) and no CAP_SYS_ADMIN, or its limits exceed yours",
        (Op::Restore, Errno::BADMSG) => "the image is corrupt (failed validation); nothing was changed",
        (Op::Restore, Errno::NOEXEC) => "the image was made by another kernel build",
        (Op::Restore, Errno::INVAL) => "bad arguments, or the image's registers/FPU state/vdso placement do not fit this process",
        (Op::Restore, Errno::BUSY) => {
            "the restoring process has other threads than those waiting to become the image's, or shares its memory, files or signal handlers with another process"
        }
        (Op::Restore, Errno::TIMEDOUT) => "the image's other threads did not all start waiting within 10 s",
        (Op::Restore, Errno::OPNOTSUPP) => "the image has a pipe or socket open (use --skip-files)",
        (Op::CloneStat, Errno::NOENT) => "that process is not a cxlfork clone",
        (Op::CloneStat, Errno::SRCH) => "no such process",
        (Op::CloneStat, Errno::AGAIN) => "that process is still becoming a clone (its restore is under way): try again",
        (Op::Info, Errno::BADMSG) => "pool metadata is corrupt",
        (_, Errno::NOTTY) => "the module does not know this command (version mismatch?)",
        (_, Errno::FAULT) => "bad pointer passed to the kernel",
        _ => "unexpected error",
    }
}
