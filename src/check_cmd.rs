//! `slotcheck check`: check saved histories — slotcheck's own or other tools' — one file, several,
//! or directories of them, and print a verdict per file.
//!
//! Each file's format is detected from its first line unless `--format` names it. The model is
//! `--model`, else the one the format implies (Knossos and Jepsen logs: cas-register, Porcupine kv
//! logs: kv), else the one a slotcheck history's header names in `workload` (list-append and set
//! histories get the Elle-style analysis, `txn`), else `register`. slotcheck histories also get the
//! redirect-aware analysis (slot, migration phase, faults and hops of each explained op) unless
//! they are so large that they are checked streaming (see [`slotcheck::run::check_history`]).

use anyhow::{Context, Result};
use checker::{import, CheckOptions, Format, ImportError, ModelKind, Report, Source, Validity};
use serde_json::Value;
use slotcheck::run::{check_loaded, STREAM_BYTES_MIN};
use slotcheck::term::warn;
use std::fmt::{self, Write as _};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Invalid keys (and, separately, unknown keys) explained in full on a terminal; `--json` has all.
pub const KEYS_SHOWN_MAX: usize = 10;
/// Directory levels searched below a FILE argument; deeper ones are an error, not a silent skip.
const DIR_DEPTH_MAX: usize = 32;
/// Exit code when some file could not be read or is malformed, as Jepsen's CLI.
const EXIT_BAD_INPUT: u8 = 254;

/// The flags of `slotcheck check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// History files, or directories: every regular file below one is checked, by name, hidden
    /// files and directories skipped.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The files' format, detected from each file's content when omitted: jsonl (slotcheck's own),
    /// jepsen-edn, knossos-edn, porcupine-etcd (Jepsen 0.0.x logs) or porcupine-kv.
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// The model to check against: register, cas-register, counter, set, list-append, kv,
    /// multi-register or txn (Elle-style). Default: what the format implies, else the history
    /// header's workload, else register.
    #[arg(long, value_parser = parse_model)]
    model: Option<ModelKind>,
    /// The value of every register or key before any op, as JSON (0, null, [1,2]); for the kv
    /// model the text itself (a JSON string literal also works).
    #[arg(long, value_name = "VALUE")]
    initial: Option<String>,
    /// Print the report as JSON; for several files one object per line, with `file` and `time_ms`.
    #[arg(long)]
    json: bool,
}

/// Why `check` cannot read its input, beyond what the checker's own errors say.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A directory argument holds no file to check.
    #[error("{0}: no files to check in this directory (hidden ones are skipped)")]
    Empty(String),
    /// A directory argument nests deeper than `DIR_DEPTH_MAX`.
    #[error("{0}: directories nest more than {DIR_DEPTH_MAX} levels deep")]
    TooDeep(String),
    /// `--model` names a model the file's format cannot be checked against.
    #[error(
        "{path}: --model {model} does not fit this {format} history, whose ops are checked as \
         {implied}; drop --model or pass --model {implied}"
    )]
    ModelMismatch {
        /// The file.
        path: String,
        /// The model asked for.
        model: ModelKind,
        /// The file's format (its CLI name).
        format: &'static str,
        /// The model the format implies.
        implied: ModelKind,
    },
}

/// Whether `err` means bad input (exit 254) rather than an internal error (exit 255).
pub fn is_bad_input(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<checker::HistoryError>()
            || e.is::<checker::CheckError>()
            || e.is::<checker::ImportError>()
            || e.is::<checker::FileError>()
            || e.is::<InputError>()
            || matches!(
                e.downcast_ref::<slotcheck::verify::VerifyError>(),
                Some(slotcheck::verify::VerifyError::NoNode { .. })
            )
    })
}

/// Runs `slotcheck check`: 0 all valid, 1 any invalid, otherwise 254 if a file was unreadable or
/// malformed, otherwise 2 if any verdict is unknown.
pub fn run(args: CheckArgs) -> Result<ExitCode> {
    let files = expand(&args.files)?;
    let table = files.len() > 1 || args.files.iter().any(|p| p.is_dir());
    if table {
        return several(&files, &args);
    }
    let report = check_path(&files[0], &args)?;
    let code = ExitCode::from(report.valid.exit_code());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(report, KEYS_SHOWN_MAX));
    }
    Ok(code)
}

/// Checks every file, printing one line (or one JSON object) per file as it is done, then the
/// capped reports of the invalid ones and an overall line. A file found in a directory whose
/// format cannot be told (a README, an empty file) is skipped, not an error.
fn several(files: &[PathBuf], args: &CheckArgs) -> Result<ExitCode> {
    let width = files.iter().map(|f| f.display().to_string().len()).max();
    let width = width.unwrap_or(0);
    let mut out = std::io::stdout().lock();
    let mut tally = Tally::default();
    let mut details = Vec::new();
    for path in files {
        let start = Instant::now();
        let result = check_path(path, args);
        let time_ms = (start.elapsed().as_secs_f64() * 1e4).round() / 10.0;
        let name = path.display().to_string();
        let report = match result {
            Ok(report) => report,
            Err(err) if !args.files.contains(path) && undetected(&err) => {
                tally.skipped += 1;
                if args.json {
                    warn(&format!("skipped {name}: not a history in a known format"));
                } else {
                    writeln!(
                        out,
                        "{name:<width$}  skipped  not a history in a known format"
                    )?;
                }
                continue;
            }
            Err(err) if is_bad_input(&err) => {
                tally.errors += 1;
                let message = format!("{err:#}");
                if args.json {
                    let line = serde_json::json!({
                        "file": name, "valid": "unknown", "error": message, "time_ms": time_ms,
                    });
                    writeln!(out, "{line}")?;
                } else {
                    writeln!(out, "{name:<width$}  error    {message}")?;
                }
                continue;
            }
            Err(err) => return Err(err),
        };
        tally.add(report.valid);
        if args.json {
            let mut value = serde_json::to_value(&report)?;
            if let Value::Object(m) = &mut value {
                m.insert("file".into(), Value::from(name));
                m.insert("time_ms".into(), Value::from(time_ms));
            }
            writeln!(out, "{value}")?;
            continue;
        }
        writeln!(
            out,
            "{name:<width$}  {:<7}  {:>9} ops  {time_ms:>9.1} ms",
            word(report.valid),
            report.ops.total()
        )?;
        if report.valid == Validity::Invalid {
            details.push(format!("\n== {name}\n{}", render(report, KEYS_SHOWN_MAX)));
        }
    }
    let code = tally.exit_code();
    if !args.json {
        for text in &details {
            write!(out, "{text}")?;
        }
        writeln!(out, "\noverall: {tally}")?;
    }
    out.flush()?;
    Ok(ExitCode::from(code))
}

/// Whether `err` says that the file is empty, or that no format was given and none could be
/// told from the content.
fn undetected(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        matches!(
            e.downcast_ref::<ImportError>(),
            Some(ImportError::UnknownFormat { .. } | ImportError::Empty { .. })
        )
    })
}

/// The verdicts of several files, and the files that got none.
#[derive(Debug, Default)]
struct Tally {
    valid: usize,
    invalid: usize,
    unknown: usize,
    /// Unreadable or malformed files.
    errors: usize,
    /// Files in directories that are not histories.
    skipped: usize,
}

impl Tally {
    fn add(&mut self, v: Validity) {
        match v {
            Validity::Valid => self.valid += 1,
            Validity::Invalid => self.invalid += 1,
            Validity::Unknown => self.unknown += 1,
        }
    }

    /// Any invalid file wins; then an unreadable or malformed one (or nothing checked at all);
    /// then an unknown verdict.
    fn exit_code(&self) -> u8 {
        if self.invalid > 0 {
            Validity::Invalid.exit_code()
        } else if self.errors > 0 || self.valid + self.unknown == 0 {
            EXIT_BAD_INPUT
        } else if self.unknown > 0 {
            Validity::Unknown.exit_code()
        } else {
            Validity::Valid.exit_code()
        }
    }
}

/// `invalid (5 files: 3 valid, 2 invalid, 0 unknown, 0 unreadable or malformed)`.
impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.exit_code() {
            0 => "valid",
            1 => "invalid",
            2 => "unknown",
            _ => "error",
        };
        let files = self.valid + self.invalid + self.unknown + self.errors + self.skipped;
        write!(
            f,
            "{verdict} ({files} files: {} valid, {} invalid, {} unknown, {} unreadable or malformed",
            self.valid, self.invalid, self.unknown, self.errors
        )?;
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        f.write_str(")")
    }
}

/// A verdict as one lowercase word, for the per-file table.
fn word(v: Validity) -> &'static str {
    match v {
        Validity::Valid => "valid",
        Validity::Invalid => "invalid",
        Validity::Unknown => "unknown",
    }
}

/// Reads one file in its format and checks it against its model; errors name the file. The file
/// is opened once and read once, so that a pipe, a FIFO, `<(cmd)` or `-` (standard input) reads
/// as a file does: its format is detected from bytes peeked through the same handle.
fn check_path(path: &Path, args: &CheckArgs) -> Result<Report> {
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
        let model = args
            .model
            .or_else(|| header_model(&first))
            .unwrap_or(ModelKind::Register);
        let opts = options(CheckOptions::default(), args.initial.as_deref(), model);
        let header: Value = serde_json::from_str(&first).unwrap_or(Value::Null);
        if slotcheck::pika::explain::is_pika_run(&header) {
            // A PikiwiDB history is read once, for the check and for its own findings.
            let history = checker::History::read(source).map_err(|e| reading(e.into()))?;
            let mut report = check_loaded(&history, Path::new(&name), model, &opts)?;
            let ops = checker::Ops::from_history(&history)
                .with_context(|| format!("pairing the ops of {name}"))?;
            slotcheck::pika::explain::annotate(&history, &ops, &mut report);
            report
        } else {
            check_slotcheck(source, model, &opts).map_err(reading)?
        }
    } else {
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
        let opts = options(imported.options(), args.initial.as_deref(), model);
        checker::check(&imported.history, model, &opts)
            .with_context(|| format!("checking {name} as {model}"))?
    };
    for w in &report.warnings {
        warn(w);
    }
    Ok(report)
}

/// Checks a slotcheck history read once from `source`, as [`slotcheck::run::check_history`] checks a file:
/// register histories of [`STREAM_BYTES_MIN`] bytes or more streaming (for a pipe: when more than
/// that many bytes come, which are peeked, not read twice), others whole, with the
/// redirect-aware context.
fn check_slotcheck(mut source: Source, model: ModelKind, opts: &CheckOptions) -> Result<Report> {
    let name = source.name().to_string();
    let io = |source| InputError::Io {
        path: name.clone(),
        source,
    };
    let large = model == ModelKind::Register
        && match source.regular_len() {
            Some(len) => len >= STREAM_BYTES_MIN,
            None => !source.peek(STREAM_BYTES_MIN as usize).map_err(io)?,
        };
    if large {
        return Ok(checker::check_source(source, model, opts)?);
    }
    let history = checker::History::read(source)?;
    check_loaded(&history, Path::new(&name), model, opts)
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
    match line.get("workload")?.as_str()?.parse().ok()? {
        ModelKind::ListAppend | ModelKind::Set => Some(ModelKind::Txn),
        model => Some(model),
    }
}

/// `opts` with `--initial` applied: JSON text, except for kv, whose values are the text itself.
fn options(mut opts: CheckOptions, initial: Option<&str>, model: ModelKind) -> CheckOptions {
    if let Some(text) = initial {
        opts.initial = match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::String(_)) => v,
            Ok(v) if model != ModelKind::Kv => v,
            _ => Value::String(text.to_string()),
        };
    }
    opts
}

/// The files to check: each FILE argument as given (`-` is standard input), and each directory's regular files (and
/// links to files), recursively, sorted by name; hidden files and directories are skipped.
fn expand(args: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut files = Vec::new();
    for path in args {
        if path.as_os_str() == "-" {
            files.push(path.clone());
            continue;
        }
        let meta = std::fs::metadata(path).map_err(|source| InputError::Io {
            path: path.display().to_string(),
            source,
        })?;
        if meta.is_dir() {
            let before = files.len();
            walk(path, 0, &mut files)?;
            if files.len() == before {
                return Err(InputError::Empty(path.display().to_string()));
            }
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Appends the files below `dir` to `files`; links to directories are not followed.
fn walk(dir: &Path, depth: usize, files: &mut Vec<PathBuf>) -> Result<(), InputError> {
    if depth > DIR_DEPTH_MAX {
        return Err(InputError::TooDeep(dir.display().to_string()));
    }
    let io = |source| InputError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            walk(&path, depth + 1, files)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            files.push(path);
        }
    }
    Ok(())
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
fn parse_format(text: &str) -> Result<Format, String> {
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
fn parse_model(text: &str) -> Result<ModelKind, String> {
    text.parse()
}

/// `report` as text for a terminal: the verdict and every count, but at most `keys_max` invalid
/// and `keys_max` unknown keys explained; a last line says how many more `--json` has.
pub fn render(mut report: Report, keys_max: usize) -> String {
    let count = |v: Validity| report.keys.iter().filter(|k| k.valid == v).count();
    let (invalid, unknown) = (count(Validity::Invalid), count(Validity::Unknown));
    if invalid <= keys_max && unknown <= keys_max {
        return report.to_string();
    }
    // The first line counts every key, so it is taken before the keys are cut.
    let mut first = FirstLine(String::new());
    let _ = write!(first, "{report}");
    let (mut invalid_seen, mut unknown_seen) = (0, 0);
    report.keys.retain(|k| {
        let seen = match k.valid {
            Validity::Valid => return true,
            Validity::Invalid => &mut invalid_seen,
            Validity::Unknown => &mut unknown_seen,
        };
        *seen += 1;
        *seen <= keys_max
    });
    let rest = report.to_string();
    let mut text = first.0;
    text.push('\n');
    text.push_str(rest.split_once('\n').map_or("", |(_, r)| r));
    for (n, what) in [(invalid, "invalid"), (unknown, "unknown")] {
        if n > keys_max {
            let _ = writeln!(
                text,
                "... and {} more {what} keys (use --json for all)",
                n - keys_max
            );
        }
    }
    text
}

/// A writer that keeps what is written up to the first newline, then stops the writing with an
/// error, so that a long `Display` is not rendered only to be thrown away.
struct FirstLine(String);

impl fmt::Write for FirstLine {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match s.split_once('\n') {
            Some((head, _)) => {
                self.0.push_str(head);
                Err(fmt::Error)
            }
            None => {
                self.0.push_str(s);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotcheck::run::check_history;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("histories")
            .join(name)
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
        ] {
            let path = fixture(name);
            let loaded = check_history(&path, ModelKind::Register, &opts, u64::MAX).unwrap();
            let streamed = check_history(&path, ModelKind::Register, &opts, 0).unwrap();
            let verdicts = |r: &Report| -> Vec<(String, Validity)> {
                r.keys.iter().map(|k| (k.key.clone(), k.valid)).collect()
            };
            assert_eq!(verdicts(&streamed), verdicts(&loaded), "{name}");
            assert_eq!(streamed.valid, loaded.valid, "{name}");
            assert!(
                loaded.redirect_analysis.is_some(),
                "{name}: context when loaded"
            );
            assert!(
                streamed.redirect_analysis.is_none(),
                "{name}: none when streamed"
            );
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
