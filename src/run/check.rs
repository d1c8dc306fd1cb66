//! The check stage: a run's history against its workload's model. Register-family histories
//! (register, cas-register, with their multi-key `txn` ops) are checked from the compact per-key
//! ops of the streaming reader at every size, and the redirect-aware analysis runs on the reduced
//! history that one read keeps (`checker::check_file_analyzed`), at every size too. Other models
//! (counter, set, kv, txn) read the whole history.

use crate::term::warn;
use anyhow::{Context, Result};
use checker::{analyze_redirects, Assumptions, CheckOptions, History, ModelKind, Report};
use std::path::Path;
use workloads::WorkloadKind;

use super::Run;

/// Histories at least this large are not read whole by `slotcheck test` for verify and the report
/// (a register-family check never reads its history whole), nor by `slotcheck check` from a pipe.
pub const STREAM_BYTES_MIN: u64 = 256 << 20;

/// The warning of a report whose redirect-aware analysis did not run: a piped history of at
/// least [`STREAM_BYTES_MIN`] bytes with a key not valid, whose ops the analysis would need to
/// read again.
pub fn unanalyzed_warning(name: &str) -> String {
    format!(
        "{name} is a pipe of at least {} MiB with keys not valid, whose ops the redirect-aware \
         analysis (protocol, stale routes, causes, coverage) reads again: it did not run (check \
         the file itself for it)",
        STREAM_BYTES_MIN >> 20
    )
}

/// Three quarters of the memory the kernel says is available (`MemAvailable` of
/// `/proc/meminfo`), in bytes: what the searches' caches may share, the rest left to the
/// history's ops and the system; `None` where it cannot be read.
pub fn search_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib.saturating_mul(1024) / 4 * 3)
}

/// `opts` with the searches' cache budget following the memory available ([`search_memory`]).
pub fn with_search_memory(opts: CheckOptions) -> CheckOptions {
    CheckOptions {
        cache_bytes_available: search_memory(),
        ..opts
    }
}

/// Whether `model`'s histories are checked from the streaming reader's compact per-key ops at
/// every size (the register family, `txn` ops read per key).
pub fn streams(model: ModelKind) -> bool {
    matches!(model, ModelKind::Register | ModelKind::CasRegister)
}

/// Checks the slotcheck history at `path` against `model` with the redirect-aware context (slot,
/// migration phase, faults and hops of each explained op, protocol anomalies, coverage):
/// register-family histories ([`streams`]) from one streaming read at every size, other models
/// from the whole history.
pub fn check_history(path: &Path, model: ModelKind, opts: &CheckOptions) -> Result<Report> {
    if streams(model) {
        return Ok(checker::check_file_analyzed(path, model, opts)?);
    }
    let history = History::read_file(path)?;
    check_loaded(&history, path, model, opts)
}

/// Adds the redirect-aware analysis of `history` (read from `path`) to `report`.
pub fn analyze(
    history: &History,
    path: &Path,
    model: ModelKind,
    opts: &CheckOptions,
    report: &mut Report,
) -> Result<()> {
    analyze_redirects(history, model, opts, report)
        .with_context(|| format!("analysing the redirects of {}", path.display()))
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
    analyze(history, path, model, opts, &mut report)?;
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
/// model and options: the register family from the file ([`check_history`]: the same report at
/// every size, whatever is in hand), other models from the `history` [`read_unless_large`] read,
/// else the file; warnings are shown.
pub fn check_run(path: &Path, history: Option<&History>, workload: WorkloadKind) -> Result<Report> {
    let model = model_of(workload);
    let opts = with_search_memory(options_of(workload));
    let report = match history {
        Some(h) if !streams(model) => check_loaded(h, path, model, &opts)?,
        _ => check_history(path, model, &opts)?,
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

    /// A register history with a multi-key op is checked streaming, with the verdict and the
    /// redirect-aware context the in-memory check gives.
    #[test]
    fn a_register_history_with_txn_ops_streams_at_every_size() {
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
            let streamed = check_history(&path, ModelKind::Register, &opts).unwrap();
            assert_eq!(streamed.valid, want, "b read {value}");
            assert!(streamed.redirect_analysis.is_some());
            let history = History::read_file(&path).unwrap();
            let held = check_loaded(&history, &path, ModelKind::Register, &opts).unwrap();
            assert_eq!(streamed.keys, held.keys, "b read {value}");
            assert_eq!(streamed.redirect_analysis, held.redirect_analysis);
            assert!(search_memory().is_some_and(|b| b > 0));
        }
    }
}
