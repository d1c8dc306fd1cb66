//! One file of `slotcheck check`: read once in its format (given or detected from its first
//! line), checked against its model, with the flags' names for formats and models.

use super::{CheckArgs, InputError};
use anyhow::{Context, Result};
use checker::{import, CheckOptions, Format, ImportError, ModelKind, Report, Source};
use serde_json::Value;
use slotcheck::run::{check_history, check_loaded, streams, unanalyzed_warning, STREAM_BYTES_MIN};
use slotcheck::term::warn;
use std::path::Path;

/// Reads one file in its format and checks it against its model; errors name the file. The file
/// is opened once and read once, so that a pipe, a FIFO, `<(cmd)` or `-` (standard input) reads
/// as a file does: its format is detected from bytes peeked through the same handle.
pub(super) fn check_path(path: &Path, args: &CheckArgs) -> Result<Report> {
    let io = |source| InputError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut source = Source::open(path).map_err(io)?;
    let name = source.name().to_string();
    let first = source.first_line().map_err(io)?;
    // One rule whether the format is given or detected: an empty file is no history.
    if first.is_empty() {
        return Err(ImportError::Empty { path: name }.into());
    }
    let detected = Format::detect(&first);
    let format = args.format.or(detected).ok_or_else(|| {
        let known: Vec<_> = Format::ALL.iter().map(|&f| format_name(f)).collect();
        ImportError::UnknownFormat {
            path: name.clone(),
            known: known.join(", "),
        }
    })?;
    // Only a format given against the content gets a word of its own; the readers' errors
    // already name the file, line and field.
    let reading = |err: anyhow::Error| match (args.format, detected) {
        (Some(given), Some(d)) if d != given => err.context(format!(
            "reading {name} as {} (its content looks like {})",
            format_name(given),
            format_name(d)
        )),
        (Some(given), None) => err.context(format!(
            "reading {name} as {} (its content looks like none of the known formats)",
            format_name(given)
        )),
        _ => err,
    };
    let report = if format == Format::Slotcheck {
        check_own(source, &first, args, &reading)?
    } else {
        check_imported(source, format, args, &reading)?
    };
    for w in &report.warnings {
        warn(w);
    }
    Ok(report)
}

/// Checks a slotcheck history whose first line is `first` against `--model`, else the model
/// its header names; a PikiwiDB run's also gets its own findings.
fn check_own(
    source: Source,
    first: &str,
    args: &CheckArgs,
    reading: &dyn Fn(anyhow::Error) -> anyhow::Error,
) -> Result<Report> {
    let name = source.name().to_string();
    let model = args
        .model
        .or_else(|| header_model(first))
        .unwrap_or(ModelKind::Register);
    let mut opts = options(CheckOptions::default(), args.initial.as_deref(), model);
    opts.assumptions = args.assumptions().union(header_assumptions(first));
    let header: Value = serde_json::from_str(first).unwrap_or(Value::Null);
    if !slotcheck::pika::explain::is_pika_run(&header) {
        return check_slotcheck(source, model, &opts).map_err(reading);
    }
    // A PikiwiDB history is read once, for the check and for its own findings.
    let history = checker::History::read(source).map_err(|e| reading(e.into()))?;
    let mut report = check_loaded(&history, Path::new(&name), model, &opts)?;
    slotcheck::pika::explain::annotate_saved(&history, &mut report)
        .with_context(|| format!("pairing the ops of {name}"))?;
    Ok(report)
}

/// Checks another tool's history in `format` against `--model`, else the model the format
/// implies; a format written for one model refuses any other.
fn check_imported(
    source: Source,
    format: Format,
    args: &CheckArgs,
    reading: &dyn Fn(anyhow::Error) -> anyhow::Error,
) -> Result<Report> {
    let name = source.name().to_string();
    let imported = import::read(source, Some(format)).map_err(|e| reading(e.into()))?;
    let implied = imported.model();
    let model = match (args.model, implied) {
        (Some(model), Some(implied)) if model != implied && strict(format) => {
            return Err(InputError::ModelMismatch {
                path: name,
                model,
                format: format_name(format),
                implied,
            }
            .into())
        }
        (Some(model), _) | (None, Some(model)) => model,
        (None, None) => ModelKind::Register,
    };
    let mut opts = options(imported.options(), args.initial.as_deref(), model);
    opts.assumptions = args.assumptions();
    checker::check(&imported.history, model, &opts)
        .with_context(|| format!("checking {name} as {model}"))
}

/// Checks a slotcheck history opened as `source`, as [`check_history`] checks a file:
/// register-family histories from one streaming read at every size, with the redirect-aware
/// analysis of the reduced history it keeps. A pipe cannot be read twice: one under
/// [`STREAM_BYTES_MIN`] bytes is read whole (from the bytes peeked); a larger one is checked
/// streaming, with the analysis unless a key is not valid (its ops would be read again; a
/// warning says so). Other models read the history whole.
fn check_slotcheck(mut source: Source, model: ModelKind, opts: &CheckOptions) -> Result<Report> {
    let name = source.name().to_string();
    let io = |source| InputError::Io {
        path: name.clone(),
        source,
    };
    if !streams(model) {
        let history = checker::History::read(source)?;
        return check_loaded(&history, Path::new(&name), model, opts);
    }
    if source.regular_len().is_some() {
        drop(source);
        return check_history(Path::new(&name), model, opts);
    }
    if source.peek(STREAM_BYTES_MIN as usize).map_err(io)? {
        // A pipe is read once: the history whole, the check from its ops.
        let history = checker::History::read(source)?;
        return check_loaded(&history, Path::new(&name), model, opts);
    }
    let (mut report, analyzed) = checker::check_source_analyzed(source, model, opts)?;
    if !analyzed {
        report.warnings.push(unanalyzed_warning(&name));
    }
    Ok(report)
}

/// Whether `--model` must be the model `format` implies: formats written for one model only.
/// Jepsen EDN and slotcheck histories may hold any workload.
fn strict(format: Format) -> bool {
    matches!(
        format,
        Format::KnossosEdn | Format::JepsenLog | Format::PorcupineKv
    )
}

/// The model a slotcheck history's header names in `workload`; list-append and set histories
/// get the Elle-style analysis, which includes their per-key linearizability check.
fn header_model(first: &str) -> Option<ModelKind> {
    let line: Value = serde_json::from_str(first).ok()?;
    if line.get("type")?.as_str()? != "header" {
        return None;
    }
    let workload = line.get("workload")?.as_str()?;
    // A run's workload is checked as the run checks it; other names are models.
    if let Some(kind) = workloads::WorkloadKind::parse(workload) {
        return Some(slotcheck::run::model_of(kind));
    }
    match workload.parse().ok()? {
        ModelKind::ListAppend | ModelKind::Set => Some(ModelKind::Txn),
        model => Some(model),
    }
}

/// What the run of a slotcheck history assumed of its keys ([`slotcheck::run::assumptions_of`]
/// its header's workload), so that `check` decides it as the run did.
fn header_assumptions(first: &str) -> checker::Assumptions {
    let line: Value = serde_json::from_str(first).unwrap_or(Value::Null);
    line.get("workload")
        .and_then(Value::as_str)
        .and_then(workloads::WorkloadKind::parse)
        .map(slotcheck::run::assumptions_of)
        .unwrap_or_default()
}

/// `opts` with `--initial` applied (JSON text, except for kv, whose values are the text itself)
/// and the cache budget following the memory available.
fn options(opts: CheckOptions, initial: Option<&str>, model: ModelKind) -> CheckOptions {
    // The searches' caches share the memory available, by key size.
    let mut opts = slotcheck::run::with_search_memory(opts);
    if let Some(text) = initial {
        opts.initial = match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::String(_)) => v,
            Ok(v) if model != ModelKind::Kv => v,
            _ => Value::String(text.to_string()),
        };
    }
    opts
}

/// The format's name on this command line (`jsonl` and `porcupine-etcd` where the checker says
/// `slotcheck` and `jepsen-log`).
fn format_name(format: Format) -> &'static str {
    match format {
        Format::Slotcheck => "jsonl",
        Format::JepsenLog => "porcupine-etcd",
        other => other.name(),
    }
}

/// Parses `--format`: a name of [`format_name`] or of [`Format::name`].
pub(super) fn parse_format(text: &str) -> Result<Format, String> {
    Format::ALL
        .into_iter()
        .find(|&f| format_name(f) == text)
        .map_or_else(|| text.parse(), Ok)
        .map_err(|_| {
            let known: Vec<_> = Format::ALL.iter().map(|&f| format_name(f)).collect();
            format!("unknown format {text:?}; known: {}", known.join(", "))
        })
}

/// Parses `--model` (see [`ModelKind`]'s names).
pub(super) fn parse_model(text: &str) -> Result<ModelKind, String> {
    text.parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::Validity;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("histories")
            .join(name)
    }

    #[test]
    fn the_header_workload_names_the_model() {
        let header = |w: &str| format!(r#"{{"type":"header","workload":"{w}"}}"#);
        let table = [
            ("register", ModelKind::Register),
            ("list-append", ModelKind::Txn),
            ("rw-register", ModelKind::Txn),
            ("counter", ModelKind::Counter),
        ];
        for (workload, want) in table {
            assert_eq!(header_model(&header(workload)), Some(want), "{workload}");
        }
    }

    #[test]
    fn large_histories_are_streamed_to_the_same_verdicts() {
        let opts = CheckOptions::default();
        for name in [
            "register-ok.jsonl",
            "register-info-ok.jsonl",
            "register-stale-read-bad.jsonl",
            "register-lost-write-bad.jsonl",
            "register-phantom-bad.jsonl",
            // Multi-key ops, read per key by the streaming check too.
            "register-mset-ok.jsonl",
            "register-mset-lost-bad.jsonl",
        ] {
            let path = fixture(name);
            let history = checker::History::read_file(&path).unwrap();
            let loaded = check_loaded(&history, &path, ModelKind::Register, &opts).unwrap();
            let streamed = check_history(&path, ModelKind::Register, &opts).unwrap();
            let verdicts = |r: &Report| -> Vec<(String, Validity)> {
                r.keys.iter().map(|k| (k.key.clone(), k.valid)).collect()
            };
            assert_eq!(verdicts(&streamed), verdicts(&loaded), "{name}");
            assert_eq!(streamed.valid, loaded.valid, "{name}");
            // The redirect-aware analysis runs on the reduced history at every size, and says
            // what the whole history says.
            assert!(
                streamed.redirect_analysis.is_some(),
                "{name}: context when streamed"
            );
            assert_eq!(
                streamed.redirect_analysis, loaded.redirect_analysis,
                "{name}"
            );
            assert_eq!(streamed.anomalies, loaded.anomalies, "{name}");
            assert_eq!(streamed.keys, loaded.keys, "{name}");
            assert_eq!(streamed.causes, loaded.causes, "{name}");
        }
    }

    #[test]
    fn flags_take_cli_and_checker_names() {
        assert_eq!(parse_format("jsonl"), Ok(Format::Slotcheck));
        assert_eq!(parse_format("slotcheck"), Ok(Format::Slotcheck));
        assert_eq!(parse_format("porcupine-etcd"), Ok(Format::JepsenLog));
        assert_eq!(parse_format("jepsen-log"), Ok(Format::JepsenLog));
        assert_eq!(parse_format("knossos-edn"), Ok(Format::KnossosEdn));
        assert!(parse_format("csv")
            .unwrap_err()
            .contains("jsonl, jepsen-edn"));
        assert_eq!(parse_model("kv-append"), Ok(ModelKind::Kv));
        let initial = |text, model| options(CheckOptions::default(), Some(text), model).initial;
        assert_eq!(initial("5", ModelKind::Register), Value::from(5));
        assert_eq!(initial("[1,2]", ModelKind::Set), serde_json::json!([1, 2]));
        assert_eq!(initial("5", ModelKind::Kv), Value::from("5"));
        assert_eq!(initial("\"x y\"", ModelKind::Kv), Value::from("x y"));
        assert_eq!(initial("abc", ModelKind::Register), Value::from("abc"));
    }

    #[test]
    fn first_line_skips_blanks_and_comments() {
        let first = |text: &'static str| {
            Source::from_reader("h.edn", text.as_bytes())
                .first_line()
                .unwrap()
        };
        assert_eq!(
            first("\n  ; a comment\n\n [{:process 0}]\n"),
            "[{:process 0}]"
        );
        assert_eq!(first(""), "");
        assert_eq!(first(" \n;\n"), "");
        assert_eq!(first("{\"a\":1}"), "{\"a\":1}");
        let header =
            r#"{"type":"header","format":"slotcheck-history","version":1,"workload":"set"}"#;
        assert_eq!(header_model(header), Some(ModelKind::Txn));
        assert_eq!(
            header_model(&header.replace("set", "counter")),
            Some(ModelKind::Counter)
        );
        assert_eq!(header_model(&header.replace("set", "bank")), None);
        assert_eq!(header_model(r#"{"type":"invoke"}"#), None);
    }
}
