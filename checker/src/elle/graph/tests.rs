//! Cycles of small transaction tables: G0, G-single-item, G-nonadjacent-item, G2-item, their
//! variants, and the edges of appends no read saw.

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
    assert_eq!(classes(&found), ["G-single-item"]);
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
    // 1 came after 2 (G0) or that the read of [1] missed an append of 1 (G-single-item).
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
    assert_eq!(classes(&found), ["G-single-item-realtime"]);
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
    assert_eq!(classes(&found), ["G-single-item-realtime"]);
    let text = &found[0].explanation;
    assert!(text.contains("completed before"), "{text}");
}

#[test]
fn unread_appends_come_after_the_longest_read() {
    // Elle's unobserved-write-test: 1, 2, 3 appended to x and y; x reads [1 2], y reads [2].
    // 1 on y was never read: it came after 2 (ww w2 -> w1 on y, G0 with x's w1 -> w2), and the
    // read of y = [2] missed it (rw ry -> w1: G-single-item through w1 -ww-> w2 -wr-> ry).
    let bad = r#"
        0  invoke txn - [["append","x",1],["append","y",1]] @10
        1  invoke txn - [["append","x",2],["append","y",2]] @11
        2  invoke txn - [["append","x",3],["append","y",3]] @12
        3  invoke txn - [["r","x",null]]                    @13
        4  invoke txn - [["r","y",null]]                    @14
        0  ok     txn - [["append","x",1],["append","y",1]] @20
        1  ok     txn - [["append","x",2],["append","y",2]] @21
        2  ok     txn - [["append","x",3],["append","y",3]] @22
        3  ok     txn - [["r","x",[1,2]]]                   @23
        4  ok     txn - [["r","y",[2]]]                     @24
    "#;
    let found = cycles(bad);
    assert_eq!(classes(&found), ["G0", "G-single-item"]);
    let text = &found[1].explanation;
    assert!(
        text.contains("observed y ending in 2, without T1's append of 1 (1 was never read, so it came after every element read)"),
        "{text}"
    );
    assert_eq!(found[1].data["cycle"][2]["edge_kind"], "rw");
    assert_eq!(found[1].data["cycle"][2]["unread"], true);
    assert!(found[1].data["cycle"][0].get("unread").is_none());
}

#[test]
fn an_empty_read_anti_depends_on_a_key_s_only_append_never_read() {
    // Elle's repeatable-read-test: each reads nil where the other appends; no read ever saw
    // the appends. Both reads miss the other's append: two adjacent rw edges, G2-item.
    let bad = r#"
        0  invoke txn - [["r","x",null],["append","y",1]] @10
        1  invoke txn - [["r","y",null],["append","x",1]] @11
        0  ok     txn - [["r","x",null],["append","y",1]] @20
        1  ok     txn - [["r","y",null],["append","x",1]] @21
    "#;
    let found = cycles(bad);
    assert_eq!(classes(&found), ["G2-item"]);
    let text = &found[0].explanation;
    assert!(
        text.contains("T1 observed x empty, without T2's append of 1"),
        "{text}"
    );
    // Read after the other committed, each would have seen it: no cycle.
    let ok = r#"
        0  invoke txn - [["r","x",null],["append","y",1]] @10
        0  ok     txn - [["r","x",null],["append","y",1]] @20
        1  invoke txn - [["r","y",null],["append","x",1]] @30
        1  ok     txn - [["r","y",[1]],["append","x",1]]  @40
    "#;
    assert!(cycles(ok).is_empty());
}

#[test]
fn rw_edges_apart_make_g_nonadjacent() {
    // Elle's G-nonadjacent-test: t4 -rw x-> t1 -wr x-> t2 -rw y-> t3 -wr y-> t4.
    let bad = r#"
        0  invoke txn - [["append","x",1]]               @10
        1  invoke txn - [["r","x",null],["r","y",null]] @11
        2  invoke txn - [["append","y",1]]               @12
        3  invoke txn - [["r","y",null],["r","x",null]] @13
        0  ok     txn - [["append","x",1]]               @20
        1  ok     txn - [["r","x",[1]],["r","y",null]]  @21
        2  ok     txn - [["append","y",1]]               @22
        3  ok     txn - [["r","y",[1]],["r","x",null]]  @23
    "#;
    let found = cycles(bad);
    assert_eq!(classes(&found), ["G-nonadjacent-item"]);
    let kinds: Vec<&str> = found[0].data["cycle"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["edge_kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["wr", "rw", "wr", "rw"]);
    // Elle's second case ("we should not detect rw rw wr rw wr"): each read misses the next
    // txn's append, but the edges all point one way (t2 -> t1, t3 -> t2, t3 -> t4, t5 -> t4,
    // t5 -> t1): no cycle at all, concurrent as here. (Elle's copy is sequential; under strict
    // serializability its real-time order would close t1 -> t2 -rw-> t1.)
    let adjacent = r#"
        0  invoke txn - [["r","x",null],["append","y",1]] @10
        1  invoke txn - [["r","y",null],["append","z",2]] @11
        2  invoke txn - [["r","z",null],["append","t",3]] @12
        3  invoke txn - [["r","t",null],["append","u",4]] @13
        4  invoke txn - [["r","u",null],["append","x",5]] @14
        0  ok     txn - [["r","x",[5]],["append","y",1]]  @20
        1  ok     txn - [["r","y",null],["append","z",2]] @21
        2  ok     txn - [["r","z",null],["append","t",3]] @22
        3  ok     txn - [["r","t",[3]],["append","u",4]]  @23
        4  ok     txn - [["r","u",null],["append","x",5]] @24
    "#;
    assert!(cycles(adjacent).is_empty());
}

#[test]
fn each_family_reports_its_least_class() {
    // G0 on data alone (x against y), and the read of x = [1] missing 2: G-single-item on data
    // (t1 -ww y-> t0 -wr x-> t3 -rw x-> t1). Its real-time twin (t1 ended before t3 began) is
    // implied, so not reported (Elle's implied-anomalies); the two families are independent.
    let bad = r#"
        0  invoke txn - [["append","x",1],["append","y",2]] @10
        1  invoke txn - [["append","x",2],["append","y",1]] @11
        0  ok     txn - [["append","x",1],["append","y",2]] @20
        1  ok     txn - [["append","x",2],["append","y",1]] @21
        2  invoke txn - [["r","x",null],["r","y",null]]     @30
        2  ok     txn - [["r","x",[1,2]],["r","y",[1,2]]]   @40
        3  invoke txn - [["r","x",null]]                    @50
        3  ok     txn - [["r","x",[1]]]                     @60
    "#;
    assert_eq!(classes(&cycles(bad)), ["G0", "G-single-item"]);
}

#[test]
fn elle_s_contradictory_orders_and_duplicates_are_g1c() {
    // Elle's checker-test "contradictory read orders" ([:G1c :incompatible-order]): x's order
    // is [1 2 3] (the read of [1 3] disagrees), so t1 -ww-> t2 -ww-> t3, and t1 read t3's y.
    let contradictory = r#"
        0  invoke txn - [["append","x",1],["r","y",null]]   @10
        1  invoke txn - [["append","x",2]]                  @11
        2  invoke txn - [["append","x",3],["append","y",1]] @12
        3  invoke txn - [["r","x",null]]                    @13
        4  invoke txn - [["r","x",null]]                    @14
        0  ok     txn - [["append","x",1],["r","y",[1]]]    @20
        1  ok     txn - [["append","x",2]]                  @21
        2  ok     txn - [["append","x",3],["append","y",1]] @22
        3  ok     txn - [["r","x",[1,3]]]                   @23
        4  ok     txn - [["r","x",[1,2,3]]]                 @24
    "#;
    let found = cycles(contradictory);
    assert_eq!(classes(&found), ["G1c"]);
    assert_eq!(found[0].events.len(), 3);
    // Elle's "duplicated elements" ([:G1c :duplicate-elements]): the repeat of 1 in [1 2 1]
    // adds no edge, but 1 -> 2 (ww) and t2's y read by t1 (wr) close a cycle.
    let duplicated = r#"
        0  invoke txn - [["append","x",1],["r","y",null]]   @10
        1  invoke txn - [["append","x",2],["append","y",1]] @11
        2  invoke txn - [["r","x",null]]                    @12
        0  ok     txn - [["append","x",1],["r","y",[1]]]    @20
        1  ok     txn - [["append","x",2],["append","y",1]] @21
        2  ok     txn - [["r","x",[1,2,1]]]                 @22
    "#;
    assert_eq!(classes(&cycles(duplicated)), ["G1c"]);
}
