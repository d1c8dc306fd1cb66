//! Lost writes with Jepsen's set-full semantics, for `set` adds and list `append`s.
//!
//! Each acknowledged (`ok`) add or append of value `v` to key `k` is put in one class by the
//! `ok` reads of `k` that *began after it completed* (its "later reads"):
//!
//! - **stable**: every later read holds `v`;
//! - **lost** (`lost-write`, an anomaly): there is at least one later read and none holds `v`;
//! - **stale** (`stale-read`, an anomaly): some later reads hold `v` and some do not — a read
//!   that began after the write was acknowledged missed it;
//! - **never-read**: no read began after it completed (nothing can be said).
//!
//! An add or append with outcome `info` that some read holds is **recovered** (it took effect
//! after all); an unread `info` one is not counted. Each later read is found by binary search
//! over the key's reads sorted by invocation, and each element's readers are indexed once, so the
//! pass is O(total read size + writes × log reads).

use super::show::AnomalyBuilder;
use super::txn::{FxMap, Key, Keys, Mop, Seen, Txn};
use crate::anomaly::Anomaly;
use crate::op::Outcome;
use crate::report::LostWriteCounts;
use serde_json::json;

/// How many of the reads that should have seen a lost or stale write are named in its events.
const READS_NAMED_MAX: usize = 8;

/// One key's `ok` list reads, by invocation time, and which of them hold each element.
struct KeyReads {
    /// (invocation time, transaction) of each read, sorted by time.
    reads: Vec<(u64, u32)>,
    /// Per element: the indexes into `reads` of the reads holding it, increasing.
    holders: FxMap<i64, Vec<u32>>,
}

/// Classes every acknowledged append of `txns`; returns the counts and the anomalies.
pub(crate) fn lost_cases(txns: &[Txn], keys: &Keys) -> (LostWriteCounts, Vec<Anomaly>) {
    let mut by_key: Vec<Vec<(u64, u32, &[i64])>> = vec![Vec::new(); keys.names.len()];
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
                by_key[*key as usize].push((txn.invoke_ns, t as u32, l.as_slice()));
            }
        }
    }
    let index: Vec<KeyReads> = by_key
        .into_iter()
        .map(|mut reads| {
            reads.sort_by_key(|(ns, t, _)| (*ns, *t));
            let mut holders: FxMap<i64, Vec<u32>> = FxMap::default();
            for (j, (_, _, seen)) in reads.iter().enumerate() {
                for e in seen.iter() {
                    let list = holders.entry(*e).or_default();
                    if list.last() != Some(&(j as u32)) {
                        list.push(j as u32);
                    }
                }
            }
            KeyReads {
                reads: reads.iter().map(|(ns, t, _)| (*ns, *t)).collect(),
                holders,
            }
        })
        .collect();
    let b = AnomalyBuilder { txns, keys };
    let mut counts = LostWriteCounts::default();
    let mut out = Vec::new();
    for (t, txn) in txns.iter().enumerate() {
        for mop in &txn.mops {
            let Mop::Append { key, value } = mop else {
                continue;
            };
            let kr = &index[*key as usize];
            let held = kr.holders.get(value).map_or(&[][..], Vec::as_slice);
            match txn.outcome {
                Outcome::Fail => continue,
                Outcome::Info => {
                    counts.recovered += u64::from(!held.is_empty());
                    continue;
                }
                Outcome::Ok => {}
            }
            let first = kr.reads.partition_point(|(ns, _)| *ns <= txn.complete_ns);
            let later = kr.reads.len() - first;
            let present = held.len() - held.partition_point(|j| (*j as usize) < first);
            debug_assert!(present <= later);
            if later == 0 {
                counts.never_read += 1;
            } else if present == later {
                counts.stable += 1;
            } else {
                let missed: Vec<u32> = (first..kr.reads.len())
                    .filter(|j| held.binary_search(&(*j as u32)).is_err())
                    .map(|j| kr.reads[j].1)
                    .collect();
                if present == 0 {
                    counts.lost += 1;
                } else {
                    counts.stale += 1;
                }
                out.push(b.missed(*key, *value, t as u32, &missed, later));
            }
        }
    }
    (counts, out)
}

impl AnomalyBuilder<'_> {
    /// A `lost-write` (every later read missed it) or `stale-read` (some did).
    fn missed(&self, key: Key, value: i64, writer: u32, missed: &[u32], later: usize) -> Anomaly {
        let w = self.txn(writer);
        let lost = missed.len() == later;
        let named = &missed[..missed.len().min(READS_NAMED_MAX)];
        let lines: Vec<String> = named
            .iter()
            .map(|t| self.txn(*t).line.to_string())
            .collect();
        let more = if missed.len() > named.len() {
            format!(", and {} more", missed.len() - named.len())
        } else {
            String::new()
        };
        let verb = if w.mops.len() == 1 {
            ""
        } else {
            " (in a transaction)"
        };
        let explanation = if lost {
            format!(
                "key {:?}: the append of {value}{verb} at line {} was acknowledged at {} ns, yet none of the {later} reads that began after that holds it (lines {}{more}): a lost write!",
                self.key(key),
                w.line,
                w.complete_ns,
                lines.join(", ")
            )
        } else {
            format!(
                "key {:?}: the append of {value}{verb} at line {} was acknowledged at {} ns, yet {} of the {later} reads that began after that miss it (lines {}{more}) while others hold it: a stale read!",
                self.key(key),
                w.line,
                w.complete_ns,
                missed.len(),
                lines.join(", ")
            )
        };
        let mut txns = vec![writer];
        txns.extend_from_slice(named);
        let reads: Vec<_> = named
            .iter()
            .map(|t| {
                let r = self.txn(*t);
                json!({"event": r.event, "line": r.line, "invoke_ns": r.invoke_ns})
            })
            .collect();
        self.build(
            if lost { "lost-write" } else { "stale-read" },
            key,
            &txns,
            explanation,
            json!({"key": self.key(key), "element": value,
                   "write": {"event": w.event, "line": w.line, "ack_ns": w.complete_ns},
                   "reads_missing": reads, "reads_missing_total": missed.len(),
                   "reads_after_ack": later}),
        )
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn every_class() {
        let (counts, found) = run("
            0  invoke add  s 1      @10
            0  ok     add  s 1      @20
            0  invoke add  s 2      @30
            0  ok     add  s 2      @40
            1  invoke add  s 3      @31
            1  info   add  s 3      @41
            2  invoke read s null   @50
            2  ok     read s [1,3]  @60
            2  invoke read s null   @70
            2  ok     read s [1,3]  @80
            0  invoke add  s 4      @90
            0  ok     add  s 4      @100
        ");
        // 1 stable, 2 lost (both later reads miss it), 3 recovered, 4 never read.
        assert_eq!(
            counts,
            LostWriteCounts {
                stable: 1,
                lost: 1,
                stale: 0,
                never_read: 1,
                recovered: 1
            }
        );
        assert_eq!(found, [("lost-write".to_string(), vec![3, 7, 9])]);
    }

    #[test]
    fn present_in_one_later_read_but_not_another_is_stale() {
        let (counts, found) = run("
            0  invoke append l 1     @10
            0  ok     append l 1     @20
            1  invoke read   l null  @30
            1  ok     read   l []    @40
            1  invoke read   l null  @50
            1  ok     read   l [1]   @60
        ");
        assert_eq!((counts.stable, counts.stale), (0, 1));
        assert_eq!(found, [("stale-read".to_string(), vec![1, 3])]);
    }
}
