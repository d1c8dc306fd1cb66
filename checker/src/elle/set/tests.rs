//! The set check's verdicts: ok/bad pairs per set-full class, as `--model set` gives them.

use super::*;
use crate::testkit::h;

fn check_set(table: &str) -> Report {
    check(&h(table), &CheckOptions::default(), "set").unwrap()
}

fn classes(r: &Report) -> Vec<(&str, usize)> {
    r.anomaly_counts
        .iter()
        .map(|(c, n)| (c.as_str(), *n))
        .collect()
}

#[test]
fn stable_is_valid_and_lost_is_a_lost_write() {
    let ok = check_set(
        "
        0  invoke add  s 1      @10
        0  ok     add  s 1      @20
        1  invoke read s null   @30
        1  ok     read s [1]    @40
    ",
    );
    assert_eq!(ok.valid, Validity::Valid);
    assert!(classes(&ok).is_empty());
    // Seen, then missed by every read begun after the last that held it: lost, as Jepsen says
    // (not stale).
    let bad = check_set(
        "
        0  invoke add  s 1      @10
        0  ok     add  s 1      @20
        1  invoke read s null   @30
        1  ok     read s [1]    @40
        1  invoke read s null   @50
        1  ok     read s []     @60
    ",
    );
    assert_eq!(bad.valid, Validity::Invalid);
    assert_eq!(classes(&bad), [("lost-write", 1)]);
    let counts = bad.lost_writes.unwrap();
    assert_eq!((counts.lost, counts.stale, counts.stable), (1, 0, 0));
}

#[test]
fn stale_is_a_stale_read() {
    let ok = check_set(
        "
        0  invoke add  s 1      @10
        0  ok     add  s 1      @20
        1  invoke read s null   @15
        1  ok     read s []     @25
        1  invoke read s null   @30
        1  ok     read s [1]    @40
    ",
    );
    assert_eq!(ok.valid, Validity::Valid, "{ok}");
    let bad = check_set(
        "
        0  invoke add  s 1      @10
        0  ok     add  s 1      @20
        1  invoke read s null   @30
        1  ok     read s []     @40
        1  invoke read s null   @50
        1  ok     read s [1]    @60
    ",
    );
    assert_eq!(bad.valid, Validity::Invalid);
    assert_eq!(classes(&bad), [("stale-read", 1)]);
    assert_eq!(bad.lost_writes.unwrap().stable_latencies.unwrap().p100, 10);
}

#[test]
fn never_read_alone_is_unknown() {
    let unknown = check_set(
        "
        0  invoke add  s 1      @10
        0  ok     add  s 1      @20
        1  invoke read s null   @12
        1  ok     read s []     @22
    ",
    );
    assert_eq!(unknown.valid, Validity::Unknown);
    assert!(classes(&unknown).is_empty());
    let key = &unknown.keys[0];
    assert_eq!(key.valid, Validity::Unknown);
    assert!(key.unknown.as_deref().unwrap().starts_with("set-full"));
    // One stable element decides the key; another never read does not make it unknown.
    let decided = check_set(
        "
        0  invoke add  s 1      @10
        0  ok     add  s 1      @20
        2  invoke add  s 2      @11
        1  invoke read s null   @30
        1  ok     read s [1]    @40
    ",
    );
    assert_eq!(decided.valid, Validity::Valid);
    assert_eq!(decided.lost_writes.unwrap().never_read, 1);
}

#[test]
fn an_element_read_twice_is_duplicated() {
    let ok = "
        0  invoke add  s 1        @10
        0  ok     add  s 1        @20
        0  invoke add  s 2        @30
        0  ok     add  s 2        @40
        1  invoke read s null     @50
        1  ok     read s [2,1]    @60
    ";
    assert_eq!(check_set(ok).valid, Validity::Valid);
    let bad = check_set(&ok.replace("[2,1]", "[2,1,2]"));
    assert_eq!(bad.valid, Validity::Invalid);
    assert_eq!(classes(&bad), [("duplicated", 1)]);
    assert_eq!(bad.lost_writes.unwrap().duplicated, 1);
    assert_eq!(bad.anomalies[0].data["multiplicity"], 2);
    assert_eq!(bad.anomalies[0].events[0].line, 5);
}
