//! Tiering policies: where a restored page lives. Each policy is one small
//! implementation of [`Policy`], in its own file; adding one is a file and a
//! line in [`for_abi`].

use crate::abi::uapi;
use kernel::prelude::*;

mod ht;
mod moa;
mod mow;

/// Where a checkpointed page is mapped when its leaf is installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// Mapped read-only straight from the pool (zero copy); a write takes the
    /// kernel's copy-on-write into a local page.
    Pool,
    /// Copied to a local page now (read-only; a write copies it again locally).
    Local,
}

/// What the clone may do with the VMA a page is installed in, now.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Access {
    /// PROT_WRITE.
    pub(crate) writable: bool,
    /// PROT_EXEC.
    pub(crate) exec: bool,
}

/// A tiering policy, decided from each page's checkpointed PTE (its
/// Accessed and Dirty bits as the parent left them) when a fault installs
/// the page's leaf. Nothing is copied during the restore call itself: the
/// restore stays flat in the footprint.
pub(crate) trait Policy: Sync {
    /// Placement of a checkpointed page in a VMA the clone may access so.
    fn place(&self, pte: u64, vma: Access) -> Place;
}

/// The policy for `CXLFORK_POLICY_*`.
pub(crate) fn for_abi(policy: u32) -> Result<&'static dyn Policy> {
    match policy {
        uapi::POLICY_MOW => Ok(&mow::MigrateOnWrite),
        uapi::POLICY_MOA => Ok(&moa::MigrateOnAccess),
        uapi::POLICY_HT => Ok(&ht::HybridTiering),
        _ => Err(EINVAL),
    }
}
