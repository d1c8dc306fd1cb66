//! Named PikiwiDB scenarios: each aims the workload and the migration nemesis at one known
//! PikiwiDB 4.0 bug and says which anomaly it must produce.

use anyhow::{Context, Result};
use std::time::Duration;
use workloads::codis::{MigrationMode, SharedCodisTable};
use workloads::{workload_keys, WorkloadConfig, WorkloadKind};

/// A PikiwiDB scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PikaScenario {
    /// Keys created by DECR, PSETEX, PFADD, SMOVE, `*STORE`, ... never enter the slot's key index,
    /// so a slot migration leaves them behind on the source.
    Unindexed,
    /// A HyperLogLog arrives on the target as a plain string.
    Hll,
    /// `SLOTSMGRT-EXEC-WRAPPER` lowercases the key, so mixed-case keys are looked up under another
    /// name (and slot) while their slot migrates.
    Case,
    /// After `SLOTSMGRT-ASYNC-CANCEL`, a new async migration can hang, and with it the status and
    /// wrapper commands.
    Cancel,
    /// The source or the target is killed in the middle of a migration and restarted.
    Kill,
}

impl PikaScenario {
    /// Every scenario, in the order `--scenario list` prints them.
    pub const ALL: [PikaScenario; 5] = [
        PikaScenario::Unindexed,
        PikaScenario::Hll,
        PikaScenario::Case,
        PikaScenario::Cancel,
        PikaScenario::Kill,
    ];

    /// The name on the command line and in the history header.
    pub fn name(self) -> &'static str {
        match self {
            PikaScenario::Unindexed => "pika-unindexed",
            PikaScenario::Hll => "pika-hll",
            PikaScenario::Case => "pika-case",
            PikaScenario::Cancel => "pika-cancel",
            PikaScenario::Kill => "pika-kill",
        }
    }

    /// Parses a scenario name.
    pub fn parse(name: &str) -> Option<PikaScenario> {
        PikaScenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// What the scenario does and what it must find.
    pub fn describe(self) -> &'static str {
        match self {
            PikaScenario::Unindexed => {
                "types workload, sync migrations: keys created by DECR, PSETEX, PFADD, SMOVE and \
                 *STORE stay on the source -> stranded-key, or duplicated-key once the new owner \
                 got its own copy (and non-linearizable reads)"
            }
            PikaScenario::Hll => {
                "types workload, sync migrations of the HyperLogLogs' slots with SLOTSRELOAD on \
                 the source first (so that the unindexed keys move too): a HyperLogLog arrives \
                 as a string -> type-changed (PFCOUNT answered WRONGTYPE)"
            }
            PikaScenario::Case => {
                "types workload with mixed-case keys, semi-async routing: the exec wrapper looks \
                 up the lowercased key -> wrapper-error, lost-write or duplicated-key"
            }
            PikaScenario::Cancel => {
                "async migrations cancelled half-way and started again: when the new one hangs \
                 -> stuck-migration naming the command, slot and step"
            }
            PikaScenario::Kill => {
                "the source of an async migration is SIGKILLed the moment its slot index shrinks \
                 (it has begun deleting a batch the target acknowledged: each key out of the \
                 index first, out of the data second), restarted 300 ms later, up to 3 times a \
                 migration, and the migration resumed -> duplicated-key: a key killed between \
                 its two deletes stays on the source outside the index, which no migration moves"
            }
        }
    }

    /// The workload the scenario runs.
    pub fn workload(self) -> WorkloadKind {
        match self {
            PikaScenario::Cancel | PikaScenario::Kill => WorkloadKind::Register,
            _ => WorkloadKind::Types,
        }
    }

    /// Whether the scenario migrates `key`'s slot: `pika-hll` moves only the HyperLogLogs' slots
    /// (so that every migration is one that can retype a key, and none waits on a slot another
    /// bug wedged); the others move every workload key's slot.
    pub fn migrates(self, key: &str) -> bool {
        match self {
            PikaScenario::Hll => key
                .split(':')
                .next()
                .is_some_and(|p| p.eq_ignore_ascii_case("hll")),
            _ => true,
        }
    }

    /// Keys written beforehand into each migrated slot, so that a migration lasts long enough
    /// for the scenario's cancel or kill, or the clients' ops, to land in its middle.
    pub fn fill_per_slot(self) -> usize {
        match self {
            PikaScenario::Cancel | PikaScenario::Kill | PikaScenario::Case => 2000,
            _ => 0,
        }
    }

    /// How the proxy crosses migrating slots, and which migration command the nemesis uses.
    pub fn mode(self) -> MigrationMode {
        match self {
            PikaScenario::Unindexed | PikaScenario::Hll => MigrationMode::Sync,
            _ => MigrationMode::SemiAsync,
        }
    }

    /// What the scenario cannot force, said in its run's output: the condition its bug needs.
    pub fn precondition(self) -> Option<&'static str> {
        match self {
            PikaScenario::Kill => Some(
                "the kill must land between a key's two deletes, which the scenario aims at but \
                 cannot force: about 1 kill in 5 does under a default run's load (18 keys in 93 \
                 kills, seeds 1-5), so each migration is struck up to 3 times",
            ),
            PikaScenario::Cancel => Some("the migrator must fail to recover after the cancel"),
            _ => None,
        }
    }

    /// Whether the workload's keys carry capitals.
    pub fn mixed_case(self) -> bool {
        self == PikaScenario::Case
    }

    /// The anomaly classes of which at least one must appear (for `Cancel`, only when a
    /// migration hung).
    pub fn expected(self) -> &'static [&'static str] {
        match self {
            PikaScenario::Unindexed => &["stranded-key", "duplicated-key"],
            PikaScenario::Hll => &["type-changed"],
            PikaScenario::Case => &["wrapper-error", "lost-write", "duplicated-key"],
            PikaScenario::Cancel => &["stuck-migration"],
            PikaScenario::Kill => &["duplicated-key"],
        }
    }
}

/// `--scenario list` for PikiwiDB.
pub fn list() -> String {
    let mut text = String::from("PikiwiDB scenarios (--server pikiwidb --scenario NAME):\n");
    for s in PikaScenario::ALL {
        text.push_str(&format!("  {:<16} {}\n", s.name(), s.describe()));
    }
    text
}

/// Writes `per_slot` keys in the slot of each workload key (`<key>:fill:<j>` when the key has a
/// hash tag, else `{<key>}:fill:<j>`), pipelined to the slot's owner; returns how many.
pub async fn fill_slots(
    cfg: &WorkloadConfig,
    table: &SharedCodisTable,
    per_slot: usize,
) -> Result<usize> {
    const BATCH: usize = 500;
    let mut written = 0;
    // One link per owner, made on first use.
    let mut links: std::collections::HashMap<String, super::link::Link> = Default::default();
    for key in workload_keys(cfg) {
        let owner = table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .route_key(key.as_bytes())
            .1
            .owner
            .to_string();
        let link = links
            .entry(owner.clone())
            .or_insert_with(|| super::link::Link::new(&owner, Duration::from_secs(10)));
        for start in (0..per_slot).step_by(BATCH) {
            let mut pipe = redis::pipe();
            for j in start..(start + BATCH).min(per_slot) {
                pipe.cmd("SET").arg(filler(&key, j)).arg(j).ignore();
            }
            link.pipe::<()>(&pipe, "SET (filler pipeline)")
                .await
                .with_context(|| format!("writing filler keys for {key} to {owner}"))?;
            written += (start + BATCH).min(per_slot) - start;
        }
    }
    Ok(written)
}

/// Filler key `j` in `key`'s slot.
fn filler(key: &str, j: usize) -> String {
    let tagged = format!("{key}:fill:{j}");
    match checker::codis_slot(tagged.as_bytes()) == checker::codis_slot(key.as_bytes()) {
        true if key.contains('{') => tagged,
        _ => format!("{{{key}}}:fill:{j}"),
    }
}

/// The Codis slots of the workload's keys that the scenario migrates: the ones worth moving.
pub fn slots_of(cfg: &WorkloadConfig, scenario: Option<PikaScenario>) -> Vec<u16> {
    let keys: Vec<String> = workload_keys(cfg)
        .into_iter()
        .filter(|k| scenario.is_none_or(|s| s.migrates(k)))
        .collect();
    workloads::slots_of(&keys, checker::codis_slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in PikaScenario::ALL {
            assert_eq!(PikaScenario::parse(s.name()), Some(s));
            assert!(!s.expected().is_empty());
        }
        assert_eq!(PikaScenario::parse("nope"), None);
        assert!(list().contains("pika-hll"));
        assert!(PikaScenario::Hll.migrates("Hll:{K6}") && !PikaScenario::Hll.migrates("str:{k0}"));
        assert!(PikaScenario::Case.migrates("str:{k0}"));
        assert!(PikaScenario::Kill.precondition().is_some());
        assert!(PikaScenario::Hll.precondition().is_none());
    }
}
