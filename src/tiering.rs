//! Tiering policies: where a restored page lives. Each policy is one small
//! implementation of [`Policy`], in its own file; adding one is a file and a
//! line in [`for_abi`].

use crate::abi::uapi;
use kernel::prelude::*;

mod ht;
mod moa;
mod mow;

/// Where a checkpointed page is mapped when its clone first touches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// Mapped read-only straight from the pool (zero copy); a write takes the
    /// kernel's copy-on-write into a local page.
    Pool,
    /// Copied to a local page on this access.
    Local,
}

/// A tiering policy, decided from each page's checkpointed PTE (its
/// Accessed and Dirty bits as the parent left them).
pub(crate) trait Policy: Sync {
    /// Placement of a checkpointed page at its (leaf's) first fault.
    fn place(&self, pte: u64) -> Place;

    /// Whether the page is copied to local memory (copy-on-write broken)
    /// during the restore itself, before the clone runs.
    fn prefetch(&self, pte: u64) -> bool;

    /// Whether [`Policy::prefetch`] can ever say yes: if not, the restore
    /// does not read any leaf table up front (it stays flat in footprint).
    fn prefetches(&self) -> bool {
        false
    }
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
