//! Hash slots: the checker's own computation, so that a client routes every key to exactly the
//! slot the checker later places it in (one CRC16 for the whole project).

pub use checker::key_slot;

/// The number of hash slots in a Redis Cluster, as an index bound for slot tables.
pub const SLOT_COUNT: usize = checker::slot::SLOT_COUNT as usize;
