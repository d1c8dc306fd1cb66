//! Routing as a Codis proxy does, for servers that do not speak Redis Cluster (PikiwiDB): a slot
//! table kept by slotcheck, forwarding by it, and the two ways of crossing a migrating slot.

pub mod table;

pub use table::{CodisTable, MigrationMode, SharedCodisTable, SlotRoute};
