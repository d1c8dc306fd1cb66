//! Checking a history file without holding its events: the path for histories of millions of ops.
//!
//! [`History`] keeps every [`Event`](crate::Event) with its JSON values: about 20 million of them
//! for a 10-million-op run, several GiB. Here the file is read in blocks of lines; each block's
//! lines are scanned in parallel ([`scan`]: the common line shape, read from bytes) while the
//! previous block's lines are paired into ops ([`pairing`]) and each op at once folded into a
//! compact per-key record (the model's input, times, lines), so memory grows with the ops that
//! matter to the check, not with the text. The rules are the same as [`History::parse`],
//! [`Ops::from_history`](crate::Ops::from_history) and the model apply, with the same errors
//! (plus the file's name): a line the scanner does not take is read again by a JSON reader, and
//! failing that by `History::parse`, which names the field that is wrong. Keys are then checked
//! in parallel as by [`check`](crate::check). Registers and list-append histories are streamed;
//! other models read the whole [`History`]. A register check holds at most a budget of compact
//! ops ([`HELD_BYTES_MAX`] by default); past it they are spilled to temporary files by key and
//! read back a batch of keys at a time, so that memory stays bounded however long the history
//! (see `register::spill`); the report is the same either way.
//!
//! [`check_file_analyzed`] is the register family's one path: the same read also keeps a reduced
//! [`History`] (`keep`: header, nemesis events, the ops that are not a plain `ok`, and a few
//! bytes of each plain op) on which the redirect-aware analysis runs, so that it needs no second
//! parse into JSON values at any size (`analyzed`).

mod analyzed;
mod blocks;
mod keep;
mod list;
mod page;
mod pairing;
mod register;
mod scan;

use crate::history::{History, HistoryError};
use crate::model::list_append::ListAppend;
use crate::model::parse_ints;
use crate::model::ModelKind;
use crate::options::{CheckError, CheckOptions};
use crate::report::Report;
use crate::source::Source;
use pairing::{Pairing, Sink};
use serde_json::Value;
use std::path::Path;

pub use analyzed::{check_file_analyzed, check_source_analyzed};
pub use page::{add_lines, page_file, PageOp, PageOps};
pub use register::HELD_BYTES_MAX;

/// Why a history file could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read, or a line breaks the format.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The events break the pairing rules or do not fit the model.
    #[error("{path}:{source}")]
    Check {
        /// The file.
        path: String,
        /// What is wrong, with its line and field.
        source: CheckError,
    },
    /// The ops spilled to temporary files could not be written or read back.
    #[error("{path}: spilling ops to a temporary file: {source}")]
    Spill {
        /// The history file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Checks the history at `path` against `model`: registers and list-append histories streaming
/// (see the module doc), other models by reading the whole [`History`] and calling
/// [`crate::check`].
pub fn check_file(path: &Path, model: ModelKind, opts: &CheckOptions) -> Result<Report, FileError> {
    check_file_bounded(path, model, opts, HELD_BYTES_MAX)
}

/// [`check_file`], holding at most `held_bytes_max` bytes of a register history's compact ops in
/// memory (beyond them, the ops of the key being searched); the rest wait in temporary files.
pub fn check_file_bounded(
    path: &Path,
    model: ModelKind,
    opts: &CheckOptions,
    held_bytes_max: usize,
) -> Result<Report, FileError> {
    let source = Source::open(path).map_err(|source| HistoryError::Io {
        path: path.display().to_string(),
        source,
    })?;
    check_source_bounded(source, model, opts, held_bytes_max)
}

/// [`check_file_bounded`] on a history already opened (a pipe or standard input too): its bytes
/// are read once, from the start, whatever [`Source`] peeked at.
pub fn check_source_bounded(
    source: Source,
    model: ModelKind,
    opts: &CheckOptions,
    held_bytes_max: usize,
) -> Result<Report, FileError> {
    let name = source.name().to_string();
    let wrap = |source| FileError::Check {
        path: name.clone(),
        source,
    };
    let budget = opts.budget();
    match model {
        ModelKind::Register | ModelKind::CasRegister => {
            let register = opts.register().map_err(wrap)?;
            let keyless = model == ModelKind::CasRegister;
            let mut sink = register::RegisterSink::new(register, held_bytes_max, keyless);
            let (report, keys) = read(source, &name, model.checker(), &mut sink)?;
            sink.finish(report, keys, &budget)
                .map_err(|source| FileError::Spill { path: name, source })
        }
        ModelKind::ListAppend => {
            let initial = match &opts.initial {
                Value::Null => Vec::new(),
                v => parse_ints(v).map_err(|message| {
                    wrap(CheckError::Option {
                        option: "initial",
                        message,
                    })
                })?,
            };
            let mut sink = list::ListSink::new(ListAppend { initial });
            let (report, keys) = read(source, &name, "list-append-linearizable", &mut sink)?;
            Ok(sink.finish(report, keys, &budget))
        }
        _ => {
            let history = History::parse(source.into_reader(), &name)?;
            crate::kind::check(&history, model, opts).map_err(wrap)
        }
    }
}

/// Reads and pairs the history, handing every op to `sink`; returns the counts and the key names.
fn read<S: Sink + Send>(
    source: Source,
    name: &str,
    checker: &'static str,
    sink: &mut S,
) -> Result<(Report, Vec<String>), FileError> {
    let mut pairing = Pairing::new(name, checker);
    blocks::for_each_line(source.into_reader(), name, |line| pairing.line(line, sink))?;
    pairing.finish(sink)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{history_text, GenConfig};
    use crate::validity::Validity;

    /// Checks `text` streaming and from a [`History`].
    fn both(text: &str, model: ModelKind) -> (Report, Report) {
        let dir = std::env::temp_dir().join(format!("slotcheck-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!(
            "{:x}.jsonl",
            crate::hash::mix64(text.len() as u64 ^ crate::hash::mix64(text.as_ptr() as u64))
        ));
        std::fs::write(&path, text).unwrap();
        let opts = CheckOptions::default();
        let streamed = check_file(&path, model, &opts).unwrap();
        let history = History::parse(text.as_bytes(), "h").unwrap();
        let held = crate::check(&history, model, &opts).unwrap();
        let _ = std::fs::remove_file(&path);
        (streamed, held)
    }

    #[test]
    fn streaming_agrees_with_the_history_path() {
        for seed in 1..=5 {
            let (text, _) = history_text(&GenConfig::register(4, 6, 400, seed));
            let (s, h) = both(&text, ModelKind::Register);
            assert_eq!(s, h, "seed {seed}");
            assert_eq!(s.valid, Validity::Valid);
        }
        let text = "{\"type\":\"invoke\",\"process\":0,\"f\":\"write\",\"key\":\"k\",\"value\":1,\"time\":10}\n\
                    {\"type\":\"ok\",\"process\":0,\"f\":\"write\",\"key\":\"k\",\"value\":1,\"time\":20}\n\
                    {\"type\":\"info\",\"process\":\"nemesis\",\"f\":\"kill\",\"value\":{},\"time\":25}\n\
                    {\"type\":\"invoke\",\"process\":1,\"f\":\"read\",\"key\":\"k\",\"value\":null,\"time\":30}\n\
                    {\"type\":\"ok\",\"process\":1,\"f\":\"read\",\"key\":\"k\",\"value\":null,\"time\":40}\n";
        let (s, h) = both(text, ModelKind::Register);
        assert_eq!(s, h);
        assert_eq!(s.valid, Validity::Invalid);
    }

    #[test]
    fn txn_ops_stream_per_key_as_the_history_path_reads_them() {
        let lines = [
            r#"{"type":"invoke","process":0,"f":"write","key":"a","value":1,"time":1}"#,
            r#"{"type":"ok","process":0,"f":"write","key":"a","value":1,"time":2}"#,
            r#"{"type":"invoke","process":1,"f":"txn","value":[["w","b",2],["w","c",3]],"time":3}"#,
            r#"{"type":"ok","process":1,"f":"txn","value":[["w","b",2],["w","c",3]],"time":4}"#,
            r#"{"type":"invoke","process":0,"f":"txn","value":[["r","a",null],["r","c",null]],"time":5}"#,
            r#"{"type":"ok","process":0,"f":"txn","value":[["r","a",1],["r","c",C]],"time":6}"#,
            r#"{"type":"invoke","process":2,"f":"txn","value":[["w","a",7]],"time":7}"#,
            r#"{"type":"info","process":2,"f":"txn","value":[["w","a",7]],"time":8}"#,
        ];
        for (c, want) in [("3", Validity::Valid), ("null", Validity::Invalid)] {
            let text = lines.join("\n").replace('C', c) + "\n";
            for model in [ModelKind::Register, ModelKind::CasRegister] {
                let (s, h) = both(&text, model);
                assert_eq!(s, h, "c read {c}, {model}");
                assert_eq!(s.valid, want, "c read {c}, {model}");
                let keys: Vec<&str> = s.keys.iter().map(|k| k.key.as_str()).collect();
                assert_eq!(keys, ["a", "b", "c"]);
            }
        }
        // A txn whose completion does not repeat its micro-ops is refused, naming the line.
        let bad = lines[..4]
            .join("\n")
            .replace(r#"["w","c",3]],"time":4"#, r#"["w","d",3]],"time":4"#);
        let source = Source::from_reader("h", std::io::Cursor::new(bad.into_bytes()));
        let opts = CheckOptions::default();
        let err = check_source_bounded(source, ModelKind::Register, &opts, 1 << 20).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("h:line 4 (event 3): field `value`"),
            "{err}"
        );
    }

    #[test]
    fn a_cas_register_streams_keyless_ops_into_one_key() {
        let text = "{\"type\":\"invoke\",\"process\":0,\"f\":\"write\",\"value\":1,\"time\":1}\n\
                    {\"type\":\"ok\",\"process\":0,\"f\":\"write\",\"value\":1,\"time\":2}\n\
                    {\"type\":\"invoke\",\"process\":1,\"f\":\"cas\",\"value\":[1,2],\"time\":3}\n\
                    {\"type\":\"ok\",\"process\":1,\"f\":\"cas\",\"value\":[1,2],\"time\":4}\n\
                    {\"type\":\"invoke\",\"process\":0,\"f\":\"read\",\"value\":null,\"time\":5}\n\
                    {\"type\":\"ok\",\"process\":0,\"f\":\"read\",\"value\":1,\"time\":6}\n";
        let (s, h) = both(text, ModelKind::CasRegister);
        assert_eq!(s, h);
        assert_eq!(
            s.valid,
            Validity::Invalid,
            "the read of 1 after the cas to 2"
        );
    }

    /// A list-append history of `ops` ops over `keys` keys, with one read changed by `corrupt`.
    fn list_history(keys: u32, ops: u64, seed: u64, corrupt: impl Fn(&mut Vec<i64>)) -> String {
        let cfg = GenConfig {
            model: ModelKind::ListAppend,
            keys,
            clients: 5,
            ops,
            info_fraction: 0.05,
            seed,
        };
        let (text, _) = history_text(&cfg);
        let mut events: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let victim = events
            .iter()
            .rposition(|e| {
                e["type"] == "ok"
                    && e["f"] == "read"
                    && e["value"]
                        .as_array()
                        .is_some_and(|l| l.len() > 2 && l.contains(&3.into()))
            })
            .expect("a read of a list with 3 in it");
        let mut list = parse_ints(&events[victim]["value"]).unwrap();
        corrupt(&mut list);
        events[victim]["value"] = Value::from(list);
        let mut out = String::new();
        for e in events {
            out.push_str(&e.to_string());
            out.push('\n');
        }
        out
    }

    #[test]
    fn list_append_streaming_agrees_with_the_history_path() {
        type Corrupt = fn(&mut Vec<i64>);
        let cases: [(&str, Corrupt); 4] = [
            ("unchanged", |_| {}),
            ("element dropped", |l| l.retain(|&v| v != 3)),
            ("order swapped", |l| {
                let i = l.iter().position(|&v| v == 3).unwrap();
                let j = if i + 1 < l.len() { i + 1 } else { 0 };
                l.swap(i, j);
            }),
            ("list cut to a stale prefix", |l| l.truncate(1)),
        ];
        for (what, corrupt) in cases {
            for seed in 1..=4 {
                let text = list_history(3, 300, seed, corrupt);
                let (s, h) = both(&text, ModelKind::ListAppend);
                assert_eq!(s, h, "{what}, seed {seed}");
                let expected = if what == "unchanged" {
                    Validity::Valid
                } else {
                    Validity::Invalid
                };
                assert_eq!(s.valid, expected, "{what}, seed {seed}: {s}");
            }
        }
    }

    #[test]
    fn list_append_reads_off_the_reference_and_keyless_ops() {
        let text = "\
{\"type\":\"invoke\",\"process\":0,\"f\":\"append\",\"value\":1,\"time\":10}
{\"type\":\"ok\",\"process\":0,\"f\":\"append\",\"value\":1,\"time\":20}
{\"type\":\"invoke\",\"process\":0,\"f\":\"append\",\"key\":\"\",\"value\":2,\"time\":30}
{\"type\":\"ok\",\"process\":0,\"f\":\"append\",\"key\":\"\",\"value\":2,\"time\":40}
{\"type\":\"invoke\",\"process\":1,\"f\":\"read\",\"value\":null,\"time\":50}
{\"type\":\"ok\",\"process\":1,\"f\":\"read\",\"value\":[1,2],\"time\":60}
{\"type\":\"invoke\",\"process\":1,\"f\":\"read\",\"value\":null,\"time\":70}
{\"type\":\"ok\",\"process\":1,\"f\":\"read\",\"value\":[2,1],\"time\":80}
";
        let (s, h) = both(text, ModelKind::ListAppend);
        assert_eq!(s, h);
        assert_eq!(s.valid, Validity::Invalid);
        assert_eq!(s.keys.len(), 1);
    }

    #[test]
    fn a_piped_history_streams_as_the_file_does() {
        let (text, _) = history_text(&GenConfig::register(3, 5, 3000, 9));
        let (file, _) = both(&text, ModelKind::Register);
        let opts = CheckOptions::default();
        for model in [
            ModelKind::Register,
            ModelKind::ListAppend,
            ModelKind::Counter,
        ] {
            let piped = Source::from_reader("<stdin>", std::io::Cursor::new(text.clone()));
            let report = check_source_bounded(piped, model, &opts, HELD_BYTES_MAX);
            if model == ModelKind::Register {
                assert_eq!(report.unwrap(), file);
            } else {
                // Another model reads the same bytes and names the pipe in its error.
                let shown = report.unwrap_err().to_string();
                assert!(shown.starts_with("<stdin>:"), "{shown}");
            }
        }
    }

    #[test]
    fn a_last_line_cut_inside_a_character_is_a_warning_when_streaming() {
        let line = |v: u32| {
            format!(
                r#"{{"type":"invoke","process":{v},"f":"write","key":"é","value":{v},"time":{v}}}"#
            )
        };
        let text = format!("{}\n{}\n{}", line(1), line(2), line(3));
        let at = text.rfind('é').unwrap();
        let check = |bytes: &[u8]| {
            let piped = Source::from_reader("h.jsonl", std::io::Cursor::new(bytes.to_vec()));
            check_source_bounded(
                piped,
                ModelKind::Register,
                &CheckOptions::default(),
                1 << 20,
            )
        };
        for cut in [at + 1, at] {
            let report = check(&text.as_bytes()[..cut]).unwrap();
            assert_eq!(report.warnings.len(), 1, "cut at {cut}");
            assert!(report.warnings[0].starts_with("h.jsonl:3: last line is cut short"));
        }
        let mut bad = text.into_bytes();
        let middle = bad.iter().position(|&c| c == b'\n').unwrap() + 40;
        bad[middle] = 0xff;
        let shown = check(&bad).unwrap_err().to_string();
        assert_eq!(
            shown,
            "h.jsonl:2: not valid UTF-8 (from byte 40 of the line)"
        );
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let dir = std::env::temp_dir();
        let path = dir.join(format!("slotcheck-stream-err-{}.jsonl", std::process::id()));
        let text = "{\"type\":\"invoke\",\"process\":0,\"f\":\"write\",\"key\":\"k\",\"value\":1,\"time\":10}\n\
                    {\"type\":\"ok\",\"process\":0,\"f\":\"write\",\"key\":\"k\",\"value\":1,\"time\":\"x\"}\n";
        std::fs::write(&path, text).unwrap();
        let err = check_file(&path, ModelKind::Register, &CheckOptions::default()).unwrap_err();
        let _ = std::fs::remove_file(&path);
        let shown = err.to_string();
        assert!(shown.contains(":2: field `time`"), "{shown}");
        assert!(shown.contains("slotcheck-stream-err"), "{shown}");
    }

    #[test]
    fn gave_up_is_read_and_checked_when_streaming() {
        let invoke = r#"{"type":"invoke","process":0,"f":"write","key":"k","value":1,"time":10}"#;
        let fail = r#"{"type":"fail","process":0,"f":"write","key":"k","value":1,"time":20,"error":"gave up after 16 hops: ASK 1 b:2","gave_up":{"kind":"ask","reply":"ASK 1 b:2","hops":16}}"#;
        let (s, h) = both(&format!("{invoke}\n{fail}\n"), ModelKind::Register);
        assert_eq!(s, h);
        assert_eq!(s.valid, Validity::Valid);
        let path = std::env::temp_dir().join(format!(
            "slotcheck-stream-gave-up-{}.jsonl",
            std::process::id()
        ));
        for bad in [
            fail.replace(r#""hops":16"#, r#""hops":"x""#),
            fail.replace(r#""type":"fail""#, r#""type":"ok""#),
        ] {
            std::fs::write(&path, format!("{invoke}\n{bad}\n")).unwrap();
            let err = check_file(&path, ModelKind::Register, &CheckOptions::default());
            let shown = err.unwrap_err().to_string();
            assert!(shown.contains(":2: field `gave_up`"), "{shown}");
        }
        let _ = std::fs::remove_file(&path);
    }
}
