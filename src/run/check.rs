//! The check stage: a run's history against its workload's model, read whole when it is small
//! enough (with the redirect-aware context) and streamed when it is not.

use crate::term::warn;
use anyhow::{Context, Result};
use checker::{analyze_redirects, Assumptions, CheckOptions, History, ModelKind, Report};
use std::path::Path;
use workloads::WorkloadKind;

use super::Run;

/// Histories at least this large are checked streaming, so that memory grows with the ops rather
/// than with the text; their reports then lack the redirect-aware context.
pub const STREAM_BYTES_MIN: u64 = 256 << 20;

/// Checks the slotcheck history at `path` against `model`. Below `stream_bytes_min` bytes (or for
/// models other than the register) the whole history is read and the report gets redirect-aware
/// context: slot, migration phase, faults and hops of each explained op (`analyze_redirects`).
pub fn check_history(
    path: &Path,
    model: ModelKind,
    opts: &CheckOptions,
    stream_bytes_min: u64,
) -> Result<Report> {
    let name = path.display().to_string();
    let bytes = std::fs::metadata(path)
        .map_err(|source| checker::HistoryError::Io {
            path: name.clone(),
            source,
        })?
        .len();
    if bytes >= stream_bytes_min && model == ModelKind::Register {
        // A register history with multi-key ops (`txn`) is refused at its first one: in memory.
        match checker::check_file(path, model, opts) {
            Err(e) if e.refused_txn() => {}
            streamed => return Ok(streamed?),
        }
    }
    let history = History::read_file(path)?;
    check_loaded(&history, path, model, opts)
}

/// Checks a history already read from `path` against `model`, with the redirect-aware context.
pub fn check_loaded(
    history: &History,
    path: &Path,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<Report> {
    let name = path.display();
    let mut report = checker::check(history, model, opts)
        .with_context(|| format!("checking {name} as {model}"))?;
    analyze_redirects(history, model, opts, &mut report)
        .with_context(|| format!("analysing the redirects of {name}"))?;
    Ok(report)
}

/// The model a workload's history is checked against.
pub fn model_of(workload: WorkloadKind) -> ModelKind {
    match workload {
        WorkloadKind::Register => ModelKind::Register,
        WorkloadKind::Counter => ModelKind::Counter,
        WorkloadKind::Types => ModelKind::Types,
        WorkloadKind::CasRegister => ModelKind::CasRegister,
        // Elle's analysis: lost appends, G0/G1/G2 cycles, aborted and intermediate reads.
        WorkloadKind::ListAppend | WorkloadKind::RwRegister => ModelKind::Txn,
    }
}

/// The check options of a workload's history: rw-register assumes, of each key, what a Redis
/// cluster run under the safe defaults guarantees it (see [`assumptions_of`]).
pub fn options_of(workload: WorkloadKind) -> CheckOptions {
    CheckOptions {
        assumptions: assumptions_of(workload),
        ..CheckOptions::default()
    }
}

/// What the rw-register analysis may assume of each key of a workload's run, Elle's way:
/// `linearizable-keys` and `sequential-keys`, because one master serves a slot's keys at a time,
/// one command after another, and under the safe defaults (README, "Losses by design") no
/// acknowledged write is lost, so every key is linearizable (the register workload checks just
/// that); `wfr-keys`, because MULTI/EXEC and a Lua script run their commands in order. Under the
/// lossy settings a key may stop being linearizable: findings that rest on these say so, and
/// are then the loss seen through the transactions.
pub fn assumptions_of(workload: WorkloadKind) -> Assumptions {
    match workload {
        WorkloadKind::RwRegister => Assumptions::ALL,
        _ => Assumptions::default(),
    }
}

/// Reads a run's history at `path` whole, once, for verify, the check and the report; `None`
/// when it is [`STREAM_BYTES_MIN`] or more, to be checked streaming.
pub fn read_unless_large(path: &Path) -> Result<Option<History>> {
    let small = std::fs::metadata(path).is_ok_and(|m| m.len() < STREAM_BYTES_MIN);
    Ok(if small {
        Some(History::read_file(path)?)
    } else {
        None
    })
}

/// `slotcheck test`'s (and `report`'s) check of a run's history at `path` with its `workload`'s
/// model and options: the `history` [`read_unless_large`] read, else the file, streaming;
/// warnings are shown.
pub fn check_run(path: &Path, history: Option<&History>, workload: WorkloadKind) -> Result<Report> {
    let (model, opts) = (model_of(workload), options_of(workload));
    let report = match history {
        Some(h) => check_loaded(h, path, model, &opts)?,
        None => check_history(path, model, &opts, STREAM_BYTES_MIN)?,
    };
    for w in &report.warnings {
        warn(w);
    }
    Ok(report)
}

/// The check stage of `run`: its history (as [`read_unless_large`] read it) against its
/// workload's model, under a spinner.
pub fn check<S, F>(run: &Run<S, F>, history: Option<&History>) -> Result<Report> {
    crate::term::status("Checking history");
    let checking = crate::term::spinner("checking the history");
    let report = check_run(&run.history_path, history, run.cfg.workload);
    checking.finish_and_clear();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register history with a multi-key op is refused by the streaming check at that op and
    /// checked in memory instead, with the same verdict as the in-memory path gives.
    #[test]
    fn a_register_history_with_txn_ops_falls_back_to_the_in_memory_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let lines = [
            r#"{"type":"invoke","process":0,"f":"txn","value":[["w","a",1],["w","b",2]],"time":1}"#,
            r#"{"type":"ok","process":0,"f":"txn","value":[["w","a",1],["w","b",2]],"time":2}"#,
            r#"{"type":"invoke","process":1,"f":"read","key":"b","value":null,"time":3}"#,
            r#"{"type":"ok","process":1,"f":"read","key":"b","value":VALUE,"time":4}"#,
        ];
        for (value, want) in [
            ("2", checker::Validity::Valid),
            ("null", checker::Validity::Invalid),
        ] {
            std::fs::write(&path, lines.join("\n").replace("VALUE", value) + "\n").unwrap();
            let opts = CheckOptions::default();
            let streamed_size = check_history(&path, ModelKind::Register, &opts, 0).unwrap();
            assert_eq!(streamed_size.valid, want, "b read {value}");
        }
    }
}
