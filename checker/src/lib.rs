//! Pure, deterministic checking of slotcheck histories.
//!
//! A history (see `histories/README.md` and `history-format-v1`) is read into a [`History`],
//! its events are paired into [`Op`]s (an invocation with its completion, [`Outcome`] `Ok`,
//! `Fail` or `Info`), and a `check_*` function decides a [`Validity`]: `Valid`, `Invalid` (with an
//! [`Explanation`]), or `Unknown` when a search budget ran out first. Nothing here does I/O
//! beyond reading a file, spawns threads or reads clocks (unless a time limit is asked for), so the
//! same history and options always give the same report.
//!
//! ```
//! use checker::{check_register, CheckOptions, History, Validity};
//!
//! let text = r#"{"type":"invoke","process":0,"f":"write","key":"k","value":1,"time":10}
//! {"type":"ok","process":0,"f":"write","key":"k","value":1,"time":20}
//! {"type":"invoke","process":1,"f":"read","key":"k","value":null,"time":30}
//! {"type":"ok","process":1,"f":"read","key":"k","value":null,"time":40}
//! "#;
//! let history = History::parse(text.as_bytes(), "example.jsonl").unwrap();
//! let report = check_register(&history, &CheckOptions::default()).unwrap();
//! // The read began after the write of 1 was acknowledged, yet saw the key absent.
//! assert_eq!(report.valid, Validity::Invalid);
//! assert_eq!(report.valid.exit_code(), 1);
//! println!("{report}");
//! ```
//!
//! Histories from other tools (Jepsen, Knossos, Porcupine) are read by [`import`] and checked
//! by [`check`] against any [`ModelKind`]:
//!
//! ```
//! use checker::{check, import, ModelKind, Validity};
//!
//! let text = "{:process 0, :type :invoke, :f :put, :key \"a\", :value \"x\"}\n\
//!             {:process 0, :type :ok, :f :put, :key \"a\", :value \"x\"}\n\
//!             {:process 1, :type :invoke, :f :get, :key \"a\", :value nil}\n\
//!             {:process 1, :type :ok, :f :get, :key \"a\", :value \"\"}\n";
//! let imported = import::import(text, "kv.txt", None).unwrap();
//! assert_eq!(imported.model(), Some(ModelKind::Kv));
//! let report = check(&imported.history, ModelKind::Kv, &imported.options()).unwrap();
//! // The get began after the put of "x" was acknowledged, yet read the initial "".
//! assert_eq!(report.valid, Validity::Invalid);
//! ```
//!
//! Layout, in layers, from the bottom: a module uses only modules of its own line or of the lines
//! before it (`tests/layers.rs` checks that no modules import each other in a circle, and that
//! the report types use only the first two lines).
//!
//! - data types: `validity`, [`anomaly`] (an `Anomaly` and the `Cause` it is attributed to),
//!   `search` (a search's intervals, budget and verdict), [`slot`], [`echo`] (input quoted in
//!   errors, bounded), `hash`;
//! - histories: [`source`] (a file, pipe or stdin, read once), [`history`] (the format: an
//!   event's types, the header, the fields' checks, the errors), [`op`] (pairing),
//!   `explanation`, [`fault`] and [`phase`] (a history's faults, and its migrations with their
//!   per-slot `Timeline`), the report types (`report`: `Report`, `KeyReport`, their counts, the
//!   redirect analysis's results), [`edn`] (other tools' reader), [`mutate`] (hostile edits, for
//!   fuzz tests);
//! - models, search and checks: [`model`] (sequential specifications, [`ModelKind`], and
//!   [`zones`], the register's fast path), [`wgl`] (the general linearizability search; its
//!   entry list, cache and obligations in `wgl/`), `options` ([`CheckOptions`],
//!   [`CheckError`]), `partition` (every model's path: split by key, search in parallel),
//!   `check` (single-object models), [`typed`], [`elle`] (Elle-style anomalies; `elle/graph/`
//!   holds the dependency graph and its cycle search), `kind` (the dispatch on [`ModelKind`]),
//!   `stream` (files too big to hold);
//! - other formats: [`import`] (Jepsen, Knossos, Porcupine), [`gen`] (histories from a model);
//! - analyses: [`classify`] and [`classify_counter`] (the class of an invalid key: `lost-write`,
//!   `stale-read`, ...), [`stale_route`] (clients that forgot a `MOVED`), [`protocol`] and
//!   [`redirects`] (redirect anomalies and statistics), `after_apply`, [`cause`] (the rules that
//!   attribute an anomaly), [`final_state`], [`coverage`] (what a run's ops met: migrating
//!   slots, hops, batches);
//! - the report's redirect-aware pass: [`context`] (where each anomaly happened, and why), and
//!   the entry points below.

mod after_apply;
pub mod anomaly;
pub mod cause;
mod check;
pub mod classify;
pub mod classify_counter;
pub mod context;
pub mod coverage;
pub mod echo;
pub mod edn;
pub mod elle;
mod explanation;
pub mod fault;
pub mod final_state;
pub mod gen;
mod hash;
pub mod history;
pub mod import;
mod kind;
pub mod model;
pub mod mutate;
pub mod op;
mod options;
mod partition;
pub mod per_key;
pub mod phase;
pub mod protocol;
pub mod redirects;
mod report;
mod search;
pub mod slot;
pub mod source;
pub mod stale_route;
mod stream;
#[cfg(test)]
mod testkit;
pub mod typed;
mod validity;
pub mod wgl;
pub use model::zones;

pub use anomaly::{Anomaly, AnomalyEvent, Cause, CauseKind, REDIRECT_CLASSES};
pub use coverage::Coverage;
pub use explanation::{Explanation, OpRef};
pub use history::{
    Batch, Event, EventType, GaveUp, Header, History, HistoryError, Process, Redirect, RedirectKind,
};
pub use import::{Format, ImportError, Imported};
pub use model::register::{Register, RegisterOp};
pub use model::ModelKind;
pub use model::{Model, OpModel};
pub use op::{Op, OpError, Ops, Outcome};
pub use options::{Assumptions, CheckError, CheckOptions};
pub use report::{causes_line, counts_text, KeyReport, OutcomeCounts, RedirectCounts, Report};
pub use slot::{codis_slot, key_slot, ClusterSlots, CodisSlots, SlotFunction};
pub use source::Source;
pub use stream::{add_lines, page_file, FileError, PageOp, PageOps, HELD_BYTES_MAX};
pub use validity::Validity;

/// Adds redirect-aware analysis to `report`, which `check(history, model, opts)` returned: each
/// key that is not valid (and each of `report.anomalies`) gets a `context` (slot, migration phase,
/// active faults, hops of the ops involved), `report.redirect_analysis` gets redirect
/// statistics and the fault intervals, and `report.anomalies` gets the redirect-protocol,
/// `stale-route` and `redirect-after-apply` anomalies.
pub fn analyze_redirects(
    history: &History,
    model: ModelKind,
    opts: &CheckOptions,
    report: &mut Report,
) -> Result<(), CheckError> {
    context::analyze(history, model, opts, report)
}

/// Gives every anomaly of `report` (checked from `history`) that has no cause one, anomalies
/// added after [`analyze_redirects`] included (such as `verify`'s findings); then recounts
/// `report.causes` and makes the verdict invalid if any anomaly was found.
pub fn attribute_causes(history: &History, report: &mut Report) -> Result<(), OpError> {
    let at = context::Attribution::new(history)?;
    context::attribute(&at, report);
    Ok(())
}

/// Checks the history file at `path` against `model`; registers are read streaming, into compact
/// per-key ops, so that histories of millions of ops fit in memory (see [`History`] for small
/// ones and for reports that need every event).
pub fn check_file(
    path: &std::path::Path,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<Report, FileError> {
    stream::check_file(path, model, opts)
}

/// [`check_file`] of a register-family history with the redirect-aware analysis
/// ([`analyze_redirects`]) from the reduced history the same streaming read keeps: the report
/// the whole history gives, at every size. Other models read the whole [`History`].
pub fn check_file_analyzed(
    path: &std::path::Path,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<Report, FileError> {
    stream::check_file_analyzed(path, model, opts)
}

/// [`check_file_analyzed`] of a history already opened (a pipe, a FIFO or standard input too),
/// read once: the analysis runs unless it needs the file again (to keep the ops of a key not
/// found valid whole); the flag says whether it ran.
pub fn check_source_analyzed(
    source: Source,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<(Report, bool), FileError> {
    stream::check_source_analyzed(source, model, opts)
}

/// [`check_file`] on a history already opened once (a pipe, a FIFO or standard input too):
/// registers and list-append histories streaming, other models read whole.
pub fn check_source(
    source: Source,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<Report, FileError> {
    stream::check_source_bounded(source, model, opts, HELD_BYTES_MAX)
}

/// [`check_file`] holding at most `held_bytes_max` bytes of a register history's compact ops in
/// memory ([`HELD_BYTES_MAX`] by default); beyond them the ops wait in temporary files and keys
/// are checked a batch at a time, with the same report, so that any history fits in bounded
/// memory (the search still holds one whole key's ops).
pub fn check_file_bounded(
    path: &std::path::Path,
    model: ModelKind,
    opts: &CheckOptions,
    held_bytes_max: usize,
) -> Result<Report, FileError> {
    stream::check_file_bounded(path, model, opts, held_bytes_max)
}

/// Checks that every key of `history` behaves as a linearizable register (read, write, cas).
pub fn check_register(history: &History, opts: &CheckOptions) -> Result<Report, CheckError> {
    check::register(history, opts)
}

/// Checks every partition (key) of `history` against `model`, in parallel; `Invalid` wins over
/// `Unknown` over `Valid`, and the report does not depend on the number of threads.
pub fn check(
    history: &History,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<Report, CheckError> {
    kind::check(history, model, opts)
}

/// Checks a list-append, set or `txn` history for anomalies Elle-style (`G0`, `G1a`, `G1b`,
/// `G1c`, `G-single-item`, `G-nonadjacent-item`, `G2-item`, `internal`, `lost-update`,
/// `incompatible-order`, `lost-write`, ...), plus per-key
/// linearizability for single-key list-append and set histories; see [`elle`].
pub fn check_elle(history: &History, opts: &CheckOptions) -> Result<Report, CheckError> {
    elle::check(history, opts)
}
