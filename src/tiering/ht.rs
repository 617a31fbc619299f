//! HT, hybrid tiering: on access, pages whose checkpointed Accessed bit is
//! set (hot in the parent after its Accessed bits were cleared) are copied
//! locally; cold pages stay mapped from the pool. Executable pages are
//! copied too (see MoW).

use super::{Access, Place, Policy};
use crate::abi::image::pte;

/// Hybrid tiering.
pub(crate) struct HybridTiering;

impl Policy for HybridTiering {
    fn place(&self, e: u64, vma: Access) -> Place {
        if e & pte::ACCESSED != 0 || vma.exec {
            Place::Local
        } else {
            Place::Pool
        }
    }
}
