//! Migration timelines rebuilt from nemesis events: classic, PikiwiDB, atomic, abort and repair.

use super::timeline::{PIKA_ASYNC, PIKA_SYNC};
use super::*;
use crate::history::{Event, EventType, History, Process};
use serde_json::json;

/// A history of nemesis events, one per row: `f` and its value object; event `i` is on
/// line `i + 1`.
fn nemesis(rows: &[(&str, Value)]) -> History {
    let mut h = History::default();
    for (i, (f, value)) in rows.iter().enumerate() {
        let time = i as u64 * 10;
        let e = Event::new(EventType::Info, Process::Nemesis, f, value.clone(), time);
        h.events.push(e);
    }
    h
}

#[test]
fn classic_migration_phases() {
    let m = |phase: &str, extra: Value| {
        let mut v = json!({"slot": 7, "from": "a:1", "to": "b:2", "phase": phase});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    //  event  f               phase        extra
    let h = nemesis(&[
        /* 0 */ ("migrate-start", m("stable", json!({}))),
        /* 1 */ ("migrate-step", m("importing", json!({"node": "b:2"}))),
        /* 2 */ ("migrate-step", m("migrating", json!({"node": "a:1"}))),
        /* 3 */
        (
            "migrate-step",
            m("keys-moved", json!({"keys": ["k1"], "moved_total": 1})),
        ),
        /* 4 */ ("migrate-step", m("finalized", json!({"node": "b:2"}))),
        /* 5 */ ("migrate-end", m("stable", json!({"keys_moved": 1}))),
    ]);
    let t = Timeline::new(&h);
    assert_eq!(t.migrations.len(), 1);
    let at = |e: usize, key: &str| t.state_at(&h, 7, e, Some(key));
    assert_eq!(at(0, "k1").phase, Phase::Stable);
    assert_eq!(at(1, "k1").phase, Phase::Starting);
    assert_eq!(at(2, "k1").phase, Phase::Importing);
    assert_eq!(at(3, "k1").phase, Phase::Migrating);
    assert_eq!(at(3, "k1").key_moved, Some(false));
    assert_eq!(at(4, "k1").key_moved, Some(true));
    assert_eq!(at(4, "k2").key_moved, Some(false));
    assert_eq!(at(4, "k1").since_line, Some(3));
    assert_eq!(at(5, "k1").phase, Phase::Finalizing);
    assert_eq!(at(5, "k1").finalized_on, vec!["b:2".to_string()]);
    assert_eq!(at(6, "k1").phase, Phase::Stable);
    assert_eq!(t.state_at(&h, 8, 6, None).phase, Phase::Stable);
    assert_eq!(
        at(4, "k1").to_string(),
        "slot 7 migrating a:1 -> b:2 since line 3 (1 keys moved, this one included)"
    );
    let phases: Vec<Phase> = t.phases_of(&h, 7, 64).iter().map(|s| s.phase).collect();
    use Phase::*;
    assert_eq!(
        phases,
        vec![Starting, Importing, Migrating, Finalizing, Stable]
    );
}

#[test]
fn pika_migrations_open_between_begin_and_end() {
    let m = |phase: &str, outcome: Option<&str>| {
        let mut v = json!({"slot": 7, "from": "a:1", "to": "b:2", "phase": phase});
        if let Some(o) = outcome {
            v["outcome"] = json!(o);
        }
        v
    };
    let h = nemesis(&[
        /* 0 */ (PIKA_SYNC, m("begin", None)),
        /* 1 */ (PIKA_SYNC, m("end", Some("done"))),
        /* 2 */ (PIKA_ASYNC, m("begin", None)),
        /* 3 */ (PIKA_ASYNC, m("end", Some("stuck"))),
    ]);
    let t = Timeline::new(&h);
    assert_eq!(t.migrations.len(), 2);
    let at = |e: usize| t.state_at(&h, 7, e, None).phase;
    assert_eq!(at(0), Phase::Stable);
    assert_eq!(at(1), Phase::Migrating);
    assert_eq!(at(2), Phase::Stable);
    assert_eq!(at(3), Phase::Migrating);
    assert_eq!(at(4), Phase::Migrating, "a stuck migration stays open");
}

/// An aborted migration (slot 1, later repaired), one finalized early that lost a key (slot 2)
/// and a cancelled atomic migration (slots 10 and 20).
fn aborts_and_repairs() -> History {
    nemesis(&[
        /* 0 */
        (
            "migrate-start",
            json!({"slot": 1, "from": "a", "to": "b", "phase": "stable"}),
        ),
        /* 1 */
        (
            "migrate-step",
            json!({"slot": 1, "phase": "keys-moved", "keys": ["x"]}),
        ),
        /* 2 */
        (
            "migrate-step",
            json!({"slot": 1, "phase": "stable", "node": "b"}),
        ),
        /* 3 */
        (
            "migrate-end",
            json!({"slot": 1, "phase": "aborted", "stranded_keys": ["x"]}),
        ),
        /* 4 */
        (
            "migrate-start",
            json!({"slot": 2, "from": "a", "to": "b", "phase": "stable"}),
        ),
        /* 5 */
        (
            "migrate-step",
            json!({"slot": 2, "phase": "finalized", "early": true, "node": "b"}),
        ),
        /* 6 */
        (
            "migrate-step",
            json!({"slot": 2, "phase": "keys-lost", "lost_keys": ["y"]}),
        ),
        /* 7 */
        (
            "migrate-start",
            json!({"slot": 10, "from": "a", "to": "b", "phase": "stable", "mode": "atomic", "slots": [10, 20]}),
        ),
        /* 8 */
        (
            "migrate-step",
            json!({"slot": 10, "phase": "atomic-progress", "state": "snapshotting", "mode": "atomic"}),
        ),
        /* 9 */ ("migrate-cancel", json!({"node": "a", "phase": "requested"})),
        /* 10 */
        (
            "migrate-end",
            json!({"slot": 10, "phase": "atomic-cancelled", "mode": "atomic"}),
        ),
        /* 11 */
        (
            "repair-step",
            json!({"slot": 1, "phase": "finished", "to": "b"}),
        ),
    ])
}

#[test]
fn abort_early_finalize_atomic_and_repair() {
    let h = aborts_and_repairs();
    let t = Timeline::new(&h);
    let s = t.state_at(&h, 1, 4, Some("x"));
    assert_eq!(
        (s.phase, s.key_stranded_or_lost),
        (Phase::Aborted, Some(true))
    );
    assert_eq!(s.stable_on, vec!["b".to_string()]);
    let s = t.state_at(&h, 2, 7, Some("y"));
    assert_eq!(
        (s.phase, s.key_stranded_or_lost),
        (Phase::FinalizedEarly, Some(true))
    );
    let s = t.state_at(&h, 15, 9, Some("z"));
    assert_eq!(
        (s.phase, s.atomic, s.atomic_state.as_deref()),
        (Phase::Atomic, true, Some("snapshotting"))
    );
    assert_eq!(s.key_moved, None);
    let s = t.state_at(&h, 20, 10, None);
    assert_eq!(s.atomic_state.as_deref(), Some("cancel-requested"));
    assert_eq!(t.state_at(&h, 20, 11, None).phase, Phase::Stable);
    assert_eq!(t.state_at(&h, 21, 11, None).migration_line, None);
    let s = t.state_at(&h, 1, 12, None);
    assert_eq!(
        (s.phase, s.repair.as_deref()),
        (Phase::Stable, Some("finished"))
    );
}

#[test]
fn a_phase_serializes_as_its_name() {
    for phase in [Phase::Stable, Phase::FinalizedEarly, Phase::Atomic] {
        assert_eq!(serde_json::to_value(phase).unwrap(), json!(phase.name()));
    }
    assert_eq!(Phase::FinalizedEarly.name(), "finalized-early");
}
