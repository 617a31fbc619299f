//! MoA, migrate on access: the first access to any page copies it to local
//! memory; nothing stays mapped from the pool.

use super::{Access, Place, Policy};

/// Migrate on access.
pub(crate) struct MigrateOnAccess;

impl Policy for MigrateOnAccess {
    fn place(&self, _pte: u64, _vma: Access) -> Place {
        Place::Local
    }
}
