//! The nemesis schedule: which actions, when, against which targets — decided from the seed
//! alone before the run starts, so that the same seed gives the same schedule.
//!
//! Targets are indexes (the n-th master, the n-th slot of the workload), resolved against the
//! cluster as it is when the action fires: the schedule is reproducible even though the
//! cluster's shape (who is master after a failover) depends on timing.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// One kind of nemesis action, as named on the command line (`--nemesis kill,pause`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Classic slot migration (`SETSLOT` + `MIGRATE`), run to completion.
    Migrate,
    /// Valkey 9 atomic slot migration (`CLUSTER MIGRATESLOTS`).
    Atomic,
    /// A classic migration aborted half-way with `SETSLOT STABLE` (strands moved keys).
    Abort,
    /// A classic migration finalized on the target before the source is empty (loses keys).
    FinalizeEarly,
    /// An atomic migration cancelled half-way (`CLUSTER CANCELSLOTMIGRATIONS`).
    Cancel,
    /// A classic migration whose source or target is killed or paused half-way, then repaired.
    Strike,
    /// A classic migration whose source or target master is failed over (`CLUSTER FAILOVER` on
    /// its replica) half-way, then repaired; the case of redis/redis#6339.
    StrikeFailover,
    /// SIGKILL a node, restart it later with the same config.
    Kill,
    /// SIGSTOP a node, SIGCONT it later.
    Pause,
    /// `CLUSTER FAILOVER` (default, FORCE or TAKEOVER) on a replica.
    Failover,
    /// Cut a node off from other nodes or from clients (iptables on loopback), heal later.
    Partition,
    /// Add latency, loss and resets between clients and a master (its proxy), `fast` later.
    Slow,
}

impl FaultKind {
    /// Every kind, in a fixed order.
    pub const ALL: [FaultKind; 12] = [
        FaultKind::Migrate,
        FaultKind::Atomic,
        FaultKind::Abort,
        FaultKind::FinalizeEarly,
        FaultKind::Cancel,
        FaultKind::Strike,
        FaultKind::StrikeFailover,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Failover,
        FaultKind::Partition,
        FaultKind::Slow,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Migrate => "migrate",
            FaultKind::Atomic => "atomic",
            FaultKind::Abort => "abort",
            FaultKind::FinalizeEarly => "finalize-early",
            FaultKind::Cancel => "cancel",
            FaultKind::Strike => "strike",
            FaultKind::StrikeFailover => "strike-failover",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Failover => "failover",
            FaultKind::Partition => "partition",
            FaultKind::Slow => "slow",
        }
    }

    /// Whether this kind moves slots (runs on the migration stream) rather than striking nodes.
    pub fn is_migration(self) -> bool {
        matches!(
            self,
            FaultKind::Migrate
                | FaultKind::Atomic
                | FaultKind::Abort
                | FaultKind::FinalizeEarly
                | FaultKind::Cancel
                | FaultKind::Strike
                | FaultKind::StrikeFailover
        )
    }

    /// Whether this kind needs a replica per master (`--replicas 1`).
    pub fn needs_replicas(self) -> bool {
        matches!(self, FaultKind::Failover | FaultKind::StrikeFailover)
    }

    /// Whether this kind needs Valkey's atomic slot migration.
    pub fn needs_atomic_migration(self) -> bool {
        matches!(self, FaultKind::Atomic | FaultKind::Cancel)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        workloads::named::parse_name(
            &FaultKind::ALL,
            FaultKind::name,
            s,
            "nemesis",
            "all, none, or ",
        )
    }
}

/// Where a migration moves its slot (`--migrate-target`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrateTarget {
    /// Any master but the slot's owner, as the plan's `variant` picks.
    #[default]
    Any,
    /// A master that owns no slots (a spare master, one the clients' slot maps never named:
    /// redis-py #2432's case). When none is empty, the migration empties one instead: it moves a
    /// slot off the master owning the fewest slots, all of them the workload's, to another
    /// master; so about every other migration targets an empty master.
    Empty,
}

impl MigrateTarget {
    /// Every choice, in a fixed order.
    pub const ALL: [MigrateTarget; 2] = [MigrateTarget::Any, MigrateTarget::Empty];

    /// The command-line name, also in the history header.
    pub fn name(self) -> &'static str {
        match self {
            MigrateTarget::Any => "any",
            MigrateTarget::Empty => "empty",
        }
    }
}

impl fmt::Display for MigrateTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MigrateTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        workloads::named::parse_name(
            &MigrateTarget::ALL,
            MigrateTarget::name,
            s,
            "migrate target",
            "",
        )
    }
}

/// Parses `--nemesis` (`all`, `none`, or a comma-separated list), sorted and deduplicated.
pub fn parse_kinds(text: &str) -> Result<Vec<FaultKind>, String> {
    let mut kinds = Vec::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match word {
            "all" => kinds.extend(FaultKind::ALL),
            "none" => {}
            other => kinds.push(other.parse()?),
        }
    }
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

/// One planned action: what, when, against which (index-named) target, and for how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Planned {
    /// Milliseconds after the workload starts (the earliest time it may fire).
    pub at_ms: u64,
    /// The action.
    pub kind: FaultKind,
    /// Which target, as an index taken modulo the candidates that exist when it fires.
    pub target: u32,
    /// A second index: the migration's destination master, the partition's shape, the
    /// failover's mode.
    pub variant: u32,
    /// How long the fault is held before its inverse (0 for one-shot actions).
    pub hold_ms: u64,
}

/// A complete schedule: a migration stream and a fault stream that run concurrently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    /// Slot moves (classic, atomic, aborted, finalized early, cancelled), in order.
    pub migrations: Vec<Planned>,
    /// Node faults (kill, pause, failover, partition), in order; at most one at a time.
    pub faults: Vec<Planned>,
}

/// How dense a schedule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// The run's length: nothing is planned after it.
    pub duration_ms: u64,
    /// Mean gap between two migrations.
    pub migrate_interval_ms: u64,
    /// Mean gap between two faults.
    pub fault_interval_ms: u64,
    /// Longest time a fault is held before its inverse.
    pub hold_ms_max: u64,
}

impl Schedule {
    /// Plans every action of a run from `seed` alone.
    pub fn generate(seed: u64, kinds: &[FaultKind], pacing: Pacing) -> Schedule {
        let migration_kinds: Vec<FaultKind> =
            kinds.iter().copied().filter(|k| k.is_migration()).collect();
        let fault_kinds: Vec<FaultKind> = kinds
            .iter()
            .copied()
            .filter(|k| !k.is_migration())
            .collect();
        // Two independent streams from one seed, so adding a fault kind does not reshuffle the
        // migrations.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut fault_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7321);
        Schedule {
            migrations: stream(
                &mut rng,
                &migration_kinds,
                pacing.migrate_interval_ms,
                0,
                pacing,
            ),
            faults: stream(
                &mut fault_rng,
                &fault_kinds,
                pacing.fault_interval_ms,
                pacing.hold_ms_max,
                pacing,
            ),
        }
    }
}

fn stream(
    rng: &mut ChaCha8Rng,
    kinds: &[FaultKind],
    interval_ms: u64,
    hold_ms_max: u64,
    pacing: Pacing,
) -> Vec<Planned> {
    let mut planned = Vec::new();
    if kinds.is_empty() || interval_ms == 0 {
        return planned;
    }
    let mut at_ms = 0u64;
    // Kinds are dealt from a shuffled bag, refilled when empty: every kind gets its turn
    // within each round of `kinds.len()` actions, in a seeded order.
    let mut bag: Vec<FaultKind> = Vec::new();
    loop {
        // Gaps uniform in [interval/2, 3*interval/2]: mean `interval`, never bunched at zero.
        at_ms += interval_ms / 2 + rng.random_range(0..=interval_ms);
        if at_ms >= pacing.duration_ms {
            break;
        }
        if bag.is_empty() {
            bag = kinds.to_vec();
            bag.shuffle(rng);
        }
        let kind = bag.pop().expect("bag refilled");
        let hold_ms = if hold_ms_max == 0 || kind == FaultKind::Failover {
            0
        } else {
            rng.random_range(hold_ms_max / 4..=hold_ms_max)
        };
        planned.push(Planned {
            at_ms,
            kind,
            target: rng.random(),
            variant: rng.random(),
            hold_ms,
        });
        at_ms += hold_ms;
    }
    planned
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACING: Pacing = Pacing {
        duration_ms: 120_000,
        migrate_interval_ms: 3000,
        fault_interval_ms: 5000,
        hold_ms_max: 4000,
    };

    #[test]
    fn parses_lists_all_and_none() {
        assert_eq!(
            parse_kinds("kill,pause").unwrap(),
            vec![FaultKind::Kill, FaultKind::Pause]
        );
        assert_eq!(parse_kinds("all").unwrap(), FaultKind::ALL.to_vec());
        assert_eq!(parse_kinds("none").unwrap(), vec![]);
        assert_eq!(parse_kinds("pause,pause,migrate").unwrap().len(), 2);
        let err = parse_kinds("kill,explode").unwrap_err();
        assert!(
            err.contains("explode") && err.contains("partition"),
            "{err}"
        );
    }

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        let a = Schedule::generate(42, &FaultKind::ALL, PACING);
        let b = Schedule::generate(42, &FaultKind::ALL, PACING);
        let c = Schedule::generate(43, &FaultKind::ALL, PACING);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn streams_are_separate_and_fit_the_run() {
        let s = Schedule::generate(7, &FaultKind::ALL, PACING);
        assert!(s.migrations.iter().all(|p| p.kind.is_migration()));
        assert!(s.faults.iter().all(|p| !p.kind.is_migration()));
        assert!(s.migrations.len() >= 20, "about 40 migrations in 120 s");
        assert!(s.faults.len() >= 5, "a fault every ~7.5 s on average");
        for stream in [&s.migrations, &s.faults] {
            assert!(stream
                .windows(2)
                .all(|w| w[0].at_ms + w[0].hold_ms < w[1].at_ms));
            assert!(stream.iter().all(|p| p.at_ms < PACING.duration_ms));
        }
        let kinds: std::collections::BTreeSet<FaultKind> = s
            .migrations
            .iter()
            .chain(&s.faults)
            .map(|p| p.kind)
            .collect();
        assert_eq!(
            kinds.len(),
            FaultKind::ALL.len(),
            "every kind gets a turn in 120 s"
        );
    }

    #[test]
    fn migration_stream_ignores_fault_kinds() {
        let only = Schedule::generate(9, &[FaultKind::Migrate], PACING);
        let with = Schedule::generate(9, &[FaultKind::Migrate, FaultKind::Kill], PACING);
        assert_eq!(only.migrations, with.migrations);
        assert!(only.faults.is_empty());
    }
}
