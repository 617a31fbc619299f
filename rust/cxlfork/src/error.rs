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
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Open => "open /dev/cxlfork",
            Op::Attach => "attach pool",
            Op::Info => "pool info",
            Op::Detach => "detach pool",
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
}

impl Error {
    /// The errno, if the kernel returned one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Kernel { errno, .. } => Some(*errno),
            Error::Dax(_) => None,
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
        (Op::Info | Op::Detach, Errno::NODEV) => "no pool attached on this host",
        (Op::Info, Errno::BADMSG) => "pool metadata is corrupt",
        (_, Errno::NOTTY) => "the module does not know this command (version mismatch?)",
        (_, Errno::FAULT) => "bad pointer passed to the kernel",
        _ => "unexpected error",
    }
}
