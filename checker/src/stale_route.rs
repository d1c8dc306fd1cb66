//! The `stale-route` anomaly: a client that forgot a `MOVED`.
//!
//! **stale-route**: a process followed `MOVED A -> B` for a slot, and a later op of the same
//! process on that slot was sent to `A` again and got the same `MOVED A -> B` as its first hop,
//! although nothing could have given the slot back to `A` in between: no migration of the slot
//! started, no repair touched it, no fault (kill, pause, failover, partition, ...) was recorded,
//! and no migration of it was open when the second op began. The client routed by a slot map
//! older than what the cluster had told it. Like `redirect-loop` it breaks no register by itself
//! (the old owner redirects again), so the verdict stays what linearizability says; it shows a
//! client bug that a slot owned by a node which *does* still answer (a partitioned old master)
//! turns into lost writes.

use crate::anomaly::{Anomaly, AnomalyEvent};
use crate::history::{History, Process, RedirectKind};
use crate::op::{line_of, Op};
use crate::phase::{Phase, Timeline};
use serde_json::json;
use std::collections::HashMap;

/// How many stale-route anomalies are listed; the rest are dropped.
pub const STALE_ROUTES_LISTED_MAX: usize = 100;

/// A `MOVED` a process followed: where it was sent from and to, and when its op completed.
struct Learned {
    from: String,
    to: String,
    op: usize,
    complete_event: usize,
}

/// One `stale-route` anomaly per op that repeated a `MOVED` its process had already followed,
/// at most [`STALE_ROUTES_LISTED_MAX`].
pub fn stale_route_cases(history: &History, ops: &[Op], timeline: &Timeline) -> Vec<Anomaly> {
    let changes: Vec<usize> = history
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.process == Process::Nemesis && !e.f.starts_with("migrate"))
        .map(|(i, _)| history.index(i))
        .collect();
    let mut learned: HashMap<(u64, u16), Learned> = HashMap::new();
    let mut out = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if out.len() >= STALE_ROUTES_LISTED_MAX {
            break;
        }
        if let Some(first) = op
            .redirects
            .first()
            .filter(|h| h.kind == RedirectKind::Moved)
        {
            let known = learned.get(&(op.process, first.slot)).filter(|l| {
                l.from == first.from
                    && l.to == first.to
                    && l.complete_event < op.invoke_event
                    && !owner_may_change(history, timeline, &changes, first.slot, l, op)
            });
            if let Some(l) = known {
                out.push(anomaly(history, &ops[l.op], op, first.slot));
            }
        }
        let Some(complete_event) = op.complete_event else {
            continue;
        };
        for hop in op
            .redirects
            .iter()
            .filter(|h| h.kind == RedirectKind::Moved)
        {
            learned.insert(
                (op.process, hop.slot),
                Learned {
                    from: hop.from.clone(),
                    to: hop.to.clone(),
                    op: i,
                    complete_event,
                },
            );
        }
    }
    out
}

/// Whether the slot's owner may have changed between the op that learned `l` and `op`: a
/// migration of the slot started, or a fault or repair (any nemesis event that is not a
/// migration's) was recorded in between, or a migration of the slot was open when `op` began.
fn owner_may_change(
    history: &History,
    timeline: &Timeline,
    changes: &[usize],
    slot: u16,
    l: &Learned,
    op: &Op,
) -> bool {
    let (after, before) = (l.complete_event, op.invoke_event);
    let between = |e: usize| e > after && e < before;
    let first_change = changes.partition_point(|&e| e <= after);
    if changes.get(first_change).is_some_and(|&e| e < before) {
        return true;
    }
    let migrated = timeline
        .migrations_of(slot)
        .any(|m| between(m.steps[0].event));
    let open = matches!(
        timeline.state_at(history, slot, before, None).phase,
        Phase::Starting
            | Phase::Importing
            | Phase::Migrating
            | Phase::Finalizing
            | Phase::Aborting
            | Phase::Atomic
    );
    migrated || open
}

fn anomaly(history: &History, first: &Op, op: &Op, slot: u16) -> Anomaly {
    let hop = &op.redirects[0];
    let (line_first, line) = (
        line_of(history, first.invoke_event),
        line_of(history, op.invoke_event),
    );
    Anomaly {
        class: "stale-route".into(),
        keys: op.key.iter().cloned().collect(),
        events: vec![
            AnomalyEvent {
                event: first.invoke_event,
                line: line_first,
            },
            AnomalyEvent {
                event: op.invoke_event,
                line,
            },
        ],
        explanation: format!(
            "line {line}: process {} {} was sent to {} and got MOVED {} for slot {slot}, which \
             its {} at line {line_first} had already been told; nothing changed the slot's owner \
             in between: the client routed by a stale slot map",
            op.process, op.f, hop.from, hop.to, first.f
        ),
        data: json!({"slot": slot, "from": hop.from, "to": hop.to,
                     "learned_line": line_first, "outcome": op.outcome.name()}),
        context: None,
        cause: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, Redirect};
    use crate::op::Ops;

    /// Rows: `process f hop` where hop is `-` or `from>to`, or `nemesis f {json}`.
    fn history(rows: &[&str]) -> History {
        let mut h = History::default();
        for (i, row) in rows.iter().enumerate() {
            let c: Vec<&str> = row.split_whitespace().collect();
            let t = i as u64 * 10;
            if c[0] == "nemesis" {
                let v = serde_json::from_str(c[2]).unwrap();
                h.events
                    .push(Event::new(EventType::Info, Process::Nemesis, c[1], v, t));
                continue;
            }
            let p = Process::Client(c[0].parse().unwrap());
            let mut inv = Event::new(EventType::Invoke, p, c[1], json!(null), t);
            inv.key = Some("k".into());
            let mut ok = Event::new(EventType::Ok, p, c[1], json!(null), t + 5);
            ok.key = Some("k".into());
            if let Some((from, to)) = c[2].split_once('>') {
                ok.redirects.push(Redirect {
                    kind: RedirectKind::Moved,
                    slot: 7,
                    from: from.into(),
                    to: to.into(),
                });
            }
            h.events.push(inv);
            h.events.push(ok);
        }
        h
    }

    fn cases(rows: &[&str]) -> Vec<Anomaly> {
        let h = history(rows);
        let ops = Ops::from_history(&h).unwrap().ops;
        stale_route_cases(&h, &ops, &Timeline::new(&h))
    }

    #[test]
    fn a_repeated_moved_is_a_stale_route() {
        let found = cases(&["0 read a>b", "0 read -", "0 read a>b"]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].class, "stale-route");
        assert_eq!(
            found[0].events.iter().map(|e| e.line).collect::<Vec<_>>(),
            [1, 5]
        );
        assert!(
            found[0].explanation.contains("MOVED b for slot 7"),
            "{}",
            found[0]
        );
    }

    #[test]
    fn other_processes_other_hops_and_changes_are_not() {
        assert!(
            cases(&["0 read a>b", "1 read a>b"]).is_empty(),
            "another process"
        );
        assert!(
            cases(&["0 read a>b", "0 read a>c"]).is_empty(),
            "another owner"
        );
        let pause = r#"{"node":"a","phase":"begin"}"#;
        assert!(
            cases(&[
                "0 read a>b",
                &format!("nemesis pause {pause}"),
                "0 read a>b"
            ])
            .is_empty(),
            "a fault in between"
        );
        let start = r#"{"slot":7,"from":"b","to":"a","phase":"stable"}"#;
        let end = r#"{"slot":7,"from":"b","to":"a","phase":"stable"}"#;
        assert!(
            cases(&[
                "0 read a>b",
                &format!("nemesis migrate-start {start}"),
                &format!("nemesis migrate-end {end}"),
                "0 read a>b"
            ])
            .is_empty(),
            "a migration of the slot in between"
        );
        let other = r#"{"slot":8,"from":"b","to":"a","phase":"stable"}"#;
        assert_eq!(
            cases(&[
                "0 read a>b",
                &format!("nemesis migrate-start {other}"),
                "0 read a>b"
            ])
            .len(),
            1,
            "a migration of another slot changes nothing"
        );
    }
}
