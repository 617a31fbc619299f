//! MoW, migrate on write (the default): pages are read from the pool and
//! copied on write; pages the parent had dirtied, in a VMA the clone can
//! write, are copied to local memory when their leaf is first touched,
//! since clones nearly always write them too (over 95% in the paper's
//! traces). Never during the restore call: a read-only VMA (RELRO, an
//! mprotect'ed region) keeps its dirty pages in the pool. Executable pages
//! (JIT code; a file's own code comes from its page cache) are copied too:
//! instruction fetch from far memory is the slowest access there is.

use super::{Access, Place, Policy};
use crate::abi::image::pte;

/// Migrate on write.
pub(crate) struct MigrateOnWrite;

impl Policy for MigrateOnWrite {
    fn place(&self, e: u64, vma: Access) -> Place {
        if (vma.writable && e & pte::DIRTY != 0) || vma.exec {
            Place::Local
        } else {
            Place::Pool
        }
    }
}
