//! The one path of the register family: the streaming check and the redirect-aware analysis from
//! one read of the file, at every size.
//!
//! While the check pairs the ops, [`Keep`] builds a reduced [`History`] (header, nemesis events,
//! every op that is not plain) and a [`PlainOp`] for each plain op; the analysis
//! ([`crate::context::analyze_with`]) runs on them and gives the report the whole history
//! gives. The ops of a key the check did not find valid (and of a key an anomaly names) are
//! what the analysis reads in full (classes, `redirect-after-apply`, the context of the ops an
//! explanation names): when there are any, the file is read a second time, keeping those keys'
//! ops whole, and nothing goes to a model.

use super::keep::Keep;
use super::pairing::{Keys, Paired, Pairing, Sink};
use super::register::{RegisterSink, HELD_BYTES_MAX};
use super::{blocks, FileError};
use crate::history::{History, HistoryError};
use crate::model::ModelKind;
use crate::options::{CheckError, CheckOptions};
use crate::report::Report;
use crate::source::Source;
use crate::validity::Validity;
use std::collections::HashSet;
use std::path::Path;

/// A sink that takes nothing: the second read only keeps events.
struct Ignore;

impl Sink for Ignore {
    fn op(&mut self, _: Paired<'_>, _: &mut Keys) -> Result<(), CheckError> {
        Ok(())
    }
}

/// Checks the register-family history file at `path` against `model` (register or
/// cas-register) and adds the redirect-aware analysis, as [`crate::check`] then
/// [`crate::analyze_redirects`] on the whole history would; other models read the whole
/// [`History`] for both.
pub fn check_file_analyzed(
    path: &Path,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<Report, FileError> {
    let (report, analyzed) = analyzed(open(path)?, Some(path), model, opts)?;
    debug_assert!(analyzed, "a file can be read again");
    Ok(report)
}

/// [`check_file_analyzed`] of a history already opened (a pipe too), read once: the analysis
/// runs unless it needs a second read (some key is not valid, or an anomaly names one); the
/// flag says whether it ran.
pub fn check_source_analyzed(
    source: Source,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<(Report, bool), FileError> {
    analyzed(source, None, model, opts)
}

/// The check and the analysis of `source`, which can be read again at `again` if it is a file.
fn analyzed(
    source: Source,
    again: Option<&Path>,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<(Report, bool), FileError> {
    let name = source.name().to_string();
    let wrap = |source| FileError::Check {
        path: name.clone(),
        source,
    };
    if !matches!(model, ModelKind::Register | ModelKind::CasRegister) {
        let history = History::read(source)?;
        let mut report = crate::kind::check(&history, model, opts).map_err(wrap)?;
        crate::context::analyze(&history, model, opts, &mut report).map_err(wrap)?;
        return Ok((report, true));
    }
    let register = opts.register().map_err(wrap)?;
    let keyless = model == ModelKind::CasRegister;
    let mut sink = RegisterSink::new(register, HELD_BYTES_MAX, keyless);
    let (counts, names, keep) = read(source, model.checker(), Keep::default(), &mut sink)?;
    let mut report = sink
        .finish(counts, names.clone(), &opts.budget())
        .map_err(|source| FileError::Spill {
            path: name.clone(),
            source,
        })?;
    let wanted = wanted(&report);
    let ((history, mut plain), names) = match again {
        _ if wanted.is_empty() => (keep.finish(), names),
        Some(path) => {
            let keep = Keep::new(wanted);
            let (_, names, keep) = read(open(path)?, model.checker(), keep, &mut Ignore)?;
            (keep.finish(), names)
        }
        None => return Ok((report, false)),
    };
    plain.keys = names;
    crate::context::analyze_with(&history, &plain, model, opts, &mut report).map_err(wrap)?;
    Ok((report, true))
}

/// The history file at `path`, opened.
pub(super) fn open(path: &Path) -> Result<Source, FileError> {
    let source = Source::open(path).map_err(|source| HistoryError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(source)
}

/// The keys whose ops the analysis reads in full: those not found valid, and those an anomaly
/// names.
pub(super) fn wanted(report: &Report) -> HashSet<String> {
    let invalid = report.keys.iter().filter(|k| k.valid != Validity::Valid);
    let named = report.anomalies.iter().flat_map(|a| &a.keys);
    invalid.map(|k| &k.key).chain(named).cloned().collect()
}

/// Reads and pairs the history `source`, handing every op to `sink` and keeping what `keep`
/// keeps; returns the counts, the key names and what was kept.
pub(super) fn read<S: Sink + Send>(
    source: Source,
    checker: &'static str,
    keep: Keep,
    sink: &mut S,
) -> Result<(Report, Vec<String>, Keep), FileError> {
    let name = source.name().to_string();
    let mut pairing = Pairing::new(&name, checker);
    pairing.keep = Some(keep);
    blocks::for_each_line(source.into_reader(), &name, |line| pairing.line(line, sink))?;
    let (report, names, keep) = pairing.finish_keeping(sink)?;
    Ok((report, names, keep.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType;

    /// The old way: the streaming check, then the analysis of the whole history.
    fn whole(path: &Path, model: ModelKind) -> Option<Report> {
        let opts = CheckOptions::default();
        let mut report = super::super::check_file(path, model, &opts).ok()?;
        let history = History::read_file(path).ok()?;
        crate::context::analyze(&history, model, &opts, &mut report).ok()?;
        Some(report)
    }

    /// Every committed fixture (and each file `SLOTCHECK_SAME_REPORT` lists, `:`-separated) that
    /// reads as a register or cas-register history gets the report the whole history gives.
    #[test]
    fn the_reduced_history_gives_the_whole_historys_report() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../histories");
        let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        paths.sort();
        let extra = std::env::var("SLOTCHECK_SAME_REPORT").unwrap_or_default();
        paths.extend(extra.split(':').filter(|p| !p.is_empty()).map(Into::into));
        let mut compared = 0;
        for path in &paths {
            for model in [ModelKind::Register, ModelKind::CasRegister] {
                let Some(want) = whole(path, model) else {
                    continue;
                };
                let got = check_file_analyzed(path, model, &CheckOptions::default()).unwrap();
                let json = |r: &Report| serde_json::to_value(r).unwrap();
                assert_eq!(json(&got), json(&want), "{} as {model}", path.display());
                assert!(got.redirect_analysis.is_some());
                eprintln!(
                    "same report: {} as {model}: {}, {} anomalies",
                    path.display(),
                    got.valid,
                    got.anomalies.len()
                );
                compared += 1;
            }
        }
        assert!(compared > 20, "{compared} fixtures compared");
    }

    /// Of a generated history (1% `info`, no redirects) only the unusual ops are kept whole,
    /// with the report the whole history gives.
    #[test]
    fn plain_ops_are_kept_as_a_few_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let (text, _) = crate::gen::history_text(&crate::gen::GenConfig::register(5, 4, 2000, 3));
        std::fs::write(&path, text).unwrap();
        let source = open(&path).unwrap();
        let (_, _, keep) = read(source, "register", Keep::default(), &mut Ignore).unwrap();
        let (history, plain) = keep.finish();
        let info = history
            .events
            .iter()
            .filter(|e| e.kind != EventType::Invoke);
        assert!(
            info.clone().all(|e| e.kind == EventType::Info),
            "only info ops"
        );
        assert_eq!(history.events.len(), 2 * info.count());
        assert!(history.events.len() < 200, "{} kept", history.events.len());
        assert_eq!(plain.len() as usize + history.events.len() / 2, 2000);
        assert!(history.indices.windows(2).all(|w| w[0] < w[1]));
        let want = whole(&path, ModelKind::Register).unwrap();
        let opts = CheckOptions::default();
        let got = check_file_analyzed(&path, ModelKind::Register, &opts).unwrap();
        assert_eq!(got, want);
        // Read once from a pipe: the same report, since no key needs a second read.
        let text = std::fs::read(&path).unwrap();
        let piped = Source::from_reader("<stdin>", std::io::Cursor::new(text.clone()));
        let (got, analyzed) = check_source_analyzed(piped, ModelKind::Register, &opts).unwrap();
        assert!(analyzed);
        assert_eq!(got, want);
        // A key not valid needs its ops whole: a pipe leaves the analysis out.
        let text = String::from_utf8(text).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let read = lines
            .iter()
            .rposition(|l| l.starts_with(r#"{"type":"ok""#) && l.contains(r#""f":"read""#))
            .unwrap();
        let (head, tail) = lines[read].split_once(r#""value":"#).unwrap();
        let time = &tail[tail.find(r#","time""#).unwrap()..];
        lines[read] = format!(r#"{head}"value":987654321{time}"#);
        let bad = lines.join("\n") + "\n";
        let piped = Source::from_reader("<stdin>", std::io::Cursor::new(bad.into_bytes()));
        let (got, analyzed) = check_source_analyzed(piped, ModelKind::Register, &opts).unwrap();
        assert!(!analyzed);
        assert!(got.redirect_analysis.is_none());
    }
}
