//! Coverage of small histories, counted exactly; the migration window to the event.

use super::*;
use crate::history::Batch;
use crate::op::Ops;
use crate::testkit::h;

/// The coverage of the history in `table` (see `testkit::h`).
fn cov(table: &str) -> (History, Coverage) {
    let history = h(table);
    let ops = Ops::from_history(&history).unwrap().ops;
    let c = coverage(&history, &ops, &Timeline::new(&history));
    (history, c)
}

/// A classic migration of slot 7 (lines 4..12, aborted), ops on both sides of each boundary.
const WINDOW: &str = r#"
    # event
    9          invoke write         k  0     @5   slot=7
    9          ok     write         k  0     @6   slot=7
    # 2: invoked on the line before migrate-start, completed inside: not in the window
    0          invoke write         k  1     @10  slot=7
    nemesis    info   migrate-start -  {"slot":7,"from":"a:1","to":"b:2","phase":"stable"} @20
    # 4: on the line after migrate-start: in
    1          invoke write         k  2     @21  slot=7
    0          ok     write         k  1     @22  slot=7
    nemesis    info   migrate-step  -  {"slot":7,"phase":"migrating","node":"a:1"} @23
    1          ok     write         k  2     @24  slot=7 ask
    # 8: another slot, during the window: not
    2          invoke read          j  null  @25  slot=8
    2          ok     read          j  null  @26  slot=8
    # 10: on the line before migrate-end: in
    3          invoke read          k  null  @27  slot=7
    nemesis    info   migrate-end   -  {"slot":7,"phase":"aborted"} @28
    # 12: on the line after migrate-end: not
    4          invoke write         k  3     @29  slot=7
    3          ok     read          k  2     @30  slot=7
    4          ok     write         k  3     @31  slot=7
    # 15: no slot recorded (a key is not enough: imported histories have keys but no cluster)
    5          invoke read          z  null  @32
    5          ok     read          z  null  @33
    # 17: never completed, no slot recorded: its key's slot, from the other ops on k
    6          invoke write         k  4     @34
    # 18: a final read, counted apart
    4294967296 invoke read          k  null  @40  slot=7
    4294967296 ok     read          k  3     @41  slot=7 moved
"#;

#[test]
fn the_window_runs_from_migrate_start_to_migrate_end_by_event() {
    let (history, c) = cov(WINDOW);
    let want = Coverage {
        ops: 8,
        final_reads: 1,
        no_slot: 1,
        in_migration: 2,
        redirected: 1,
        ..Coverage::default()
    };
    assert_eq!(c.hops.ask, 1, "the final read's moved hop is not counted");
    assert_eq!(c.hops.total(), 1);
    assert_eq!(
        Coverage {
            hops: Default::default(),
            ..c
        },
        want
    );
    // Event by event: strictly after migrate-start (3), up to migrate-end (11), which ends it.
    let t = Timeline::new(&history);
    let inside: Vec<usize> = (0..=history.events.len())
        .filter(|&e| in_migration(&history, &t, 7, e))
        .collect();
    assert_eq!(inside, (4..11).collect::<Vec<_>>());
    assert!((0..=history.events.len()).all(|e| !in_migration(&history, &t, 8, e)));
}

#[test]
fn atomic_ranges_and_migrations_closed_by_a_repair() {
    let (_, c) = cov(r#"
        nemesis  info  migrate-start -  {"slot":100,"slots":[100,102],"mode":"atomic","from":"a:1","to":"b:2","phase":"stable"} @1
        nemesis  info  migrate-start -  {"slot":9,"from":"a:1","to":"b:2","phase":"stable"} @2
        # in: slot 101 of the atomic range, and slot 9 (open, not ended)
        0        invoke read  a  null  @3  slot=101
        0        ok     read  a  null  @4  slot=101
        1        invoke read  b  null  @5  slot=9
        1        ok     read  b  null  @6  slot=9
        nemesis  info  migrate-end   -  {"slot":100,"phase":"atomic-done"} @7
        nemesis  info  repair-step   -  {"slot":9,"phase":"finished","to":"b:2"} @8
        # out: both over (the repair put slot 9 back stable); slot 103 never migrated
        2        invoke read  a  null  @9  slot=102
        2        ok     read  a  null  @10 slot=102
        3        invoke read  b  null  @11 slot=9
        3        ok     read  b  null  @12 slot=9
        4        invoke read  c  null  @13 slot=103
        4        ok     read  c  null  @14 slot=103
    "#);
    assert_eq!((c.ops, c.in_migration, c.no_slot), (5, 2, 0));
}

#[test]
fn a_migration_never_ended_runs_to_the_end() {
    let (_, c) = cov(r#"
        nemesis  info  migrate-start -  {"slot":5,"phase":"stable"} @1
        nemesis  info  migrate-end   -  {"slot":5,"phase":"failed"} @2
        0        invoke read  a  null  @3  slot=5
        0        ok     read  a  null  @4  slot=5
        nemesis  info  migrate-start -  {"slot":5,"phase":"stable"} @5
        1        invoke read  a  null  @6  slot=5
        1        info   read  a  null  @7  slot=5
    "#);
    // The first read follows a failed migration's end; the second is in the open one.
    assert_eq!((c.ops, c.in_migration), (2, 1));
}

#[test]
fn batches_and_transactions_with_the_redirects_they_met() {
    let (_, c) = cov(r#"
        0  invoke txn   -  []  @1   slot=7 batch=multi
        0  ok     txn   -  []  @2   slot=7 batch=multi ask
        1  invoke txn   -  []  @3   slot=7 batch=multi
        1  fail   txn   -  []  @4   slot=7 batch=multi tryagain tryagain
        2  invoke txn   -  []  @5   slot=7 batch=multi
        2  ok     txn   -  []  @6   slot=7 batch=multi moved
        3  invoke txn   -  []  @7   slot=7 batch=multi
        3  ok     txn   -  []  @8   slot=7 batch=multi
        # a lone MSET: a txn op, not a batch
        4  invoke txn   -  []  @9   slot=7
        4  ok     txn   -  []  @10  slot=7 tryagain
        # batch named on the invocation only, then on the completion only
        5  invoke write k  1   @11  slot=7 batch=pipeline
        5  ok     write k  1   @12  slot=7 moved
        6  invoke read  k  null @13 slot=7
        6  ok     read  k  1   @14  slot=7 batch=lua wrapper-retry
    "#);
    let b = |ops, redirected| BatchCoverage { ops, redirected };
    let want = [
        (Batch::Pipeline, b(1, 1)),
        (Batch::Multi, b(4, 3)),
        (Batch::Lua, b(1, 1)),
    ];
    assert_eq!(c.batches, want.into_iter().collect());
    let txn = TxnCoverage {
        ops: 5,
        met_ask_or_tryagain: 3,
        in_migration: 0,
    };
    assert_eq!(c.txn, txn);
    assert_eq!((c.ops, c.redirected), (7, 6));
    let h = c.hops;
    assert_eq!((h.moved, h.ask, h.tryagain, h.wrapper_retry), (2, 1, 3, 1));
}

#[test]
fn results_json_leaves_out_empty_parts() {
    let (_, c) = cov("
        0  invoke read  k  null  @1  slot=7
        0  ok     read  k  null  @2  slot=7
    ");
    let json = serde_json::to_value(&c).unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["hops", "in_migration", "ops", "redirected"]);
    let (_, c) = cov("
        0  invoke txn  -  []  @1  slot=7 batch=lua
        0  ok     txn  -  []  @2  slot=7 batch=lua ask
    ");
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["batches"]["lua"]["redirected"], 1);
    assert_eq!(json["txn"]["met_ask_or_tryagain"], 1);
}

#[test]
fn the_redirect_analysis_carries_it() {
    let history = h(WINDOW);
    let opts = crate::CheckOptions::default();
    let model = crate::ModelKind::Register;
    let mut report = crate::check(&history, model, &opts).unwrap();
    crate::analyze_redirects(&history, model, &opts, &mut report).unwrap();
    let analysis = report.redirect_analysis.unwrap();
    assert_eq!(
        (analysis.coverage.ops, analysis.coverage.in_migration),
        (8, 2)
    );
}

#[test]
fn plain_ops_are_counted_by_slot_between_nemesis_events() {
    let mut plain = PlainOps::default();
    plain.keys = vec!["a".into(), "b".into()];
    plain.push(7, Some(0), Some(16383));
    plain.push(3, Some(0), Some(16383));
    plain.nemesis(8);
    plain.push(6, Some(0), Some(5)); // invoked before the nemesis event, completed after
    plain.push(1 << 40, Some(1), Some(16383));
    plain.push(9, Some(1), None);
    plain.push(11, None, None);
    plain.push(12, Some(1), None);
    assert_eq!(plain.len(), 7);
    let mut slotted: Vec<(usize, u16, u64)> = plain.slotted().collect();
    slotted.sort_unstable();
    assert_eq!(slotted, [(6, 5, 1), (7, 16383, 2), (1 << 40, 16383, 1)]);
    let mut unslotted: Vec<(usize, Option<&str>, u64)> = plain.unslotted().collect();
    unslotted.sort_unstable();
    assert_eq!(unslotted, [(9, Some("b"), 2), (11, None, 1)]);
    // The op invoked last (not the one counted last) names a key's slot.
    let mut last: Vec<(&str, usize, u16)> = plain.last_slots().collect();
    last.sort_unstable();
    assert_eq!(last, [("a", 7, 16383), ("b", 1 << 40, 16383)]);
}
