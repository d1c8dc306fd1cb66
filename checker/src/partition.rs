//! The one checking path every model goes through: pair events into ops, split them into
//! independent partitions (one per key), search each partition, in parallel, and combine.
//!
//! Linearizability is local (Herlihy & Wing): a history is linearizable iff each key's
//! sub-history is, so each key is searched on its own (P-compositionality, Horn & Kroening).
//! Partitions are searched on rayon's pool and their reports collected in key order, so the
//! report does not depend on the number of threads or the order they finish in.

use crate::explanation::{Explanation, OpRef};
use crate::history::History;
use crate::model::{FieldError, OpModel};
use crate::op::{line_of, Op, Ops, Outcome};
use crate::options::CheckError;
use crate::report::{KeyReport, Report};
use crate::validity::Validity;
use crate::wgl::{self, Budget, Interval, Search};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// How ops are grouped into independently checked partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Split {
    /// One partition per key; every op must name one, or be a `txn` op of register micro-ops,
    /// read as one op per key it touches (slotcheck's register, see [`crate::per_key`]).
    ByKeyRequired,
    /// One partition per key; ops without a key form the partition named "".
    ByKey,
    /// As `ByKey`, with `txn` ops of register micro-ops read per key as for `ByKeyRequired`
    /// (a CAS register).
    ByKeyOrTxn,
    /// One partition for the whole history (multi-key transactions).
    Whole,
}

/// Checks `history` against `model` partition by partition; see the module doc.
pub(crate) fn check<M>(
    history: &History,
    model: &M,
    budget: &Budget,
    checker: &'static str,
    split: Split,
) -> Result<Report, CheckError>
where
    M: OpModel + Sync,
{
    let paired = Ops::from_history(history)?;
    let all_ops = paired.ops.len();
    check_each(history, &paired, checker, split, |key, ops| {
        check_partition(
            history,
            model,
            &budget.for_key(ops.len(), all_ops),
            key,
            ops,
        )
    })
}

/// Splits `paired`'s ops by `split`, runs `check_key` on each partition in parallel, and
/// combines the verdicts in key order into a report carrying the history's counts. The one
/// place partitions are formed, for a single model and for one model per key alike.
pub(crate) fn check_each<F>(
    history: &History,
    paired: &Ops,
    checker: &'static str,
    split: Split,
    check_key: F,
) -> Result<Report, CheckError>
where
    F: Fn(&str, &[&Op]) -> Result<KeyReport, CheckError> + Sync,
{
    let mut report = counted(history, paired, checker);
    let mut parts: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    let split_txns = matches!(split, Split::ByKeyRequired | Split::ByKeyOrTxn);
    let per_key = if split_txns && paired.ops.iter().any(|op| op.f == crate::per_key::TXN) {
        crate::per_key::expand(&paired.ops)
            .map_err(|(i, e)| field_error(history, &paired.ops[i], e))?
    } else {
        Vec::new()
    };
    let ops = if per_key.is_empty() {
        &paired.ops
    } else {
        &per_key
    };
    for op in ops {
        let key = match (split, op.key.as_deref()) {
            (Split::Whole, _) => "",
            (_, Some(key)) => key,
            (Split::ByKey | Split::ByKeyOrTxn, None) => "",
            (Split::ByKeyRequired, None) => {
                return Err(CheckError::Field {
                    event: op.invoke_event,
                    line: line_of(history, op.invoke_event),
                    field: "key",
                    message: format!(
                        "the register model needs a key on every op; this {} has none",
                        op.f
                    ),
                })
            }
        };
        parts.entry(key).or_default().push(op);
    }
    let parts: Vec<(&str, Vec<&Op>)> = parts.into_iter().collect();
    let results: Vec<Result<KeyReport, CheckError>> = parts
        .par_iter()
        .map(|(key, ops)| check_key(key, ops))
        .collect();
    for key_report in results {
        // The first error in key order, whichever thread met it first.
        let key_report = key_report?;
        report.valid = report.valid.combine(key_report.valid);
        report.keys.push(key_report);
    }
    debug_assert_eq!(report.ops.total() as usize, paired.ops.len());
    Ok(report)
}

/// A report with the history's counts (ops by outcome and by `f`, hops by kind) and no
/// per-key verdicts yet.
pub(crate) fn counted(history: &History, paired: &Ops, checker: &'static str) -> Report {
    let mut report = Report::empty(checker, paired.nemesis.len(), history.warnings.clone());
    for op in &paired.ops {
        report.ops.add(op.outcome);
        report
            .ops_by_f
            .entry(op.f.clone())
            .or_default()
            .add(op.outcome);
        for hop in &op.redirects {
            report.redirects.add(hop.kind);
        }
    }
    report
}

fn field_error(history: &History, op: &Op, e: FieldError) -> CheckError {
    let at = |event: usize| (event, line_of(history, event));
    e.at(at(op.invoke_event), op.complete_event.map(at))
}

/// Partitions with fewer ops than this are searched without trying [`OpModel::decide`]: the
/// search is instant there, and a tiny step budget keeps meaning what it says.
pub(crate) const DECIDE_OPS_MIN: usize = 32;

/// Search steps spent on a fuller explanation of a key the fast path already found invalid.
const EXPLAIN_STEPS_MAX: u64 = 200_000;

/// `budget` capped at [`EXPLAIN_STEPS_MAX`] steps and a sixteenth of its cache.
fn explain_budget(budget: &Budget) -> Budget {
    Budget {
        steps_max: budget.steps_max.min(EXPLAIN_STEPS_MAX),
        cache_bytes_max: budget.cache_bytes_max / 16,
        ..*budget
    }
}

/// The verdict on one partition: the model's direct proof ([`OpModel::refute`]) or fast path
/// when either applies, else the search. An invalid fast verdict is still searched, within
/// [`EXPLAIN_STEPS_MAX`] steps, for the search's explanation; when that runs out of budget the
/// fast path's evidence stands.
pub(crate) fn search<M: OpModel>(
    model: &M,
    intervals: &[Interval<M::Input>],
    budget: &Budget,
) -> Search<M::State> {
    let fast = match budget.plain {
        true => None,
        false => model.refute(intervals).or_else(|| {
            (intervals.len() >= DECIDE_OPS_MIN)
                .then(|| model.decide(intervals))
                .flatten()
        }),
    };
    match fast {
        None => wgl::check(model, intervals, budget),
        Some(valid @ Search::Valid { .. }) => valid,
        // The search runs only for a fuller explanation: a bounded one, since the fast path's
        // evidence already decides the key (a direct proof needs no order of the writes).
        Some(invalid) => match wgl::check(model, intervals, &explain_budget(budget)) {
            Search::Unknown { steps, .. } => match invalid {
                Search::Invalid {
                    op,
                    prefix,
                    state,
                    stranded,
                    ..
                } => Search::Invalid {
                    steps,
                    op,
                    prefix,
                    state,
                    stranded,
                },
                other => other,
            },
            searched => {
                debug_assert!(
                    matches!(searched, Search::Invalid { .. }),
                    "the fast path and the search disagree"
                );
                searched
            }
        },
    }
}

/// Searches one partition's ops.
pub(crate) fn check_partition<M: OpModel>(
    history: &History,
    model: &M,
    budget: &Budget,
    key: &str,
    ops: &[&Op],
) -> Result<KeyReport, CheckError> {
    let mut inputs: Vec<(&Op, M::Input)> = Vec::with_capacity(ops.len());
    for op in ops {
        if let Some(input) = model.input(op).map_err(|e| field_error(history, op, e))? {
            inputs.push((op, input));
        }
    }
    if !budget.plain {
        model.prune(&mut inputs);
    }
    let (searched, intervals): (Vec<&Op>, Vec<Interval<M::Input>>) = inputs
        .into_iter()
        .map(|(op, input)| {
            debug_assert!(op.outcome != Outcome::Fail || op.f == "cas");
            let interval = Interval {
                input,
                call_ns: op.invoke_ns,
                return_ns: (op.outcome != Outcome::Info).then_some(op.complete_ns),
            };
            (op, interval)
        })
        .unzip();
    let search = search(model, &intervals, budget);
    let proof = proof_of(model, &intervals, &search);
    let mut report = key_report(
        key,
        (ops.len(), intervals.len()),
        search,
        budget,
        |i| OpRef::new(history, searched[i]),
        |state| model.describe_state(state),
    );
    with_proof(&mut report, proof);
    Ok(report)
}

/// The model's direct argument against the op an invalid `search` names, if it has one.
pub(crate) fn proof_of<M: OpModel>(
    model: &M,
    intervals: &[Interval<M::Input>],
    search: &Search<M::State>,
) -> Option<String> {
    match search {
        Search::Invalid { op, .. } if !intervals.is_empty() => model.proof(intervals, *op),
        _ => None,
    }
}

/// Puts `proof` ([`proof_of`]) into the explanation of `report`.
pub(crate) fn with_proof(report: &mut KeyReport, proof: Option<String>) {
    if let Some(e) = report.explanation.as_mut() {
        e.proof = proof;
    }
}

/// The report on `key` from its `search`, the one way a search's verdict becomes a key's
/// report: `ops` and `searched` count the key's ops and those searched, `op_ref(i)` names
/// searched op `i` (the verdict's indexes), `describe` the model's state.
pub(crate) fn key_report<S>(
    key: &str,
    (ops, searched): (usize, usize),
    search: Search<S>,
    budget: &Budget,
    op_ref: impl Fn(usize) -> OpRef,
    describe: impl FnOnce(&S) -> String,
) -> KeyReport {
    let mut report = KeyReport::valid(key, ops, searched, search.steps());
    match search {
        Search::Valid { .. } => {}
        Search::Unknown { exhausted, .. } => {
            report.valid = Validity::Unknown;
            report.unknown = Some(exhausted.reason(budget));
        }
        Search::Invalid {
            op,
            prefix,
            state,
            stranded,
            ..
        } => {
            report.valid = Validity::Invalid;
            report.explanation = Some(Explanation {
                key: key.to_string(),
                op: op_ref(op),
                prefix: prefix.iter().map(|&i| op_ref(i)).collect(),
                state: describe(&state),
                stranded: stranded.map(op_ref),
                proof: None,
            });
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use crate::testkit::h;
    use crate::{check, CheckOptions, ModelKind, Validity};

    #[test]
    fn plain_search_has_no_fast_path_and_drops_nothing() {
        // Enough ops for the zones to apply, and a crashed write nobody read (pruned).
        let mut table = String::from("9 invoke write k 999 @1\n9 info write k 999 @2\n");
        for i in 1..=20u64 {
            let t = 10 * i;
            table += &format!("0 invoke write k {i} @{t}\n0 ok write k {i} @{}\n", t + 1);
            table += &format!(
                "1 invoke read k null @{}\n1 ok read k {i} @{}\n",
                t + 2,
                t + 3
            );
        }
        let history = h(&table);
        let fast = check(&history, ModelKind::Register, &CheckOptions::default()).unwrap();
        let opts = CheckOptions {
            plain_search: true,
            ..CheckOptions::default()
        };
        let plain = check(&history, ModelKind::Register, &opts).unwrap();
        assert_eq!(
            (fast.valid, plain.valid),
            (Validity::Valid, Validity::Valid)
        );
        let (f, p) = (&fast.keys[0], &plain.keys[0]);
        assert_eq!(
            (f.ops_searched, f.steps),
            (40, 0),
            "zones decide, without search"
        );
        assert_eq!(p.ops_searched, 41);
        assert!(p.steps >= 40, "{} steps", p.steps);
    }
}
