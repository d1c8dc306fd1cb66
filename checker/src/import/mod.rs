//! Importers: histories written by other tools, read into the crate's [`History`] so that one
//! checking path serves every format.
//!
//! | [`Format`] | written by | shape |
//! |---|---|---|
//! | `slotcheck` | slotcheck | JSON Lines, `histories/README.md` |
//! | `jepsen-edn` | Jepsen, Elle | `history.edn`, one op map per line; `jepsen.independent` tuples split into keys; Elle's shapes (no `:process`, no `:f`, completions only) |
//! | `knossos-edn` | Knossos's test data | one EDN vector of op maps |
//! | `jepsen-log` | Jepsen 0.0.x (Porcupine's etcd data) | `INFO jepsen.util - 2 :invoke :cas [3 0]` lines |
//! | `porcupine-kv` | Porcupine's kv test data | one op map per line with a `:key` |
//!
//! Each format also carries what its upstream checker assumes: the model, the initial value,
//! and how a `nil` read or a failed `cas` is read ([`Imported::options`]).

mod builder;
mod edn_ops;
mod etcd_log;
mod jepsen_edn;
mod knossos;
mod porcupine_kv;

use crate::history::{History, HistoryError};
use crate::model::ModelKind;
use crate::options::CheckOptions;
use crate::source::Source;
use serde_json::Value;
use std::path::Path;
use std::str::FromStr;

/// A history file format this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// slotcheck's own JSON Lines.
    Slotcheck,
    /// Jepsen's `history.edn`.
    JepsenEdn,
    /// Knossos's EDN vector files.
    KnossosEdn,
    /// Jepsen 0.0.x log lines (Porcupine's etcd logs).
    JepsenLog,
    /// Porcupine's kv logs.
    PorcupineKv,
}

impl Format {
    /// Every format, for help texts.
    pub const ALL: [Format; 5] = [
        Format::Slotcheck,
        Format::JepsenEdn,
        Format::KnossosEdn,
        Format::JepsenLog,
        Format::PorcupineKv,
    ];

    /// The format's name on the command line and in `expected.tsv`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Slotcheck => "slotcheck",
            Format::JepsenEdn => "jepsen-edn",
            Format::KnossosEdn => "knossos-edn",
            Format::JepsenLog => "jepsen-log",
            Format::PorcupineKv => "porcupine-kv",
        }
    }

    /// Guesses the format from the text: the first thing that is not whitespace or an EDN
    /// comment decides. `None` for an empty text or one nothing here reads.
    pub fn detect(text: &str) -> Option<Format> {
        let start = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with(';'))?;
        if start.starts_with("{\"") {
            Some(Format::Slotcheck)
        } else if start.contains("jepsen.util -") {
            Some(Format::JepsenLog)
        } else if start.starts_with('[') || start.starts_with('(') {
            Some(Format::KnossosEdn)
        } else if start.starts_with('{') {
            let kv = start.contains(":key ")
                && [":f :get", ":f :put", ":f :append"]
                    .iter()
                    .any(|f| start.contains(f));
            Some(if kv {
                Format::PorcupineKv
            } else {
                Format::JepsenEdn
            })
        } else {
            None
        }
    }
}

/// Parses a format name (see [`Format::name`]).
impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
                format!("unknown format {s:?}; known: {}", names.join(", "))
            })
    }
}

/// Why a file could not be imported; every variant names the file, and the line where known.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The text is not well-formed (EDN syntax).
    #[error("{path}:{line}:{column}: {}", crate::echo::Message(message))]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// An op lacks a field or has one of the wrong shape.
    #[error("{path}:{line}: field `{field}`: {}", crate::echo::Message(message))]
    Field {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// The field (as the format spells it, e.g. `:process`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The file holds nothing but blank lines (and EDN comments): an empty history is malformed
    /// input, whatever its format, not a valid history of no ops.
    #[error("{path}: empty: no history in it")]
    Empty {
        /// The file.
        path: String,
    },
    /// No format was given and none could be recognized.
    #[error("{path}: cannot tell the format (empty, or none of {known})")]
    UnknownFormat {
        /// The file.
        path: String,
        /// The known format names.
        known: String,
    },
    /// A slotcheck history that does not follow the format.
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// A history read from some format, with what its upstream checker assumes.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The format it was read as.
    pub format: Format,
    /// The events.
    pub history: History,
}

impl Imported {
    /// The model the format's histories are checked against, when the format implies one (see
    /// the README's table "Models by format"): in a Jepsen or Knossos EDN file, `:txn` ops whose
    /// micro-ops Elle names (`:r`, `:w`, `:append`) are Elle's (`txn`), Knossos's (`:read`,
    /// `:write`) a multi-register, as are a slotcheck file's (whose header names its model; the
    /// register workload's multi-key ops are registers); a Jepsen log is a CAS register.
    pub fn model(&self) -> Option<ModelKind> {
        let txns = || self.history.events.iter().filter(|e| e.f == "txn");
        let elle = |e: &crate::history::Event| {
            let mops = e.value.as_array().map(Vec::as_slice).unwrap_or_default();
            mops.iter().any(|m| {
                let f = m.as_array().and_then(|m| m.first()).and_then(Value::as_str);
                matches!(f, Some("r" | "w" | "append"))
            })
        };
        match self.format {
            Format::JepsenEdn | Format::KnossosEdn if txns().any(elle) => Some(ModelKind::Txn),
            Format::Slotcheck | Format::JepsenEdn | Format::KnossosEdn
                if txns().next().is_some() =>
            {
                Some(ModelKind::MultiRegister)
            }
            Format::Slotcheck => None,
            Format::JepsenEdn | Format::KnossosEdn | Format::JepsenLog => {
                Some(ModelKind::CasRegister)
            }
            Format::PorcupineKv => Some(ModelKind::Kv),
        }
    }

    /// Check options matching the upstream checker's semantics for this format: Knossos starts
    /// registers at 0 and reads `nil` as "read nothing"; Porcupine's etcd model starts absent
    /// and takes a failed `cas` as proof the value differed; its kv model starts at "".
    pub fn options(&self) -> CheckOptions {
        let mut opts = CheckOptions::default();
        match self.format {
            Format::Slotcheck => {}
            Format::JepsenEdn => opts.null_read_is_unknown = true,
            // Elle's histories (a vector of op maps reads as Knossos's) start empty or nil.
            Format::KnossosEdn if self.model() == Some(ModelKind::Txn) => {}
            Format::KnossosEdn => {
                opts.initial = Value::from(0);
                opts.null_read_is_unknown = true;
            }
            Format::JepsenLog => opts.failed_cas_is_read = true,
            Format::PorcupineKv => opts.initial = Value::from(""),
        }
        opts
    }
}

/// Whether `text` holds nothing but blank lines and EDN comments: an empty history.
pub fn is_empty_text(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with(';'))
}

/// Reads `text` (named `path` in errors) as `format`, or as the detected format when `None`;
/// an empty text is [`ImportError::Empty`] either way.
pub fn import(text: &str, path: &str, format: Option<Format>) -> Result<Imported, ImportError> {
    if is_empty_text(text) {
        return Err(ImportError::Empty {
            path: path.to_string(),
        });
    }
    let format = match format.or_else(|| Format::detect(text)) {
        Some(f) => f,
        None => {
            let known: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
            return Err(ImportError::UnknownFormat {
                path: path.to_string(),
                known: known.join(", "),
            });
        }
    };
    let history = match format {
        Format::Slotcheck => History::parse(text.as_bytes(), path)?,
        Format::JepsenEdn => jepsen_edn::import(path, text)?,
        Format::KnossosEdn => knossos::import(path, text)?,
        Format::JepsenLog => etcd_log::import(path, text)?,
        Format::PorcupineKv => porcupine_kv::import(path, text)?,
    };
    Ok(Imported { format, history })
}

/// Reads the file at `path`; see [`import`].
pub fn read_file(path: &Path, format: Option<Format>) -> Result<Imported, ImportError> {
    let source = Source::open(path).map_err(|source| ImportError::Io {
        path: path.display().to_string(),
        source,
    })?;
    read(source, format)
}

/// Reads a history already opened once (a pipe or standard input too); see [`import`].
pub fn read(source: Source, format: Option<Format>) -> Result<Imported, ImportError> {
    let name = source.name().to_string();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut source.into_reader(), &mut bytes).map_err(|source| {
        ImportError::Io {
            path: name.clone(),
            source,
        }
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..at];
        let line_start = before
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |p| p + 1);
        ImportError::Syntax {
            path: name.clone(),
            line: before.iter().filter(|&&c| c == b'\n').count() + 1,
            column: at - line_start + 1,
            message: "not valid UTF-8".into(),
        }
    })?;
    import(&text, &name, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format() {
        let cases = [
            (r#"{"type":"invoke"}"#, Some(Format::Slotcheck)),
            (
                "INFO  jepsen.util - 0\t:invoke\t:read\tnil",
                Some(Format::JepsenLog),
            ),
            ("; c\n[{:process 0}]", Some(Format::KnossosEdn)),
            ("({:process 0})", Some(Format::KnossosEdn)),
            (
                "{:process 0, :type :invoke, :f :get, :key \"0\", :value nil}",
                Some(Format::PorcupineKv),
            ),
            (
                "{:process 0, :type :invoke, :f :read, :value nil}",
                Some(Format::JepsenEdn),
            ),
            ("", None),
            ("hello", None),
        ];
        for (text, want) in cases {
            assert_eq!(Format::detect(text), want, "{text}");
        }
        assert_eq!("jepsen-log".parse::<Format>(), Ok(Format::JepsenLog));
        assert!("x".parse::<Format>().is_err());
        for (text, format) in [("", None), (" \n; c\n", Some(Format::Slotcheck))] {
            let err = import(text, "empty.log", format).unwrap_err();
            assert_eq!(err.to_string(), "empty.log: empty: no history in it");
        }
        let err = import("hello", "empty.log", None).unwrap_err();
        let bytes = b"{:process 0, :type :invoke, :f :read, :value nil}\n{:process \xff}\n";
        let source = Source::from_reader("bad.edn", &bytes[..]);
        let shown = read(source, None).unwrap_err().to_string();
        assert_eq!(shown, "bad.edn:2:11: not valid UTF-8");
        assert!(
            err.to_string().starts_with("empty.log: cannot tell"),
            "{err}"
        );
    }
}
