//! The slot table a Codis-style proxy keeps: which server owns each of the 1024 slots, and where
//! a slot is going while it migrates. PikiwiDB keeps no such table (any server takes any key), so
//! slotcheck keeps it, as Codis's dashboard does, and flips a slot only when its source is empty.

use checker::slot::{codis_slot, CODIS_SLOT_COUNT};
use std::sync::{Arc, RwLock};

/// A table shared by every Codis router of a run and the migration nemesis; a std lock, never
/// held across an `.await`.
pub type SharedCodisTable = Arc<RwLock<CodisTable>>;

/// How a router reaches a key whose slot is migrating, as Codis's proxy offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationMode {
    /// `SLOTSMGRTTAGONE` the key (and its tag) from the source to the target, then send to the
    /// target.
    Sync,
    /// `SLOTSMGRT-EXEC-WRAPPER key cmd...` on the source: `0` the key is not there (go to the
    /// target), `1` it is being moved (wait, ask again), `-1` an error.
    SemiAsync,
}

impl MigrationMode {
    /// The name used on the command line and in history headers.
    pub fn name(self) -> &'static str {
        match self {
            MigrationMode::Sync => "sync",
            MigrationMode::SemiAsync => "semi-async",
        }
    }
}

/// Where one slot lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRoute {
    /// The server (`host:port`) that owns the slot.
    pub owner: Arc<str>,
    /// The server the slot is moving to, while a migration is open.
    pub migrating_to: Option<Arc<str>>,
}

/// The 1024 slots' owners and open migrations, and how routers cross a migrating slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodisTable {
    slots: Vec<SlotRoute>,
    mode: MigrationMode,
}

impl CodisTable {
    /// Slots split into equal ranges over `servers`, in order (as `redis-cli --cluster create`
    /// splits Redis Cluster slots); no migration open.
    pub fn new(servers: &[String], mode: MigrationMode) -> Self {
        assert!(!servers.is_empty(), "a Codis table needs a server");
        let n = usize::from(CODIS_SLOT_COUNT);
        let servers: Vec<Arc<str>> = servers.iter().map(|s| Arc::from(s.as_str())).collect();
        let slots = (0..n)
            .map(|slot| SlotRoute {
                owner: servers[slot * servers.len() / n].clone(),
                migrating_to: None,
            })
            .collect();
        CodisTable { slots, mode }
    }

    /// Wraps the table for sharing.
    pub fn shared(self) -> SharedCodisTable {
        Arc::new(RwLock::new(self))
    }

    /// How routers cross a migrating slot.
    pub fn mode(&self) -> MigrationMode {
        self.mode
    }

    /// Where `slot` lives now.
    pub fn route(&self, slot: u16) -> SlotRoute {
        self.slots[usize::from(slot)].clone()
    }

    /// Where `key`'s slot lives now, with the slot.
    pub fn route_key(&self, key: &[u8]) -> (u16, SlotRoute) {
        let slot = codis_slot(key);
        (slot, self.route(slot))
    }

    /// The slots `server` owns.
    pub fn slots_of(&self, server: &str) -> Vec<u16> {
        (0..CODIS_SLOT_COUNT)
            .filter(|&s| &*self.slots[usize::from(s)].owner == server)
            .collect()
    }

    /// Opens a migration of `slot` to `to`: routers start crossing it by the table's mode.
    pub fn begin_migration(&mut self, slot: u16, to: &str) {
        self.slots[usize::from(slot)].migrating_to = Some(Arc::from(to));
    }

    /// Closes `slot`'s migration with the target as owner (the source reported the slot empty).
    pub fn finish_migration(&mut self, slot: u16) {
        let route = &mut self.slots[usize::from(slot)];
        if let Some(to) = route.migrating_to.take() {
            route.owner = to;
        }
    }

    /// Closes `slot`'s migration with the source still owner (an abandoned migration; keys
    /// already moved stay on the target, which the placement check reports).
    pub fn abandon_migration(&mut self, slot: u16) {
        self.slots[usize::from(slot)].migrating_to = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_split_and_flip() {
        let servers = vec!["a:1".to_string(), "b:2".to_string(), "c:3".to_string()];
        let mut t = CodisTable::new(&servers, MigrationMode::Sync);
        assert_eq!(t.slots_of("a:1").len(), 342);
        assert_eq!(t.slots_of("b:2").len(), 341);
        assert_eq!(&*t.route(0).owner, "a:1");
        assert_eq!(&*t.route(1023).owner, "c:3");
        t.begin_migration(5, "b:2");
        assert_eq!(t.route(5).migrating_to.as_deref(), Some("b:2"));
        t.abandon_migration(5);
        assert_eq!(&*t.route(5).owner, "a:1");
        t.begin_migration(5, "b:2");
        t.finish_migration(5);
        assert_eq!(
            t.route(5),
            SlotRoute {
                owner: "b:2".into(),
                migrating_to: None
            }
        );
        assert_eq!(t.route_key(b"{}x").0, 0);
    }
}
