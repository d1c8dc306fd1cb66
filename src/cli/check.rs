//! `slotcheck check`: check saved histories — slotcheck's own or other tools' — one file, several,
//! or directories of them, and print a verdict per file.
//!
//! Each file's format is detected from its first line unless `--format` names it. The model is
//! `--model`, else the one the format implies (Knossos and Jepsen logs: cas-register, Porcupine kv
//! logs: kv), else the one a slotcheck history's header names in `workload` (list-append and set
//! histories get the Elle-style analysis, `txn`), else `register`. slotcheck histories also get the
//! redirect-aware analysis (slot, migration phase, faults and hops of each explained op) unless
//! they are so large that they are checked streaming (see [`slotcheck::run::check_history`]).
//! `--sequential-keys`, `--linearizable-keys` and `--wfr-keys` let the rw-register analysis infer
//! version orders (Elle's options); a slotcheck rw-register history has its run's on already.

mod read;

use super::render::{render, KEYS_SHOWN_MAX};
use anyhow::Result;
use checker::{Format, ImportError, ModelKind, Validity};
use read::{check_path, parse_format, parse_model};
use serde_json::Value;
use slotcheck::term::warn;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

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
    pub(super) files: Vec<PathBuf>,
    /// The files' format, detected from each file's content when omitted: jsonl (slotcheck's own),
    /// jepsen-edn, knossos-edn, porcupine-etcd (Jepsen 0.0.x logs) or porcupine-kv.
    #[arg(long, value_parser = parse_format)]
    pub(super) format: Option<Format>,
    /// The model to check against: register, cas-register, counter, set, list-append, kv,
    /// multi-register or txn (Elle-style). Default: what the format implies, else the history
    /// header's workload, else register.
    #[arg(long, value_parser = parse_model)]
    pub(super) model: Option<ModelKind>,
    /// The value of every register or key before any op, as JSON (0, null, [1,2]); for the kv
    /// model the text itself (a JSON string literal also works).
    #[arg(long, value_name = "VALUE")]
    pub(super) initial: Option<String>,
    /// Print the report as JSON; for several files one object per line, with `file` and `time_ms`.
    #[arg(long)]
    pub(super) json: bool,
    /// rw-register: assume each key is sequentially consistent and infer version orders from
    /// process order (Elle's `sequential-keys?`).
    #[arg(long)]
    pub(super) sequential_keys: bool,
    /// rw-register: assume each key is linearizable and infer version orders from real time
    /// (Elle's `linearizable-keys?`).
    #[arg(long)]
    pub(super) linearizable_keys: bool,
    /// rw-register: assume writes follow reads within a transaction and order the version a
    /// transaction read before the one it then wrote (Elle's `wfr-keys?`).
    #[arg(long)]
    pub(super) wfr_keys: bool,
}

impl CheckArgs {
    /// The assumptions the flags ask for (a slotcheck rw-register history adds its run's).
    pub(super) fn assumptions(&self) -> checker::Assumptions {
        checker::Assumptions {
            sequential_keys: self.sequential_keys,
            linearizable_keys: self.linearizable_keys,
            wfr_keys: self.wfr_keys,
        }
    }
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
