//! The checks of single-object models that sit below the Elle analysis: the register check the
//! CLI runs, and the list-append and set checks that Elle's single-key workloads run too (the
//! model-generic path is in `partition`; the dispatch on [`ModelKind`](crate::ModelKind) in
//! `kind`).
//!
//! Before searching a key, ops that cannot matter are dropped: `fail` ops and `info` reads (see
//! the register model), and `info` writes and cas whose new value no op ever observes (see
//! [`Register`]'s `prune`). Without the last, every crashed write would stay concurrent with the
//! rest of the history and multiply the search.

use crate::history::History;
use crate::model::list_append::ListAppend;
use crate::model::parse_ints;
use crate::model::set::Set;
use crate::options::{CheckError, CheckOptions};
use crate::partition::{self, Split};
use crate::report::Report;
use serde_json::Value;

/// The name of this check in reports.
const CHECKER: &str = "register-linearizable";

/// Checks every key of `history` against the register model; every op must name a key.
pub fn register(history: &History, opts: &CheckOptions) -> Result<Report, CheckError> {
    let model = opts.register()?;
    partition::check(
        history,
        &model,
        &opts.budget(),
        CHECKER,
        Split::ByKeyRequired,
    )
}

/// Checks every key of `history` against the list-append model, reporting as `checker`.
pub(crate) fn list_append(
    history: &History,
    opts: &CheckOptions,
    checker: &'static str,
) -> Result<Report, CheckError> {
    let initial = initial_ints(&opts.initial)?;
    let model = ListAppend { initial };
    partition::check(history, &model, &opts.budget(), checker, Split::ByKey)
}

/// Checks every key of `history` against the set model, reporting as `checker`.
pub(crate) fn set(
    history: &History,
    opts: &CheckOptions,
    checker: &'static str,
) -> Result<Report, CheckError> {
    let initial = initial_ints(&opts.initial)?.into_iter().collect();
    partition::check(
        history,
        &Set { initial },
        &opts.budget(),
        checker,
        Split::ByKey,
    )
}

/// An initial value of integers (a list or set's): an array, or `null` for none.
fn initial_ints(v: &Value) -> Result<Vec<i64>, CheckError> {
    match v {
        Value::Null => Ok(Vec::new()),
        v => parse_ints(v).map_err(bad_initial),
    }
}

/// The error for an unusable `initial` option.
pub(crate) fn bad_initial(message: String) -> CheckError {
    CheckError::Option {
        option: "initial",
        message,
    }
}

#[cfg(test)]
mod tests;
