//! Routing as a Codis proxy does, for servers that do not speak Redis Cluster (PikiwiDB): a slot
//! table kept by slotcheck, forwarding by it, and the two ways of crossing a migrating slot; and
//! [`pika_conf`], the configuration every pika server under test is started with.

pub mod pika_conf;
pub mod router;
pub mod table;

pub use router::CodisRouter;
pub use table::{CodisTable, MigrationMode, SharedCodisTable, SlotRoute};

/// A run's Codis table as a workload configuration carries it: equal only to itself (the same
/// shared table), so that configurations stay comparable.
#[derive(Debug, Clone)]
pub struct CodisRouting(pub SharedCodisTable);

impl PartialEq for CodisRouting {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for CodisRouting {}
