//! The fixture pairs of Jepsen's set-full classes (`lost-write`, `stale-read`, `duplicated`),
//! with the counts and latencies set-full gives them.

use super::{assert_valid, elle, explained, only, summary};
use checker::Validity;

#[test]
fn set_lost_write() {
    let ok = elle("set-lost-write-ok");
    assert_valid(&ok);
    let counts = ok.lost_writes.unwrap();
    // The info add of 3 is read: stable (Jepsen's set-full counts every attempt) and recovered.
    assert_eq!((counts.stable, counts.lost, counts.recovered), (3, 0, 1));
    let bad = elle("set-lost-write-bad");
    assert_eq!(bad.valid, Validity::Invalid, "{bad}");
    // Add 2 (line 4), acknowledged at 3000 ns; the last read begun (line 9) misses it, and no
    // read ever held it: lost, named by its add and that read, as Jepsen's `:last-absent`.
    let a = only(&bad);
    assert_eq!(summary(a), ("lost-write", vec!["s"], vec![4, 9]));
    assert_eq!(a.data["element"], 2);
    assert_eq!(a.data["known"]["at"], 3000);
    let counts = bad.lost_writes.unwrap();
    assert_eq!((counts.stable, counts.lost, counts.recovered), (2, 1, 1));
    assert_eq!(explained(&bad)[0].0, "s");
}

#[test]
fn set_stale_read() {
    assert_valid(&elle("set-stale-read-ok"));
    let bad = elle("set-stale-read-bad");
    // Add 1 (line 2) is missed by the read at line 4, held by the final read at line 6: stable
    // 1000 ns after it was acknowledged (Jepsen's stable latency).
    let a = only(&bad);
    assert_eq!(summary(a), ("stale-read", vec!["s"], vec![2, 4, 6]));
    assert_eq!(a.data["latency"], 1000);
    assert_eq!(bad.lost_writes.unwrap().stale, 1);
}

#[test]
fn set_duplicated() {
    assert_valid(&elle("set-duplicated-ok"));
    let bad = elle("set-duplicated-bad");
    assert_eq!(bad.valid, Validity::Invalid, "{bad}");
    // The read at line 6 holds 2 twice.
    let a = only(&bad);
    assert_eq!(summary(a), ("duplicated", vec!["s"], vec![6]));
    assert_eq!(a.data["multiplicity"], 2);
    assert_eq!(bad.lost_writes.unwrap().duplicated, 1);
}
