//! Named end-to-end scenarios: presets of cluster shape, nemesis plan and pacing that make real
//! Redis Cluster and Valkey lose data the way they are known to, so that a user can watch
//! slotcheck find it (`slotcheck test --scenario NAME`; `--scenario list` prints them).
//!
//! Each scenario says which anomaly the checker must report, and after the run says whether the
//! fault that causes it actually happened ([`Precondition`]), computed from the history alone:
//! a run in which the partitioned master acknowledged no write cannot lose one.

use crate::harness::NODE_TIMEOUT_MS_DEFAULT;
use crate::nemesis::schedule::{FaultKind, Pacing, Planned, Schedule};
use anyhow::Result;
use checker::{History, Op, Process};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// When the partition of `partitioned-master` begins, after the workload starts.
const PARTITION_AT_MS: u64 = 3000;
/// How long the master stays isolated: the node timeout, the replica's election, and margin.
const PARTITION_HOLD_MS: u64 = 7000;
/// How long every scenario's workload runs.
pub(crate) const DURATION_MS: u64 = 15_000;
// The isolation outlasts the node timeout twice over (failure detection, then the election), and
// the run outlasts the isolation.
const _: () = assert!(PARTITION_HOLD_MS > 2 * NODE_TIMEOUT_MS_DEFAULT);
const _: () = assert!(PARTITION_AT_MS + PARTITION_HOLD_MS < DURATION_MS);

/// A named scenario (see [`Scenario::description`] for what each does and must produce).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// (a) A master cut off from the other nodes (not from clients) keeps acknowledging writes
    /// until the node timeout; its replica takes over; after the heal those writes are gone.
    PartitionedMaster,
    /// (b) A master killed and restarted within the node timeout, persistence off, comes back
    /// empty while still owning its slots.
    RestartEmpty,
    /// (c) A classic migration aborted with `SETSLOT STABLE` after a batch strands moved keys.
    AbortStrands,
    /// (d) A classic migration finalized while the source still holds keys: the source drops them.
    FinalizeEarly,
    /// (e) The source or target master of a half-migrated slot failed over to its replica, which
    /// on Redis 7.0 does not know the slot is migrating (redis/redis#6339; fixed in Valkey 8.0).
    FailoverMidMigration,
}

impl Scenario {
    /// Every scenario, in a fixed order.
    pub const ALL: [Scenario; 5] = [
        Scenario::PartitionedMaster,
        Scenario::RestartEmpty,
        Scenario::AbortStrands,
        Scenario::FinalizeEarly,
        Scenario::FailoverMidMigration,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::PartitionedMaster => "partitioned-master",
            Scenario::RestartEmpty => "restart-empty",
            Scenario::AbortStrands => "abort-strands",
            Scenario::FinalizeEarly => "finalize-early",
            Scenario::FailoverMidMigration => "failover-mid-migration",
        }
    }

    /// What the scenario does and the anomaly it must produce.
    pub fn description(self) -> &'static str {
        match self {
            Scenario::PartitionedMaster => {
                "3 masters with a replica each; 3 s in, one master is cut off from every other \
                 node (iptables; clients still reach it) for 7 s. It keeps acknowledging writes \
                 until the node timeout (2 s), its replica is elected, and after the heal it \
                 rejoins as a replica and drops them. Expected: lost-write (reads after the \
                 failover see values older than writes the old master acknowledged)."
            }
            Scenario::RestartEmpty => {
                "3 masters, no replicas, persistence off; every ~4 s a master is killed (SIGKILL \
                 or SIGTERM) and restarted within 1 s, well inside the node timeout. It comes back \
                 empty while still owning its slots. Expected: lost-write (its keys read as \
                 absent after acknowledged writes)."
            }
            Scenario::AbortStrands => {
                "3 masters; every ~1.5 s a slot of the workload is migrated classically and \
                 aborted with SETSLOT STABLE after the first MIGRATE batch. The moved keys are \
                 stranded on the target, which does not own the slot. Expected: lost-write (the \
                 stranded keys read as absent from the owner)."
            }
            Scenario::FinalizeEarly => {
                "3 masters; every ~1.5 s a slot of the workload gets SETSLOT NODE <target> on \
                 the target and the other masters before any key moved; the source learns it \
                 and deletes the keys. Expected: lost-write (the keys read as absent from the \
                 new owner)."
            }
            Scenario::FailoverMidMigration => {
                "3 masters with a replica each (persistence as --persistence says, aof by default); every migration of a workload \
                 slot stops after its first MIGRATE batch (slot still MIGRATING on the source, \
                 IMPORTING on the target) while a replica of the source (1st, 3rd, ... \
                 migration) or of the target (2nd, 4th, ...) takes over with a plain CLUSTER \
                 FAILOVER, the safe kind; then the slot is repaired as redis-cli --cluster fix \
                 would. Redis 7.0 keeps the migration state on the master only \
                 (redis/redis#6339): the new source master serves the slot as if nothing had \
                 moved, so keys already moved read as absent and are written afresh; a new \
                 target master answers MOVED back to the source, which still sends ASK to the \
                 demoted target (a redirect loop). Expected on Redis 7.0: lost-write (or \
                 stale-read, when the repair brings the moved copy back after a read of \
                 absent); Valkey 8.0 and later replicate the state and must stay valid."
            }
        }
    }

    /// The anomaly class the checker must report when the precondition occurred (on Redis 7.0
    /// for `failover-mid-migration`: Valkey 8.0 and later fixed its cause and must stay valid).
    pub fn expected(self) -> &'static str {
        match self {
            Scenario::PartitionedMaster
            | Scenario::RestartEmpty
            | Scenario::AbortStrands
            | Scenario::FinalizeEarly
            | Scenario::FailoverMidMigration => "lost-write",
        }
    }

    /// The nemesis this scenario runs.
    pub(crate) fn nemesis(self) -> FaultKind {
        match self {
            Scenario::PartitionedMaster => FaultKind::Partition,
            Scenario::RestartEmpty => FaultKind::Kill,
            Scenario::AbortStrands => FaultKind::Abort,
            Scenario::FinalizeEarly => FaultKind::FinalizeEarly,
            Scenario::FailoverMidMigration => FaultKind::StrikeFailover,
        }
    }

    /// The nemesis plan: `partitioned-master` isolates one master (chosen by the seed) two-way
    /// once; the others use the seeded schedule of their one nemesis kind.
    pub fn schedule(self, seed: u64, pacing: Pacing) -> Schedule {
        if self == Scenario::FailoverMidMigration {
            // The seeded plan, with the struck side alternating (variant bit 0: source first),
            // so every run fails over both a source and a target.
            let mut plan = Schedule::generate(seed, &[self.nemesis()], pacing);
            for (i, p) in plan.migrations.iter_mut().enumerate() {
                p.variant = (p.variant & !1) | (i as u32 % 2);
            }
            return plan;
        }
        if self != Scenario::PartitionedMaster {
            return Schedule::generate(seed, &[self.nemesis()], pacing);
        }
        // The runner takes a partition's target modulo the nodes sorted by address; masters are
        // nodes 0..3 on 127.0.0.10..12, so targets 0..3 are masters. Variant 0: isolate, both ways.
        Schedule {
            migrations: Vec::new(),
            faults: vec![Planned {
                at_ms: PARTITION_AT_MS,
                kind: FaultKind::Partition,
                target: (seed % 3) as u32,
                variant: 0,
                hold_ms: PARTITION_HOLD_MS,
            }],
        }
    }

    /// Whether the fault this scenario relies on happened in `history`, and its size.
    pub fn precondition(self, history: &History, ops: &[Op]) -> Precondition {
        let events = nemesis_events(history);
        match self {
            Scenario::PartitionedMaster => partitioned_master(&events, ops),
            Scenario::RestartEmpty => restart_empty(&events, ops),
            Scenario::AbortStrands => migration_losses(&events, "aborted", "stranded"),
            Scenario::FinalizeEarly => migration_losses(&events, "finalized-early", "lost"),
            Scenario::FailoverMidMigration => failovers_mid_migration(&events),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        workloads::named::parse_name(&Scenario::ALL, Scenario::name, s, "scenario", "list, ")
    }
}

/// Whether a scenario's fault happened, with the count that says how much it could lose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Precondition {
    /// The fault happened in a way that must lose data.
    pub occurred: bool,
    /// Acknowledged writes, keys or slots exposed (what `text` counts).
    pub count: u64,
    /// One sentence for the run's output.
    pub text: String,
}

/// A nemesis event: position, `f`, `value`, time.
struct Nemesis<'h> {
    event: usize,
    f: &'h str,
    value: &'h Value,
    time: u64,
}

impl Nemesis<'_> {
    fn str(&self, field: &str) -> Option<&str> {
        self.value.get(field).and_then(Value::as_str)
    }
}

fn nemesis_events(history: &History) -> Vec<Nemesis<'_>> {
    history
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.process == Process::Nemesis)
        .map(|(event, e)| Nemesis {
            event,
            f: e.f.as_str(),
            value: &e.value,
            time: e.time,
        })
        .collect()
}

fn is_write(op: &Op) -> bool {
    op.outcome == checker::Outcome::Ok && matches!(op.f.as_str(), "write" | "cas")
}

/// (a): writes the isolated master acknowledged while isolated, and whether another node served
/// its slots afterwards (the failover).
fn partitioned_master(events: &[Nemesis<'_>], ops: &[Op]) -> Precondition {
    let isolations = events.iter().filter(|e| {
        e.f == "partition"
            && e.str("phase") == Some("end")
            && e.value.get("error").is_none()
            && e.str("kind") == Some("isolate")
    });
    let (mut acked, mut lines) = (0u64, Vec::new());
    let mut occurred = false;
    for iso in isolations {
        let node = iso.str("node").unwrap_or_default();
        let heal = events
            .iter()
            .find(|e| e.event > iso.event && matches!(e.f, "heal" | "heal-all"))
            .map_or(usize::MAX, |e| e.event);
        let isolated = |op: &&Op| op.complete_event.is_some_and(|c| c > iso.event && c < heal);
        let n = ops
            .iter()
            .filter(|op| op.node.as_deref() == Some(node) && is_write(op))
            .filter(isolated)
            .count() as u64;
        let slots: BTreeSet<u16> = ops
            .iter()
            .filter(|op| op.invoke_event < iso.event && op.node.as_deref() == Some(node))
            .filter(|op| op.outcome == checker::Outcome::Ok)
            .filter_map(|op| op.slot)
            .collect();
        let successor = ops
            .iter()
            .filter(|op| op.invoke_event > iso.event && op.outcome == checker::Outcome::Ok)
            .filter(|op| op.slot.is_some_and(|s| slots.contains(&s)))
            .find_map(|op| op.node.as_deref().filter(|n| *n != node));
        acked += n;
        occurred |= n > 0 && successor.is_some();
        lines.push(match successor {
            Some(s) => format!(
                "the partitioned master {node} acknowledged {n} writes after its isolation; \
                 its slots were then served by {s} (failover)"
            ),
            None if slots.is_empty() => {
                format!("{node} was isolated but served no slot: it was not a master")
            }
            None => format!(
                "the partitioned master {node} acknowledged {n} writes after its isolation; \
                 no other node served its slots afterwards (no failover seen)"
            ),
        });
    }
    if lines.is_empty() {
        lines.push("no master was isolated (the partition failed or never ran)".into());
    }
    Precondition {
        occurred,
        count: acked,
        text: lines.join("; "),
    }
}

/// (b): for each kill (or graceful shutdown) and restart of a node, the keys it had
/// acknowledged writes to before, and how many of those it first answered as absent after.
fn restart_empty(events: &[Nemesis<'_>], ops: &[Op]) -> Precondition {
    let (mut empty_total, mut restarts, mut worst_ms) = (0u64, 0usize, 0u64);
    let mut read_back_total = 0usize;
    for down in events
        .iter()
        .filter(|e| matches!(e.f, "kill" | "shutdown") && e.str("phase") == Some("begin"))
    {
        let node = down.str("node").unwrap_or_default();
        let Some(up) = events.iter().find(|e| {
            e.event > down.event
                && e.f == "restart"
                && e.str("phase") == Some("end")
                && e.str("node") == Some(node)
        }) else {
            continue;
        };
        restarts += 1;
        worst_ms = worst_ms.max((up.time.saturating_sub(down.time)) / 1_000_000);
        let on_node = |op: &&Op| op.node.as_deref() == Some(node);
        let before: BTreeSet<&str> = ops
            .iter()
            .filter(on_node)
            .filter(|op| is_write(op) && op.complete_event.is_some_and(|c| c < down.event))
            .filter_map(|op| op.key.as_deref())
            .collect();
        // The first ok read of each such key the restarted node answered.
        let mut first: BTreeMap<&str, bool> = BTreeMap::new();
        for op in ops
            .iter()
            .filter(on_node)
            .filter(|op| op.invoke_event > up.event)
        {
            let Some(key) = op.key.as_deref().filter(|k| before.contains(k)) else {
                continue;
            };
            if op.f == "read" && op.outcome == checker::Outcome::Ok {
                first.entry(key).or_insert(op.complete_value.is_null());
            }
        }
        read_back_total += first.len();
        empty_total += first.values().filter(|absent| **absent).count() as u64;
    }
    let text = if restarts == 0 {
        "no master was killed and restarted".to_string()
    } else {
        format!(
            "{restarts} masters restarted, each within {worst_ms} ms of its kill (node timeout \
             {NODE_TIMEOUT_MS_DEFAULT} ms); {empty_total} of the {read_back_total} keys they had \
             acknowledged writes to and served again read as absent: they came back empty while \
             owning their slots"
        )
    };
    Precondition {
        occurred: empty_total > 0,
        count: empty_total,
        text,
    }
}

/// (e): failovers that landed while their slot was half-migrated (`migrate-step` `failed-over`
/// without an error, after at least one key moved), by the side struck.
fn failovers_mid_migration(events: &[Nemesis<'_>]) -> Precondition {
    let landed: Vec<&Nemesis<'_>> = events
        .iter()
        .filter(|e| e.f == "migrate-step" && e.str("phase") == Some("failed-over"))
        .filter(|e| e.value.get("error").is_none())
        .collect();
    let moved = |e: &&&Nemesis<'_>| e.value.get("moved_total").and_then(Value::as_u64) > Some(0);
    let side = |role: &str| {
        landed
            .iter()
            .filter(moved)
            .filter(|e| e.str("role") == Some(role))
            .count()
    };
    let (source, target) = (side("source"), side("target"));
    let keys: u64 = landed
        .iter()
        .filter_map(|e| e.value.get("moved_total").and_then(Value::as_u64))
        .sum();
    Precondition {
        occurred: source + target > 0,
        count: (source + target) as u64,
        text: format!(
            "{} failovers landed while their slot was half-migrated ({source} of the source \
             master, {target} of the target master; {keys} keys had moved before them), {} \
             without keys moved",
            source + target,
            landed.len() - source - target
        ),
    }
}

/// (c), (d): keys the migrations that ended in `phase` reported in their `field` (`stranded`,
/// `lost`).
fn migration_losses(events: &[Nemesis<'_>], phase: &str, field: &str) -> Precondition {
    let ends: Vec<&Nemesis<'_>> = events
        .iter()
        .filter(|e| e.f == "migrate-end" && e.str("phase") == Some(phase))
        .collect();
    let keys: u64 = ends
        .iter()
        .filter_map(|e| e.value.get(field).and_then(Value::as_u64))
        .sum();
    let what = if field == "lost" {
        "lost by early finalize"
    } else {
        "stranded"
    };
    Precondition {
        occurred: keys > 0,
        count: keys,
        text: format!("{keys} keys {what} ({} migrations {phase})", ends.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::{Event, EventType, Ops};
    use serde_json::json;

    /// Builds a history from rows: `nemesis f {json}` or `process type f key value node`.
    fn history(rows: &[&str]) -> History {
        let mut h = History::default();
        for (i, row) in rows.iter().enumerate() {
            let c: Vec<&str> = row.split_whitespace().collect();
            let t = i as u64 * 1_000_000;
            if c[0] == "nemesis" {
                let v = serde_json::from_str(c[2]).unwrap();
                h.events
                    .push(Event::new(EventType::Info, Process::Nemesis, c[1], v, t));
                continue;
            }
            let kind = match c[1] {
                "invoke" => EventType::Invoke,
                "ok" => EventType::Ok,
                _ => EventType::Fail,
            };
            let p = Process::Client(c[0].parse().unwrap());
            let mut e = Event::new(kind, p, c[2], serde_json::from_str(c[4]).unwrap(), t);
            e.key = Some(c[3].into());
            e.node = Some(c[5].into());
            e.slot = Some(c[3].len() as u16);
            h.events.push(e);
        }
        h
    }

    fn pre(s: Scenario, rows: &[&str]) -> Precondition {
        let h = history(rows);
        let ops = Ops::from_history(&h).unwrap().ops;
        s.precondition(&h, &ops)
    }

    #[test]
    fn names_round_trip_and_schedules_fit() {
        for s in Scenario::ALL {
            assert_eq!(s.name().parse::<Scenario>(), Ok(s));
            assert!(s.description().contains(s.expected()), "{s}");
        }
        let pacing = Pacing {
            duration_ms: DURATION_MS,
            migrate_interval_ms: 1500,
            fault_interval_ms: 4000,
            hold_ms_max: 1000,
        };
        let plan = Scenario::PartitionedMaster.schedule(5, pacing);
        assert_eq!(plan.faults.len(), 1);
        assert!(plan.faults[0].target < 3 && plan.faults[0].variant == 0);
        let kills = Scenario::RestartEmpty.schedule(5, pacing);
        assert!(!kills.faults.is_empty());
        assert!(kills
            .faults
            .iter()
            .all(|p| p.kind == FaultKind::Kill && p.hold_ms < NODE_TIMEOUT_MS_DEFAULT));
    }

    #[test]
    fn partitioned_master_counts_isolated_acks_and_sees_the_failover() {
        let iso = r#"{"kind":"isolate","node":"m","one_way":false,"phase":"end"}"#;
        let p = pre(
            Scenario::PartitionedMaster,
            &[
                "0 invoke write kk 1 m",
                "0 ok     write kk 1 m",
                &format!("nemesis partition {iso}"),
                "0 invoke write kk 2 m",
                "0 ok     write kk 2 m",
                "1 invoke read  kk null r",
                "1 ok     read  kk 1 r",
                r#"nemesis heal {"phase":"begin"}"#,
            ],
        );
        assert!(p.occurred, "{p:?}");
        assert_eq!(p.count, 1);
        assert!(p.text.contains("acknowledged 1 writes") && p.text.contains("served by r"));
    }

    #[test]
    fn restart_empty_counts_keys_read_absent() {
        let p = pre(
            Scenario::RestartEmpty,
            &[
                "0 invoke write kk 1 m",
                "0 ok     write kk 1 m",
                r#"nemesis kill {"node":"m","phase":"begin"}"#,
                r#"nemesis restart {"node":"m","phase":"end"}"#,
                "0 invoke read kk null m",
                "0 ok     read kk null m",
            ],
        );
        assert!(p.occurred, "{p:?}");
        assert_eq!(p.count, 1);
        let kept = pre(
            Scenario::RestartEmpty,
            &[
                "0 invoke write kk 1 m",
                "0 ok     write kk 1 m",
                r#"nemesis kill {"node":"m","phase":"begin"}"#,
                r#"nemesis restart {"node":"m","phase":"end"}"#,
                "0 invoke read kk null m",
                "0 ok     read kk 1 m",
            ],
        );
        assert!(
            !kept.occurred && kept.text.contains("0 of the 1 keys"),
            "{kept:?}"
        );
    }

    #[test]
    fn failover_mid_migration_alternates_sides_and_counts_landed_failovers() {
        let pacing = Pacing {
            duration_ms: DURATION_MS,
            migrate_interval_ms: 1500,
            fault_interval_ms: 4000,
            hold_ms_max: 1000,
        };
        let plan = Scenario::FailoverMidMigration.schedule(7, pacing);
        assert!(plan.migrations.len() >= 4 && plan.faults.is_empty());
        for (i, p) in plan.migrations.iter().enumerate() {
            assert_eq!(p.kind, FaultKind::StrikeFailover);
            assert_eq!(p.variant % 2, i as u32 % 2, "source first, then target");
        }
        let step = |role: &str, moved: u64, error: bool| {
            let mut v = json!({"slot": 1, "phase": "failed-over", "role": role,
                               "mode": "default", "moved_total": moved});
            if error {
                v["error"] = json!("timeout");
            }
            format!("nemesis migrate-step {v}")
        };
        let p = pre(
            Scenario::FailoverMidMigration,
            &[
                &step("source", 2, false),
                &step("target", 1, false),
                &step("target", 0, false),
                &step("source", 3, true),
            ],
        );
        assert_eq!((p.occurred, p.count), (true, 2), "{p:?}");
        assert!(p.text.starts_with("2 failovers landed"), "{}", p.text);
        assert!(p
            .text
            .contains("1 of the source master, 1 of the target master"));
        let none = pre(Scenario::FailoverMidMigration, &[]);
        assert!(!none.occurred);
    }

    #[test]
    fn migration_losses_sum_the_end_events() {
        let end = |n: u64| json!({"slot": 1, "phase": "aborted", "stranded": n}).to_string();
        let p = pre(
            Scenario::AbortStrands,
            &[
                &format!("nemesis migrate-end {}", end(1)),
                &format!("nemesis migrate-end {}", end(2)),
            ],
        );
        assert_eq!((p.occurred, p.count), (true, 3));
        assert_eq!(p.text, "3 keys stranded (2 migrations aborted)");
        let none = pre(Scenario::FinalizeEarly, &[]);
        assert!(!none.occurred && none.text.starts_with("0 keys lost by early finalize"));
    }
}
