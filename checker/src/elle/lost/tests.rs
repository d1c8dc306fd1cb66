//! Jepsen's set-full cases (`jepsen.checker-test/set-full-test`) in slotcheck's table shape, one
//! event per time unit, as Jepsen's test helper spaces them; and the txn forms.

use super::*;
use crate::elle::txn::txns;
use crate::op::Ops;
use crate::testkit::h;

fn run(table: &str) -> (LostWriteCounts, Vec<(String, Vec<usize>)>) {
    let history = h(table);
    let ops = Ops::from_history(&history).unwrap().ops;
    let (txns, keys) = txns(&history, &ops).unwrap();
    let (counts, found) = lost_cases(&txns, &keys);
    let found = found
        .into_iter()
        .map(|a| (a.class, a.events.iter().map(|e| e.line).collect()))
        .collect();
    (counts, found)
}

/// (attempts, stable, lost, stale, never read).
fn classes(c: &LostWriteCounts) -> [u64; 5] {
    [c.attempts, c.stable, c.lost, c.stale, c.never_read]
}

const A: &str = "0 invoke add s 0 @";
const A_OK: &str = "0 ok add s 0 @";
const R: &str = "1 invoke read s null @";
const R_HAS: &str = "1 ok read s [0] @";
const R_NOT: &str = "1 ok read s [] @";

/// A history of the given events, each at its position.
fn seq(events: &[&str]) -> String {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{e}{}\n", i + 1))
        .collect()
}

#[test]
fn never_read_and_never_confirmed() {
    let (c, found) = run(&seq(&[A, A_OK]));
    assert_eq!(classes(&c), [1, 0, 0, 0, 1]);
    assert!(found.is_empty());
    // The add never completes; a concurrent read misses it: never read, not lost.
    let (c, found) = run(&seq(&[A, R, R_NOT]));
    assert_eq!(classes(&c), [1, 0, 0, 0, 1]);
    assert!(found.is_empty());
}

#[test]
fn a_read_holding_it_concurrently_or_after_makes_it_stable() {
    for order in [
        [R, A, R_HAS, A_OK],
        [R, A, A_OK, R_HAS],
        [A, R, R_HAS, A_OK],
        [A, R, A_OK, R_HAS],
        [A, A_OK, R, R_HAS],
    ] {
        let (c, found) = run(&seq(&order));
        assert_eq!(classes(&c), [1, 1, 0, 0, 0], "{order:?}");
        assert_eq!(c.stable_latencies.map(|l| l.p100), Some(0));
        assert!(found.is_empty());
    }
}

#[test]
fn an_absent_read_begun_after_the_ack_loses_it() {
    let (c, found) = run(&seq(&[A, A_OK, R, R_NOT]));
    assert_eq!(classes(&c), [1, 0, 1, 0, 0]);
    assert_eq!(c.lost_latencies.map(|l| l.p100), Some(0));
    assert_eq!(found, [("lost-write".to_string(), vec![1, 3])]);
}

#[test]
fn an_absent_read_concurrent_with_the_add_is_never_read() {
    for order in [
        [R, A, R_NOT, A_OK],
        [R, A, A_OK, R_NOT],
        [A, R, R_NOT, A_OK],
        [A, R, A_OK, R_NOT],
    ] {
        let (c, found) = run(&seq(&order));
        assert_eq!(classes(&c), [1, 0, 0, 0, 1], "{order:?}");
        assert!(found.is_empty(), "{order:?}");
    }
}

/// Jepsen's "write, present, missing": 0 and 1 are seen, then vanish; both lost, with lost
/// latencies 3 and 4 (from known to the invocation of the last read that held each).
#[test]
fn present_then_missing_is_lost_not_stale() {
    let (c, found) = run("
        0  invoke add  s 0      @0
        1  invoke add  s 1      @1
        2  invoke read s null   @2
        2  ok     read s [1]    @3
        0  ok     add  s 0      @4
        1  ok     add  s 1      @5
        2  invoke read s null   @6
        2  ok     read s [0,1]  @7
        2  invoke read s null   @8
        2  ok     read s [0]    @9
        2  invoke read s null   @10
        2  ok     read s []     @11
    ");
    assert_eq!(classes(&c), [2, 0, 2, 0, 0]);
    let l = c.lost_latencies.unwrap();
    assert_eq!((l.p0, l.p50, l.p100), (3, 4, 4));
    let classes: Vec<&str> = found.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(classes, ["lost-write", "lost-write"]);
}

/// Jepsen's "write, flutter, stable/lost": 0 is lost (latency 5); 1 is known at 4 (a read saw it
/// before its add completed), missed by a read begun at 6, then seen by one begun at 7: stable,
/// and stale with latency 2.
#[test]
fn flutter_is_stale_for_one_and_lost_for_the_other() {
    let (c, found) = run("
        0  invoke add  s 0      @0
        0  ok     add  s 0      @1
        1  invoke add  s 1      @2
        2  invoke read s null   @3
        2  ok     read s [1]    @4
        1  ok     add  s 1      @5
        2  invoke read s null   @6
        3  invoke read s null   @7
        3  ok     read s [1]    @8
        2  ok     read s [0]    @9
    ");
    assert_eq!(classes(&c), [2, 1, 1, 1, 0]);
    assert_eq!(c.lost_latencies.map(|l| l.p100), Some(5));
    assert_eq!(c.stable_latencies.map(|l| (l.p0, l.p100)), Some((2, 2)));
    let classes: Vec<&str> = found.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(classes, ["lost-write", "stale-read"]);
    // The stale read's proof names the add, the read it was known by, then the read that missed
    // it and the last holder, in history order.
    assert_eq!(found[1].1, [3, 4, 7, 8]);
}

#[test]
fn info_adds_are_recovered_or_never_read_and_fails_too() {
    let (c, found) = run("
        0  invoke add  s 1      @10
        0  info   add  s 1      @20
        1  invoke add  s 2      @11
        1  fail   add  s 2      @21
        2  invoke read s null   @30
        2  ok     read s [1]    @40
    ");
    assert_eq!(classes(&c), [2, 1, 0, 0, 1]);
    assert_eq!(c.recovered, 1);
    assert!(found.is_empty());
}

#[test]
fn appends_in_transactions_are_classed_too() {
    let (c, found) = run(r#"
        0  invoke txn  -  [["append","x",1],["append","y",1]]  @10
        0  ok     txn  -  [["append","x",1],["append","y",1]]  @20
        1  invoke txn  -  [["r","x",null],["r","y",null]]      @30
        1  ok     txn  -  [["r","x",[1]],["r","y",[]]]         @40
    "#);
    assert_eq!(classes(&c), [2, 1, 1, 0, 0]);
    assert_eq!(found, [("lost-write".to_string(), vec![1, 3])]);
}
