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
mod tests;
