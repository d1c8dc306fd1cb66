//! Jepsen's set-full analysis (`jepsen.checker/set-full`) of set `add`s and list `append`s.
//!
//! Every add or append of value `v` to key `k` (whatever its outcome) is an *attempt*. The `ok`
//! reads of `k` that completed after its invocation are its reads. Then, as Jepsen defines them:
//!
//! - it is **known** from the earlier of its `ok` completion and the completion of the first of
//!   its reads that holds `v` (an `info` or `fail` add is known only by being read);
//! - the *last present* read is the latest-invoked read holding `v`, the *last absent* one the
//!   latest-invoked read missing it;
//! - **stable**: some read holds it and the last absent read (if any) was invoked before the last
//!   present one: every read invoked after that absent read holds it;
//! - **lost** (`lost-write`, an anomaly): it is known, and the last absent read was invoked after
//!   the last present one (or none holds it) and after it was known;
//! - **never-read**: neither (a read missing it that overlaps the add may have run before it);
//! - **stale** (`stale-read`, an anomaly, as Jepsen's `:linearizable? true` makes it): stable,
//!   but the last absent read was invoked after it was known. Its *stable latency* is Jepsen's:
//!   from known to that read's invocation; a lost one's *lost latency* runs from known to the
//!   last present read's invocation (0 if none or earlier). Jepsen adds 1 ns to the read's time
//!   and truncates to ms; slotcheck keeps the history's unit and drops the nudge.
//!
//! Times are the history's (ns; event positions for imported formats, where Jepsen's ms latency
//! truncation does not apply: a read that began 1 unit after is stale). An `info` add some read
//! holds is also counted **recovered**. Each key's reads are sorted by invocation and indexed by
//! element once; the last absent read is found walking back from the last read, skipping holders
//! and stopping where no earlier read can end after the add began: O(total read size + attempts).

use super::show::AnomalyBuilder;
use super::txn::{FxMap, Key, Keys, Mop, Seen, Txn};
use crate::anomaly::Anomaly;
use crate::op::Outcome;
use crate::report::{Latencies, LostWriteCounts};
use serde_json::json;

/// One `ok` read of a key.
#[derive(Debug, Clone, Copy)]
struct Read {
    invoke_ns: u64,
    complete_ns: u64,
    txn: u32,
}

/// One key's `ok` reads, by invocation time, and which of them hold each element.
#[derive(Default)]
struct KeyReads {
    /// Sorted by (invocation, transaction).
    reads: Vec<Read>,
    /// Per element: the indexes into `reads` of the reads holding it, increasing.
    holders: FxMap<i64, Vec<u32>>,
    /// The longest read's duration: no read invoked more than this before a time ends after it.
    span_max_ns: u64,
}

/// What proves an attempt lost or stale: when it was known, the last read missing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Miss {
    /// (time, transaction) it was known at.
    known: (u64, u32),
    /// The last read (an index into the key's reads) missing it, begun after it was known.
    absent: usize,
    /// Jepsen's stable latency (stale) or lost latency (lost).
    latency: u64,
}

/// One attempt's set-full outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Stable; with its miss when a read invoked after it was known missed it (stale).
    Stable(Option<Miss>),
    /// Lost.
    Lost(Miss),
    /// Never read.
    NeverRead,
}

/// What decides one attempt: when it was known and by which op, its last present and absent reads.
#[derive(Debug, Clone, Copy)]
struct Element {
    /// (time, transaction) it was known at.
    known: Option<(u64, u32)>,
    /// Index into the key's reads.
    last_present: Option<usize>,
    /// Index into the key's reads.
    last_absent: Option<usize>,
}

/// The per-key read indexes of `txns`.
fn index(txns: &[Txn], keys: &Keys) -> Vec<KeyReads> {
    let mut out: Vec<KeyReads> = (0..keys.names.len()).map(|_| KeyReads::default()).collect();
    let mut seen_by: Vec<Vec<&[i64]>> = vec![Vec::new(); keys.names.len()];
    for (t, txn) in txns.iter().enumerate() {
        if txn.outcome != Outcome::Ok {
            continue;
        }
        for mop in &txn.mops {
            if let Mop::Read {
                key,
                seen: Seen::List(l),
            } = mop
            {
                let read = Read {
                    invoke_ns: txn.invoke_ns,
                    complete_ns: txn.complete_ns,
                    txn: t as u32,
                };
                out[*key as usize].reads.push(read);
                seen_by[*key as usize].push(l.as_slice());
            }
        }
    }
    for (kr, seen) in out.iter_mut().zip(seen_by) {
        let mut order: Vec<usize> = (0..kr.reads.len()).collect();
        order.sort_by_key(|&i| (kr.reads[i].invoke_ns, kr.reads[i].txn));
        kr.reads = order.iter().map(|&i| kr.reads[i]).collect();
        for (j, &i) in order.iter().enumerate() {
            for e in seen[i] {
                let list = kr.holders.entry(*e).or_default();
                if list.last() != Some(&(j as u32)) {
                    list.push(j as u32);
                }
            }
        }
        kr.span_max_ns = kr
            .reads
            .iter()
            .map(|r| r.complete_ns.saturating_sub(r.invoke_ns))
            .max()
            .unwrap_or(0);
    }
    out
}

impl KeyReads {
    /// Known time, last present and last absent read of `value` added by `add` (txn `t`).
    fn element(&self, add: &Txn, t: u32, value: i64) -> Element {
        let counts = |r: &Read| r.complete_ns > add.invoke_ns;
        let held = self.holders.get(&value).map_or(&[][..], Vec::as_slice);
        let mut known = (add.outcome == Outcome::Ok).then_some((add.complete_ns, t));
        let mut last_present = None;
        for &j in held {
            let r = &self.reads[j as usize];
            if !counts(r) {
                continue;
            }
            last_present = Some(j as usize);
            if known.is_none_or(|(ns, _)| r.complete_ns < ns) {
                known = Some((r.complete_ns, r.txn));
            }
        }
        let mut last_absent = None;
        for j in (0..self.reads.len()).rev() {
            let r = &self.reads[j];
            if r.invoke_ns.saturating_add(self.span_max_ns) < add.invoke_ns {
                break;
            }
            if counts(r) && held.binary_search(&(j as u32)).is_err() {
                last_absent = Some(j);
                break;
            }
        }
        Element {
            known,
            last_present,
            last_absent,
        }
    }

    /// Jepsen's outcome of `e`.
    fn fate(&self, e: &Element) -> Fate {
        let at = |j: usize| self.reads[j].invoke_ns;
        let miss = |known: (u64, u32), absent: usize, latency: u64| Miss {
            known,
            absent,
            latency,
        };
        match (e.known, e.last_present, e.last_absent) {
            (Some(k), p, Some(a)) if p.is_none_or(|p| p < a) && k.0 < at(a) => {
                Fate::Lost(miss(k, a, p.map_or(0, |p| at(p).saturating_sub(k.0))))
            }
            (known, Some(p), a) if a.is_none_or(|a| a < p) => Fate::Stable(match (known, a) {
                (Some(k), Some(a)) if at(a) > k.0 => Some(miss(k, a, at(a) - k.0)),
                _ => None,
            }),
            _ => Fate::NeverRead,
        }
    }
}

/// Every attempt's outcome, per key: the counts, the `lost-write` and `stale-read` anomalies, and
/// per key (by id) how many attempts were stable and lost.
pub(crate) fn set_full(
    txns: &[Txn],
    keys: &Keys,
) -> (LostWriteCounts, Vec<Anomaly>, Vec<[u64; 2]>) {
    let index = index(txns, keys);
    let b = AnomalyBuilder { txns, keys };
    let mut counts = LostWriteCounts::default();
    let mut per_key = vec![[0u64; 2]; keys.names.len()];
    let (mut stable_ns, mut lost_ns) = (Vec::new(), Vec::new());
    let mut out = Vec::new();
    for (t, txn) in txns.iter().enumerate() {
        for mop in &txn.mops {
            let Mop::Append { key, value } = mop else {
                continue;
            };
            let kr = &index[*key as usize];
            let e = kr.element(txn, t as u32, *value);
            counts.attempts += 1;
            let held = e.last_present.is_some();
            counts.recovered += u64::from(txn.outcome == Outcome::Info && held);
            let fate = kr.fate(&e);
            let miss = match fate {
                Fate::Stable(stale) => {
                    counts.stable += 1;
                    per_key[*key as usize][0] += 1;
                    stable_ns.push(stale.map_or(0, |m| m.latency));
                    counts.stale += u64::from(stale.is_some());
                    stale
                }
                Fate::Lost(m) => {
                    counts.lost += 1;
                    per_key[*key as usize][1] += 1;
                    lost_ns.push(m.latency);
                    Some(m)
                }
                Fate::NeverRead => {
                    counts.never_read += 1;
                    None
                }
            };
            if let Some(m) = miss {
                let lost = matches!(fate, Fate::Lost(_));
                out.push(b.missed(kr, (*key, *value, t as u32), e.last_present, m, lost));
            }
        }
    }
    counts.stable_latencies = Latencies::of(stable_ns);
    counts.lost_latencies = Latencies::of(lost_ns);
    debug_assert_eq!(
        counts.attempts,
        counts.stable + counts.lost + counts.never_read
    );
    (counts, out, per_key)
}

/// [`set_full`]'s counts and anomalies, for the list-append and `txn` analyses.
pub(crate) fn lost_cases(txns: &[Txn], keys: &Keys) -> (LostWriteCounts, Vec<Anomaly>) {
    let (counts, anomalies, _) = set_full(txns, keys);
    (counts, anomalies)
}

impl AnomalyBuilder<'_> {
    /// A `lost-write` (`lost`) or `stale-read` of `value` added to `key` by txn `writer`, with
    /// its proof: the last read holding it (`present`, if any) and `miss`.
    fn missed(
        &self,
        kr: &KeyReads,
        (key, value, writer): (Key, i64, u32),
        present: Option<usize>,
        miss: Miss,
        lost: bool,
    ) -> Anomaly {
        let w = self.txn(writer);
        let verb = match (w.mops.len(), w.outcome) {
            (1, Outcome::Ok) => "",
            (1, _) => " (not acknowledged)",
            (_, Outcome::Ok) => " (in a transaction)",
            _ => " (in a transaction, not acknowledged)",
        };
        let (known_ns, known_txn) = miss.known;
        let known = if known_txn == writer {
            format!("acknowledged at {known_ns}")
        } else {
            format!(
                "seen by the read at line {} ending at {known_ns}",
                self.txn(known_txn).line
            )
        };
        let (present, absent) = (present.map(|j| kr.reads[j]), kr.reads[miss.absent]);
        let present_text = present.map_or("no read holds it".to_string(), |p| {
            format!(
                "the last read to hold it began at {} (line {})",
                p.invoke_ns,
                self.txn(p.txn).line
            )
        });
        let (at, line, latency) = (absent.invoke_ns, self.txn(absent.txn).line, miss.latency);
        let (class, explanation) = if lost {
            ("lost-write", format!(
                "key {:?}: the add of {value}{verb} at line {} was known from {known}; {present_text}, yet the read that began at {at} (line {line}) misses it, and no read begun after that holds it: a lost write (lost latency {latency})!",
                self.key(key), w.line
            ))
        } else {
            ("stale-read", format!(
                "key {:?}: the add of {value}{verb} at line {} was known from {known}, yet the read that began at {at} (line {line}), after that, misses it; {present_text}: a stale read (stable latency {latency}).",
                self.key(key), w.line
            ))
        };
        let mut named = vec![writer];
        if known_txn != writer {
            named.push(known_txn);
        }
        let mut reads: Vec<u32> = present.map(|p| p.txn).into_iter().collect();
        reads.push(absent.txn);
        reads.sort_by_key(|t| self.txn(*t).event);
        named.extend(reads.into_iter().filter(|t| *t != known_txn));
        let op = |r: Read| json!({"line": self.txn(r.txn).line, "invoke": r.invoke_ns});
        self.build(
            class,
            key,
            &named,
            explanation,
            json!({"key": self.key(key), "element": value,
                   "add": {"line": w.line, "outcome": w.outcome.name()},
                   "known": {"line": self.txn(known_txn).line, "at": known_ns},
                   "last_present": present.map(op), "last_absent": op(absent),
                   "latency": latency}),
        )
    }
}

#[cfg(test)]
mod tests {
    // Jepsen's set-full cases (`jepsen.checker-test/set-full-test`) in slotcheck's table shape, one
    // event per time unit, as Jepsen's test helper spaces them; and the txn forms.

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
}
