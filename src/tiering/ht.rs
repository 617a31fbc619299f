//! HT, hybrid tiering: on access, pages whose checkpointed Accessed bit is
//! set (hot in the parent after its Accessed bits were cleared) are copied
//! locally; cold pages stay mapped from the pool.

use super::{Place, Policy};
use crate::abi::image::pte;

/// Hybrid tiering.
pub(crate) struct HybridTiering;

impl Policy for HybridTiering {
    fn place(&self, e: u64) -> Place {
        if e & pte::ACCESSED != 0 {
            Place::Local
        } else {
            Place::Pool
        }
    }

    fn prefetch(&self, _pte: u64) -> bool {
        false
    }
}
