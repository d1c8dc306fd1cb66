//! Cycles of small transaction tables: G0, G-single, G2-item, real-time variants.

use super::*;
use crate::elle::list::versions;
use crate::elle::txn::txns;
use crate::op::Ops;
use crate::testkit::h;

fn cycles(table: &str) -> Vec<Anomaly> {
    let history = h(table);
    let ops = Ops::from_history(&history).unwrap().ops;
    let (txns, keys) = txns(&history, &ops).unwrap();
    let v = versions(&txns, &keys);
    let g = build(&txns, &keys, &v);
    let (found, unknown) = cycle_cases(&g, &txns, &keys, &v, 1_000_000);
    assert_eq!(unknown, 0);
    found
}

fn classes(found: &[Anomaly]) -> Vec<&str> {
    found.iter().map(|a| a.class.as_str()).collect()
}

#[test]
fn serializable_txns_have_no_cycle() {
    let ok = r#"
        0  invoke txn - [["append","x",1],["append","y",1]] @10
        0  ok     txn - [["append","x",1],["append","y",1]] @20
        1  invoke txn - [["r","x",null],["r","y",null]]     @30
        1  ok     txn - [["r","x",[1]],["r","y",[1]]]       @40
    "#;
    assert!(cycles(ok).is_empty());
}

#[test]
fn write_cycle_is_g0() {
    // T1 appends 1 to x then T2's 2; on y, T2's 1 comes before T1's 2.
    let bad = r#"
        0  invoke txn - [["append","x",1],["append","y",2]] @10
        1  invoke txn - [["append","x",2],["append","y",1]] @11
        0  ok     txn - [["append","x",1],["append","y",2]] @20
        1  ok     txn - [["append","x",2],["append","y",1]] @21
        2  invoke txn - [["r","x",null],["r","y",null]]     @30
        2  ok     txn - [["r","x",[1,2]],["r","y",[1,2]]]   @40
    "#;
    let found = cycles(bad);
    assert_eq!(classes(&found), ["G0"]);
    let text = &found[0].explanation;
    assert!(
        text.contains("T2 appended 2 after T1 appended 1 to x"),
        "{text}"
    );
    assert!(
        text.contains(
            "However, T2 < T1, because T1 appended 2 after T2 appended 1 to y: a contradiction!"
        ),
        "{text}"
    );
}

#[test]
fn read_skew_is_g_single() {
    // T2 sees T1's append to x but not to y... in the other order: T2 reads y before T1's
    // append, and x after it.
    let bad = r#"
        0  invoke txn - [["append","x",1],["append","y",1]] @10
        1  invoke txn - [["r","x",null],["r","y",null]]     @11
        0  ok     txn - [["append","x",1],["append","y",1]] @20
        1  ok     txn - [["r","x",[1]],["r","y",[]]]        @21
        2  invoke txn - [["r","y",null]]                    @30
        2  ok     txn - [["r","y",[1]]]                     @40
    "#;
    let found = cycles(bad);
    assert_eq!(classes(&found), ["G-single"]);
    assert_eq!(found[0].keys, ["x", "y"]);
    let text = &found[0].explanation;
    assert!(text.contains("observed y empty, without"), "{text}");
}

#[test]
fn write_skew_is_g2_item() {
    let bad = r#"
        0  invoke txn - [["r","x",null],["append","y",1]] @10
        1  invoke txn - [["r","y",null],["append","x",1]] @11
        0  ok     txn - [["r","x",[]],["append","y",1]]   @20
        1  ok     txn - [["r","y",[]],["append","x",1]]   @21
        2  invoke txn - [["r","x",null],["r","y",null]]   @30
        2  ok     txn - [["r","x",[1]],["r","y",[1]]]     @40
    "#;
    assert_eq!(classes(&cycles(bad)), ["G2-item"]);
}

#[test]
fn repeated_elements_make_no_edges() {
    // 1 is appended once but read twice: a `duplicate-elements` anomaly, not evidence that
    // 1 came after 2 (G0) or that the read of [1] missed an append of 1 (G-single).
    let dup = "
        0  invoke append x 1       @10
        0  ok     append x 1       @20
        1  invoke read   x null    @25
        1  ok     read   x [1]     @28
        0  invoke append x 2       @30
        0  ok     append x 2       @40
        1  invoke read   x null    @70
        1  ok     read   x [1,2,1] @80
    ";
    assert!(cycles(dup).is_empty());
    // Past the repeat, the order goes on: 3 follows 2, and [1,2,1], read after 3 was
    // acknowledged, did not see it.
    let stale = "
        0  invoke append x 1         @10
        0  ok     append x 1         @20
        0  invoke append x 2         @30
        0  ok     append x 2         @40
        0  invoke append x 3         @50
        0  ok     append x 3         @60
        1  invoke read   x null      @70
        1  ok     read   x [1,2,1]   @80
        2  invoke read   x null      @90
        2  ok     read   x [1,2,1,3] @100
    ";
    let found = cycles(stale);
    assert_eq!(classes(&found), ["G-single-realtime"]);
    let text = &found[0].explanation;
    assert!(
        text.contains("observed x ending in 1, without T1's append of 3"),
        "{text}"
    );
}

#[test]
fn stale_single_key_read_is_g_single_realtime() {
    // The read of [] began after the append of 1 completed; a later read shows 1.
    let bad = "
        0  invoke append x 1    @10
        0  ok     append x 1    @20
        1  invoke read   x null @30
        1  ok     read   x []   @40
        1  invoke read   x null @50
        1  ok     read   x [1]  @60
    ";
    let found = cycles(bad);
    assert_eq!(classes(&found), ["G-single-realtime"]);
    let text = &found[0].explanation;
    assert!(text.contains("completed before"), "{text}");
}
