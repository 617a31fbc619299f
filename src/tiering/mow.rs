//! MoW, migrate on write (the default): pages are read from the pool and
//! copied on write; pages the parent had dirtied are copied up front, since
//! clones nearly always write them too (over 95% in the paper's traces).

use super::{Place, Policy};
use crate::abi::image::pte;

/// Migrate on write.
pub(crate) struct MigrateOnWrite;

impl Policy for MigrateOnWrite {
    fn place(&self, _pte: u64) -> Place {
        Place::Pool
    }

    fn prefetch(&self, e: u64) -> bool {
        e & pte::DIRTY != 0
    }

    fn prefetches(&self) -> bool {
        true
    }
}
