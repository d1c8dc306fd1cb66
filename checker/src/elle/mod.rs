//! Elle-style analysis of list-append, set and `txn` histories: anomalies beyond "not
//! linearizable", each named by the literature and explained as a proof.
//!
//! Five families, one module each, all over the same view of ops as transactions ([`txn`]; a
//! completed `["r", k, null]` on a list key reads the empty list, as in Elle):
//!
//! - [`list`]: each key's version order, recovered from its reads, and what is wrong without a
//!   graph — `incompatible-order`, `duplicate-elements`, `garbage-read`, `G1a`, `G1b`;
//! - [`internal`]: what one transaction contradicts in itself — `internal`, `future-read`;
//! - [`update`]: updates built on the wrong version — `lost-update`, `dirty-update`;
//! - [`lost`]: adds and appends classed as Jepsen's set-full does — `lost-write`, `stale-read`,
//!   and the counts of stable / lost / stale / never-read / recovered ones; [`set`] adds
//!   set-full's verdict rules for sets (`duplicated`, a key with nothing stable is unknown);
//! - [`graph`]: the dependency graph (ww, wr, rw, real time, process) and its cycles — `G0`,
//!   `G1c`, `G-single-item`, `G-nonadjacent-item`, `G2-item` and their `-process` /
//!   `-realtime` variants, Elle's names.
//! - [`register`]: each register key's version order, inferred from the initial state and what
//!   [`crate::Assumptions`] allow (process order, real time, writes following reads) —
//!   `cyclic-versions` — and the ww / rw edges it gives the graph.
//!
//! [`check`] runs what fits the history: list-append histories (`append` / `read` on keys) get
//! the per-key linearizability check too, set histories (`add` / `read`) get it and the lost-write
//! classes, `txn` histories get list, lost-write and graph analysis. Any anomaly makes the
//! verdict `Invalid`; a cycle search whose budget ran out with nothing found makes it `Unknown`.

mod cycle;
mod graph;
mod internal;
mod list;
mod lost;
mod register;
mod set;
mod show;
mod txn;
mod update;

pub use crate::report::LostWriteCounts;
pub use cycle::{EdgeKind, Step};

use crate::anomaly::{counts_by_class, Anomaly};
use crate::history::History;
use crate::op::{Op, Ops};
use crate::options::{CheckError, CheckOptions};
use crate::report::Report;
use crate::validity::Validity;
use std::collections::BTreeMap;

/// How many anomalies of one class the report keeps (the counts cover them all).
pub const ANOMALIES_KEPT_PER_CLASS_MAX: usize = 32;

/// Which analyses a history gets, from the ops it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    /// `append` and `read` on keys.
    ListAppend,
    /// `add` and `read` on keys.
    Set,
    /// At least one `txn` op.
    Txn,
}

impl Workload {
    fn of(ops: &[Op]) -> Workload {
        if ops.iter().any(|op| op.f == "txn") {
            Workload::Txn
        } else if ops.iter().any(|op| op.f == "add") {
            Workload::Set
        } else {
            Workload::ListAppend
        }
    }
}

/// Checks `history` for anomalies (and, for single-key workloads, linearizability per key);
/// see the module doc.
pub(crate) fn check(history: &History, opts: &CheckOptions) -> Result<Report, CheckError> {
    let paired = Ops::from_history(history)?;
    let workload = Workload::of(&paired.ops);
    if workload == Workload::Set {
        return set::check(history, opts, "elle-set");
    }
    let (txns, keys) = txn::txns(history, &paired.ops)?;
    let mut report = match workload {
        Workload::ListAppend => crate::check::list_append(history, opts, "elle-list-append")?,
        Workload::Set | Workload::Txn => crate::partition::counted(history, &paired, "elle-txn"),
    };
    let initial: Vec<i64> = match &opts.initial {
        serde_json::Value::Array(items) => items.iter().filter_map(|v| v.as_i64()).collect(),
        _ => Vec::new(),
    };
    let mut anomalies: Vec<Anomaly> = Vec::new();
    let (lost_counts, lost) = lost::lost_cases(&txns, &keys);
    report.lost_writes = Some(lost_counts);
    let mut v = list::versions(&txns, &keys);
    let (orders, cyclic) = register::orders(&txns, &keys, &opts.assumptions);
    v.register = orders;
    anomalies.extend(cyclic);
    anomalies.extend(list::list_cases(&txns, &keys, &v, &initial));
    let b = show::AnomalyBuilder {
        txns: &txns,
        keys: &keys,
    };
    anomalies.extend(internal::internal_cases(&b));
    anomalies.extend(update::lost_update_cases(&b));
    anomalies.extend(update::dirty_update_cases(&b, &v));
    anomalies.extend(lost);
    let g = graph::build(&txns, &keys, &v);
    let (cycles, undecided) = graph::cycle_cases(&g, &txns, &keys, &v, opts.steps_max_per_key);
    anomalies.extend(register::with_assumptions(cycles));
    if undecided > 0 {
        report.valid = report.valid.combine(Validity::Unknown);
        report.warnings.push(format!(
            "{undecided} strongly connected components of the dependency graph were not searched to the end ({} steps each): their cycles are unknown",
            opts.steps_max_per_key
        ));
    }
    finish(&mut report, anomalies);
    Ok(report)
}

/// Sets `report`'s anomalies: any makes it invalid; all are counted, at most
/// [`ANOMALIES_KEPT_PER_CLASS_MAX`] of each class kept.
fn finish(report: &mut Report, mut anomalies: Vec<Anomaly>) {
    if !anomalies.is_empty() {
        report.valid = Validity::Invalid;
    }
    report.anomaly_counts = counts_by_class(&anomalies);
    let mut kept: BTreeMap<String, usize> = BTreeMap::new();
    anomalies.retain(|a| {
        let n = kept.entry(a.class.clone()).or_insert(0);
        *n += 1;
        *n <= ANOMALIES_KEPT_PER_CLASS_MAX
    });
    report.anomalies = anomalies;
}

/// The set check of `--model set`: see [`set`].
pub(crate) fn check_set(
    history: &History,
    opts: &CheckOptions,
    checker: &'static str,
) -> Result<Report, CheckError> {
    set::check(history, opts, checker)
}
