//! The set check, `--model set` and the set histories of slotcheck's own runs alike: each key
//! linearizable against the set model, and Jepsen's set-full analysis ([`super::lost`]) with
//! its verdict rules:
//!
//! - a lost element (`lost-write`) or a stale one (`stale-read`) makes the history invalid;
//! - so does an element that one read holds more than once (`duplicated`, Jepsen's
//!   `:duplicated`: a set holds each element once);
//! - a key with no stable element and none lost is `unknown` (Jepsen's `:valid? :unknown`: every
//!   attempt was never read, e.g. each add crashed or no read came after it).

use super::lost::set_full;
use super::show::AnomalyBuilder;
use super::txn::{self, FxMap, Key, Mop, Seen, Txn};
use crate::anomaly::Anomaly;
use crate::history::History;
use crate::op::{Ops, Outcome};
use crate::options::{CheckError, CheckOptions};
use crate::report::Report;
use crate::validity::Validity;
use serde_json::json;

/// Checks every key of `history` against the set model and set-full, reporting as `checker`.
pub(crate) fn check(
    history: &History,
    opts: &CheckOptions,
    checker: &'static str,
) -> Result<Report, CheckError> {
    let mut report = crate::check::set(history, opts, checker)?;
    let paired = Ops::from_history(history)?;
    let (txns, keys) = txn::txns(history, &paired.ops)?;
    let (mut counts, mut anomalies, per_key) = set_full(&txns, &keys);
    let duplicated = duplicates(&txns, &keys);
    counts.duplicated = duplicated.len() as u64;
    anomalies.extend(duplicated);
    report.lost_writes = Some(counts);
    for (id, [stable, lost]) in per_key.iter().enumerate() {
        if *stable > 0 || *lost > 0 {
            continue;
        }
        let name = keys.name(id as Key);
        let why = "set-full: no element of this key is stable or lost (every add was never read by a read begun after it was known): unknown, as Jepsen's set-full says".to_string();
        if let Some(k) = report.keys.iter_mut().find(|k| k.key == name) {
            if k.valid == Validity::Valid {
                k.valid = Validity::Unknown;
                k.unknown = Some(why);
            }
        }
        report.valid = report.valid.combine(Validity::Unknown);
    }
    super::finish(&mut report, anomalies);
    Ok(report)
}

/// One `duplicated` anomaly per (key, element) some `ok` read holds more than once, naming the
/// read that holds it most often.
fn duplicates(txns: &[Txn], keys: &txn::Keys) -> Vec<Anomaly> {
    // (key, element) -> (multiplicity, read txn), first seen most.
    let mut most: FxMap<(Key, i64), (usize, u32)> = FxMap::default();
    let mut order: Vec<(Key, i64)> = Vec::new();
    for (t, txn) in txns.iter().enumerate() {
        if txn.outcome != Outcome::Ok {
            continue;
        }
        for mop in &txn.mops {
            let Mop::Read {
                key,
                seen: Seen::List(l),
            } = mop
            else {
                continue;
            };
            let mut sorted = l.clone();
            sorted.sort_unstable();
            for run in sorted.chunk_by(|a, b| a == b).filter(|r| r.len() > 1) {
                let slot = most.entry((*key, run[0])).or_insert_with(|| {
                    order.push((*key, run[0]));
                    (0, t as u32)
                });
                if run.len() > slot.0 {
                    *slot = (run.len(), t as u32);
                }
            }
        }
    }
    let b = AnomalyBuilder { txns, keys };
    order
        .into_iter()
        .map(|(key, e)| {
            let (n, t) = most[&(key, e)];
            let read = b.txn(t);
            b.build(
                "duplicated",
                key,
                &[t],
                format!(
                    "key {:?}: the read at line {} holds {e} {n} times, yet a set holds each element once: a duplicated element!",
                    b.key(key),
                    read.line
                ),
                json!({"key": b.key(key), "element": e, "multiplicity": n,
                       "read": {"line": read.line, "event": read.event}}),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    // The set check's verdicts: ok/bad pairs per set-full class, as `--model set` gives them.

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
}
