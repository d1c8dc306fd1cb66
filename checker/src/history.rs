//! The history format, version 1 (documented in `histories/README.md`): one JSON object per line.
//!
//! Writing uses serde; reading validates field by field so that a bad line is reported with its
//! line number and the name of the field that is wrong, and a final line cut short by a killed
//! run is a warning, not an error.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::{BufRead, Read};
use std::path::Path;

/// The format name written in a history's header line.
pub const FORMAT_NAME: &str = "slotcheck-history";
/// The only format version this crate reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// The longest line a history may hold, newline excluded: a line past it is an error, named by
/// file and line, not a reason to hold gigabytes (a line is held while its JSON is read, so a
/// bound here bounds the reader's memory). Generous: a read of a million-element set is ~8 MB.
pub const LINE_BYTES_MAX: usize = 64 << 20;
/// A line buffer grown past this many bytes (by a long line) is given back after that line.
const LINE_BUFFER_KEPT_BYTES_MAX: usize = 1 << 20;

/// What an event says happened: an invocation or one of the three completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The client is about to send the operation.
    Invoke,
    /// The operation certainly happened.
    Ok,
    /// The operation certainly did not happen.
    Fail,
    /// The operation may or may not have happened, at any time after its invocation.
    Info,
}

/// Who issued an event: a client's logical process, or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    /// A client's logical process; retired after an `info` completion.
    Client(u64),
    /// Fault and migration annotations.
    Nemesis,
}

impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Process::from_json(&v).map_err(serde::de::Error::custom)
    }
}

impl Process {
    fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::Number(n) => n.as_u64().map(Process::Client).ok_or_else(|| {
                format!(
                    "expected a non-negative integer, got {}",
                    crate::echo::Echo(n)
                )
            }),
            Value::String(s) if s == "nemesis" => Ok(Process::Nemesis),
            other => Err(format!(
                "expected an integer or \"nemesis\", got {}",
                crate::echo::Echo(other)
            )),
        }
    }
}

/// The kind of a redirect hop a client followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedirectKind {
    /// `-MOVED slot host:port`: the slot lives elsewhere; the client updates its slot map.
    Moved,
    /// `-ASK slot host:port`: this one key is being imported; send `ASKING` + the command there.
    Ask,
    /// `-TRYAGAIN`: a multi-key op met a half-migrated slot; retry later.
    #[serde(rename = "tryagain")]
    TryAgain,
    /// `-CLUSTERDOWN`: the cluster cannot serve the slot right now; retry later.
    #[serde(rename = "clusterdown")]
    ClusterDown,
    /// Codis sync crossing: `SLOTSMGRTTAGONE` moved the key (and its tag) from the source
    /// (`from`) to the target (`to`) before the command went to the target.
    #[serde(rename = "mgrt-one")]
    MgrtOne,
    /// Codis semi-async crossing: `SLOTSMGRT-EXEC-WRAPPER` answered 0 (the key is not on the
    /// source); the command went to the target.
    #[serde(rename = "wrapper-moved")]
    WrapperMoved,
    /// `SLOTSMGRT-EXEC-WRAPPER` answered 1 (the key is being migrated): wait, ask the source again.
    #[serde(rename = "wrapper-retry")]
    WrapperRetry,
    /// `SLOTSMGRT-EXEC-WRAPPER` answered -1 (an error, e.g. the key's slot is not the migrating
    /// one): the op fails, nothing ran.
    #[serde(rename = "wrapper-error")]
    WrapperError,
}

impl RedirectKind {
    /// Every kind, in a fixed order for tables and counters.
    pub const ALL: [RedirectKind; 8] = [
        RedirectKind::Moved,
        RedirectKind::Ask,
        RedirectKind::TryAgain,
        RedirectKind::ClusterDown,
        RedirectKind::MgrtOne,
        RedirectKind::WrapperMoved,
        RedirectKind::WrapperRetry,
        RedirectKind::WrapperError,
    ];

    /// The name used in histories and reports.
    pub fn name(self) -> &'static str {
        match self {
            RedirectKind::Moved => "moved",
            RedirectKind::Ask => "ask",
            RedirectKind::TryAgain => "tryagain",
            RedirectKind::ClusterDown => "clusterdown",
            RedirectKind::MgrtOne => "mgrt-one",
            RedirectKind::WrapperMoved => "wrapper-moved",
            RedirectKind::WrapperRetry => "wrapper-retry",
            RedirectKind::WrapperError => "wrapper-error",
        }
    }

    /// Whether this hop is a Codis proxy's step (PikiwiDB), not a Redis Cluster redirect.
    pub fn is_codis(self) -> bool {
        matches!(
            self,
            RedirectKind::MgrtOne
                | RedirectKind::WrapperMoved
                | RedirectKind::WrapperRetry
                | RedirectKind::WrapperError
        )
    }
}

/// One hop a client followed before the node that finally answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// Why the client went elsewhere (or waited).
    pub kind: RedirectKind,
    /// The hash slot the reply named (or the key's slot for TRYAGAIN/CLUSTERDOWN, and the
    /// key's Codis slot for the Codis kinds).
    pub slot: u16,
    /// The node that replied with the redirect (for the Codis kinds: the migration's source).
    pub from: String,
    /// The node the client went to next (the same node for TRYAGAIN/CLUSTERDOWN and
    /// `wrapper-retry` retries; the target for `mgrt-one` and `wrapper-moved`; the source again
    /// for `wrapper-error`, after which the op failed).
    pub to: String,
}

/// Most bytes of a redirect reply a [`GaveUp`] keeps ([`GaveUp::new`] cuts a longer one).
pub const GAVE_UP_REPLY_BYTES_MAX: usize = 200;

/// Why a client stopped following redirects (its hop limit, a TTL or retry budget ran out): the
/// op's error, with the last redirect reply it saw, so that give-ups are counted without reading
/// error texts. Only on `fail` and `info` completions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GaveUp {
    /// The kind of the last redirect reply before the client gave up.
    pub kind: RedirectKind,
    /// That reply's text as the server sent it (`MOVED 3999 127.0.0.1:30002`), at most
    /// [`GAVE_UP_REPLY_BYTES_MAX`] bytes; `None` when the client did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// How many hops the client had followed when it gave up.
    pub hops: usize,
}

impl GaveUp {
    /// A give-up after `hops` hops on `reply`, cut to [`GAVE_UP_REPLY_BYTES_MAX`] bytes (on a
    /// character boundary).
    pub fn new(kind: RedirectKind, reply: &str, hops: usize) -> Self {
        let mut cut = reply.len().min(GAVE_UP_REPLY_BYTES_MAX);
        while !reply.is_char_boundary(cut) {
            cut -= 1;
        }
        GaveUp {
            kind,
            reply: Some(reply[..cut].to_string()),
            hops,
        }
    }
}

/// One line of a history: an invocation, a completion, or a nemesis annotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Invocation or completion outcome.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The logical process, or the nemesis.
    pub process: Process,
    /// The operation's name (`read`, `write`, `cas`, `migrate-start`, ...).
    pub f: String,
    /// The key for single-key operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The argument on invoke, the result on `ok`.
    pub value: Value,
    /// Nanoseconds since the run's start, from a monotonic clock.
    pub time: u64,
    /// Position in the history (line order when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// RFC 3339 wall-clock time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall: Option<String>,
    /// The node (`host:port`) that finally answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The key's hash slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u16>,
    /// The hops the client followed, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirects: Vec<Redirect>,
    /// The server's or client's error text on `fail` / `info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// On `fail` / `info`: the client gave up following redirects (see [`GaveUp`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gave_up: Option<GaveUp>,
}

impl Event {
    /// A bare event with the required fields; optional fields start empty.
    pub fn new(kind: EventType, process: Process, f: &str, value: Value, time: u64) -> Self {
        Event {
            kind,
            process,
            f: f.to_string(),
            key: None,
            value,
            time,
            index: None,
            wall: None,
            node: None,
            slot: None,
            redirects: Vec::new(),
            error: None,
            gave_up: None,
        }
    }
}

/// The optional first line: what run produced the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always `slotcheck-history`.
    pub format: String,
    /// Always 1.
    pub version: u64,
    /// Free-form description of the run (workload, server, seed, nodes, start time, ...).
    #[serde(flatten)]
    pub run: Map<String, Value>,
}

impl Header {
    /// A version-1 header carrying the given run description.
    pub fn new(run: Map<String, Value>) -> Self {
        Header {
            format: FORMAT_NAME.to_string(),
            version: FORMAT_VERSION,
            run,
        }
    }

    /// Serializes as the header line (with `"type":"header"` first).
    pub fn to_line(&self) -> String {
        let mut m = Map::new();
        m.insert("type".into(), Value::from("header"));
        m.insert("format".into(), Value::from(self.format.clone()));
        m.insert("version".into(), Value::from(self.version));
        for (k, v) in &self.run {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m).to_string()
    }
}

/// A parsed history: the optional header, the events in order, and warnings met on the way.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The header line, if the history had one.
    pub header: Option<Header>,
    /// Every event, in line order.
    pub events: Vec<Event>,
    /// Non-fatal problems (a cut-off last line), for the user to see.
    pub warnings: Vec<String>,
    /// The 1-based source line of each event, for imported formats whose events do not sit one
    /// per line after the header; empty when that default holds.
    pub lines: Vec<usize>,
}

/// Why a history could not be read; every variant names where.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line is not valid JSON, or not an object.
    #[error("{path}:{line}: not a JSON object: {}", crate::echo::Message(message))]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// A line is not UTF-8 text (a last line cut inside a character is a warning instead).
    #[error("{path}:{line}: not valid UTF-8 (from byte {byte} of the line)")]
    Encoding {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The 1-based byte of the line where the invalid sequence starts.
        byte: usize,
    },
    /// A line is longer than [`LINE_BYTES_MAX`] bytes.
    #[error(
        "{path}:{line}: line is longer than {} MiB, the most a history line may hold",
        LINE_BYTES_MAX >> 20
    )]
    LineTooLong {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
    },
    /// A line is JSON but a field is missing or has the wrong type or value.
    #[error("{path}:{line}: field `{field}`: {}", crate::echo::Message(message))]
    Field {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The offending field's name.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl HistoryError {
    /// The same error at line `line_no` (for a line read alone, as line 1).
    pub fn at_line(self, line_no: usize) -> HistoryError {
        match self {
            HistoryError::Syntax { path, message, .. } => HistoryError::Syntax {
                path,
                line: line_no,
                message,
            },
            HistoryError::Encoding { path, byte, .. } => HistoryError::Encoding {
                path,
                line: line_no,
                byte,
            },
            HistoryError::Field {
                path,
                field,
                message,
                ..
            } => HistoryError::Field {
                path,
                line: line_no,
                field,
                message,
            },
            HistoryError::LineTooLong { path, .. } => HistoryError::LineTooLong {
                path,
                line: line_no,
            },
            io @ HistoryError::Io { .. } => io,
        }
    }
}

impl History {
    /// Reads a history file; see [`History::parse`].
    pub fn read_file(path: &Path) -> Result<History, HistoryError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| HistoryError::Io {
            path: name.clone(),
            source,
        })?;
        History::parse(std::io::BufReader::new(file), &name)
    }

    /// Reads a history already opened once (a pipe or standard input too); see [`History::parse`].
    pub fn read(source: crate::source::Source) -> Result<History, HistoryError> {
        let name = source.name().to_string();
        History::parse(source.into_reader(), &name)
    }

    /// Parses JSON Lines; `name` is used in errors. A last line that is not valid JSON and has no
    /// trailing newline (a killed writer) is skipped with a warning.
    pub fn parse<R: BufRead>(mut reader: R, name: &str) -> Result<History, HistoryError> {
        let mut history = History::default();
        let mut buf = Vec::new();
        let mut line_no = 0usize;
        loop {
            if buf.capacity() > LINE_BUFFER_KEPT_BYTES_MAX {
                buf = Vec::new();
            }
            buf.clear();
            // One byte past the bound (a newline there still ends a line of the most bytes).
            let n = (&mut reader)
                .take(LINE_BYTES_MAX as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|source| HistoryError::Io {
                    path: name.to_string(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let complete = buf.ends_with(b"\n");
            if !complete && buf.len() > LINE_BYTES_MAX {
                return Err(HistoryError::LineTooLong {
                    path: name.to_string(),
                    line: line_no,
                });
            }
            let text = match std::str::from_utf8(&buf) {
                Ok(text) => text.trim(),
                // A killed writer can stop inside a multi-byte character.
                Err(e) if !complete && e.error_len().is_none() => {
                    history.warnings.push(format!(
                        "{name}:{line_no}: last line is cut short (inside a UTF-8 character); \
                         skipped"
                    ));
                    break;
                }
                Err(e) => {
                    return Err(HistoryError::Encoding {
                        path: name.to_string(),
                        line: line_no,
                        byte: e.valid_up_to() + 1,
                    })
                }
            };
            if text.is_empty() {
                continue;
            }
            let value: Value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(e) if !complete => {
                    history.warnings.push(format!(
                        "{name}:{line_no}: last line is cut short ({e}); skipped"
                    ));
                    break;
                }
                Err(e) => {
                    return Err(HistoryError::Syntax {
                        path: name.to_string(),
                        line: line_no,
                        message: e.to_string(),
                    })
                }
            };
            let fail = |field: &str, message: String| HistoryError::Field {
                path: name.to_string(),
                line: line_no,
                field: field.to_string(),
                message,
            };
            let Value::Object(obj) = value else {
                return Err(HistoryError::Syntax {
                    path: name.to_string(),
                    line: line_no,
                    message: "expected an object".into(),
                });
            };
            if obj.get("type").and_then(Value::as_str) == Some("header") {
                if !history.events.is_empty() || history.header.is_some() {
                    return Err(fail(
                        "type",
                        "a header is allowed only on the first line".into(),
                    ));
                }
                history.header = Some(parse_header(obj).map_err(|(f, m)| fail(f, m))?);
                continue;
            }
            let event = parse_event(obj).map_err(|(f, m)| fail(f, m))?;
            history.events.push(event);
        }
        Ok(history)
    }
}

type FieldError = (&'static str, String);

fn parse_header(mut obj: Map<String, Value>) -> Result<Header, FieldError> {
    obj.remove("type");
    let format = match obj.remove("format") {
        Some(Value::String(s)) if s == FORMAT_NAME => s,
        Some(other) => {
            return Err((
                "format",
                format!(
                    "expected \"{FORMAT_NAME}\", got {}",
                    crate::echo::Echo(other)
                ),
            ))
        }
        None => return Err(("format", "missing".into())),
    };
    let version = match obj.remove("version").as_ref().and_then(Value::as_u64) {
        Some(FORMAT_VERSION) => FORMAT_VERSION,
        Some(v) => return Err(("version", format!("version {v} is not supported (only 1)"))),
        None => return Err(("version", "missing or not an integer".into())),
    };
    Ok(Header {
        format,
        version,
        run: obj,
    })
}

fn parse_event(mut obj: Map<String, Value>) -> Result<Event, FieldError> {
    let kind = match obj.get("type").and_then(Value::as_str) {
        Some("invoke") => EventType::Invoke,
        Some("ok") => EventType::Ok,
        Some("fail") => EventType::Fail,
        Some("info") => EventType::Info,
        Some(other) => {
            return Err((
                "type",
                format!(
                    "expected invoke, ok, fail, info or header, got \"{}\"",
                    crate::echo::Echo(other)
                ),
            ))
        }
        None => return Err(("type", "missing or not a string".into())),
    };
    let process = Process::from_json(obj.get("process").ok_or(("process", "missing".into()))?)
        .map_err(|m| ("process", m))?;
    let f = match obj.remove("f") {
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err((
                "f",
                format!("expected a string, got {}", crate::echo::Echo(other)),
            ))
        }
        None => return Err(("f", "missing".into())),
    };
    let key = match obj.remove("key") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            return Err((
                "key",
                format!("expected a string, got {}", crate::echo::Echo(other)),
            ))
        }
    };
    let value = obj.remove("value").ok_or(("value", "missing".into()))?;
    let time = match obj.get("time") {
        Some(v) => v.as_u64().ok_or((
            "time",
            format!(
                "expected non-negative integer nanoseconds, got {}",
                crate::echo::Echo(v)
            ),
        ))?,
        None => return Err(("time", "missing".into())),
    };
    let index = opt_u64(&obj, "index")?;
    let wall = opt_str(&mut obj, "wall")?;
    let node = opt_str(&mut obj, "node")?;
    let slot = match opt_u64(&obj, "slot")? {
        Some(s) if s < 16384 => Some(s as u16),
        Some(s) => return Err(("slot", format!("{s} is not a slot (0..16383)"))),
        None => None,
    };
    let redirects = match obj.remove("redirects") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v).map_err(|e| ("redirects", e.to_string()))?,
    };
    let error = opt_str(&mut obj, "error")?;
    let gave_up = match obj.remove("gave_up") {
        None | Some(Value::Null) => None,
        Some(_) if !matches!(kind, EventType::Fail | EventType::Info) => {
            return Err(("gave_up", "only a fail or info completion gives up".into()))
        }
        Some(v) => Some(serde_json::from_value(v).map_err(|e| ("gave_up", e.to_string()))?),
    };
    Ok(Event {
        kind,
        process,
        f,
        key,
        value,
        time,
        index,
        wall,
        node,
        slot,
        redirects,
        error,
        gave_up,
    })
}

fn opt_u64(obj: &Map<String, Value>, field: &'static str) -> Result<Option<u64>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or((
            field,
            format!(
                "expected a non-negative integer, got {}",
                crate::echo::Echo(v)
            ),
        )),
    }
}

fn opt_str(
    obj: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, FieldError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err((
            field,
            format!("expected a string, got {}", crate::echo::Echo(v)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<History, HistoryError> {
        History::parse(text.as_bytes(), "h.jsonl")
    }

    #[test]
    fn round_trips_an_event() {
        let mut e = Event::new(
            EventType::Ok,
            Process::Client(3),
            "read",
            Value::from(7),
            42,
        );
        e.key = Some("k1".into());
        e.redirects.push(Redirect {
            kind: RedirectKind::Ask,
            slot: 9,
            from: "127.0.0.1:7000".into(),
            to: "127.0.0.1:7001".into(),
        });
        e.redirects.push(Redirect {
            kind: RedirectKind::WrapperRetry,
            slot: 9,
            from: "127.0.0.1:7001".into(),
            to: "127.0.0.1:7001".into(),
        });
        let line = serde_json::to_string(&e).unwrap();
        assert!(line.contains(r#""kind":"ask""#), "{line}");
        assert!(line.contains(r#""kind":"wrapper-retry""#), "{line}");
        let h = parse(&(line + "\n")).unwrap();
        assert_eq!(h.events, vec![e]);
    }

    #[test]
    fn gave_up_round_trips_and_is_checked() {
        let line = r#"{"type":"fail","process":2,"f":"write","key":"k","value":3,"time":9,"error":"Too many Cluster redirections?","gave_up":{"kind":"ask","reply":"ASK 12 127.0.0.1:30002","hops":16}}"#;
        let h = parse(&format!("{line}\n")).unwrap();
        let want = GaveUp::new(RedirectKind::Ask, "ASK 12 127.0.0.1:30002", 16);
        assert_eq!(h.events[0].gave_up, Some(want.clone()));
        let back = serde_json::to_string(&h.events[0]).unwrap();
        assert_eq!(parse(&back).unwrap().events[0].gave_up, Some(want));
        let no_reply = line.replace(r#""reply":"ASK 12 127.0.0.1:30002","#, "");
        assert_eq!(
            parse(&no_reply).unwrap().events[0]
                .gave_up
                .as_ref()
                .unwrap()
                .reply,
            None
        );
        let bad = [
            (
                line.replace(r#""kind":"ask""#, r#""kind":"bounce""#),
                "unknown variant `bounce`",
            ),
            (
                line.replace(r#""hops":16"#, r#""hops":-1"#),
                "invalid value",
            ),
            (line.replace(r#","hops":16"#, ""), "missing field `hops`"),
            (
                line.replace(r#""gave_up":{"#, r#""gave_up":5,"x":{"#),
                "invalid type",
            ),
            (
                line.replace(r#""type":"fail""#, r#""type":"ok""#),
                "only a fail or info",
            ),
        ];
        for (text, message) in bad {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.starts_with("h.jsonl:1: field `gave_up`: "), "{err}");
            assert!(err.contains(message), "{err}");
        }
    }

    #[test]
    fn gave_up_cuts_the_reply() {
        let long = format!("MOVED 1 {}", "é".repeat(150));
        let cut = GaveUp::new(RedirectKind::Moved, &long, 3).reply.unwrap();
        assert!(cut.len() <= GAVE_UP_REPLY_BYTES_MAX && cut.len() >= GAVE_UP_REPLY_BYTES_MAX - 1);
        assert!(long.starts_with(&cut));
    }

    #[test]
    fn names_line_and_field() {
        let text = concat!(
            r#"{"type":"header","format":"slotcheck-history","version":1,"seed":5}"#,
            "\n",
            r#"{"type":"invoke","process":0,"f":"read","key":"a","value":null,"time":1}"#,
            "\n",
            r#"{"type":"ok","process":0,"f":"read","key":"a","value":null,"time":"x"}"#,
            "\n"
        );
        let err = parse(text).unwrap_err().to_string();
        assert_eq!(
            err,
            "h.jsonl:3: field `time`: expected non-negative integer nanoseconds, got \"x\""
        );
    }

    #[test]
    fn cut_last_line_is_a_warning() {
        let text = concat!(
            r#"{"type":"invoke","process":"nemesis","f":"kill","value":{},"time":1}"#,
            "\n",
            r#"{"type":"invoke","process":0,"f":"re"#
        );
        let h = parse(text).unwrap();
        assert_eq!(h.events.len(), 1);
        assert_eq!(h.events[0].process, Process::Nemesis);
        assert_eq!(h.warnings.len(), 1);
    }

    #[test]
    fn a_last_line_cut_inside_a_character_is_a_warning() {
        let first = r#"{"type":"invoke","process":0,"f":"write","key":"é","value":1,"time":1}"#;
        let text = format!("{first}\n{first}");
        let at = text.rfind('é').unwrap();
        // Cut one byte into the two-byte `é`, and one byte before it.
        for cut in [at + 1, at] {
            let h = History::parse(&text.as_bytes()[..cut], "h.jsonl").unwrap();
            assert_eq!(h.events.len(), 1, "cut at {cut}");
            assert_eq!(h.warnings.len(), 1, "cut at {cut}");
            assert!(h.warnings[0].starts_with("h.jsonl:2: last line is cut short"));
        }
        // Not the last line, or not a cut: an error naming the file and line.
        let mut bad = text.as_bytes()[..at + 1].to_vec();
        bad.extend_from_slice(b"\"}\n");
        bad.extend_from_slice(first.as_bytes());
        let err = History::parse(&bad[..], "h.jsonl").unwrap_err().to_string();
        assert!(err.starts_with("h.jsonl:2: not valid UTF-8"), "{err}");
        let mut bad = first.as_bytes().to_vec();
        bad[40] = 0xff;
        let err = History::parse(&bad[..], "h.jsonl").unwrap_err().to_string();
        assert_eq!(err, "h.jsonl:1: not valid UTF-8 (from byte 41 of the line)");
    }

    #[test]
    fn a_line_past_the_bound_is_an_error_naming_it() {
        let ok = r#"{"type":"invoke","process":0,"f":"write","key":"k","value":1,"time":1}"#;
        let pad = LINE_BYTES_MAX - ok.len();
        let at_most = format!("{ok}{}\n", " ".repeat(pad));
        assert!(parse(&format!("{ok}\n{at_most}{ok}")).is_ok());
        let past = format!("{ok}\n{ok}{}\n{ok}\n", " ".repeat(pad + 1));
        let err = parse(&past).unwrap_err().to_string();
        assert_eq!(
            err,
            "h.jsonl:2: line is longer than 64 MiB, the most a history line may hold"
        );
    }

    #[test]
    fn cut_line_in_the_middle_is_an_error() {
        let text = "{\"type\":\"invoke\"\n{}\n";
        assert!(matches!(
            parse(text),
            Err(HistoryError::Syntax { line: 1, .. })
        ));
    }

    #[test]
    fn unknown_fields_are_ignored_and_bad_process_named() {
        let ok = r#"{"type":"info","process":1,"f":"write","key":"a","value":1,"time":5,"zz":1}"#;
        assert!(parse(ok).is_ok());
        let bad = r#"{"type":"info","process":-1,"f":"write","key":"a","value":1,"time":5}"#;
        let err = parse(bad).unwrap_err();
        assert!(matches!(err, HistoryError::Field { ref field, .. } if field == "process"));
    }

    #[test]
    fn redirect_kind_names_are_their_serialized_names() {
        for kind in RedirectKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, Value::from(kind.name()), "{kind:?}");
            let back: RedirectKind = serde_json::from_value(json).unwrap();
            assert_eq!(back, kind);
        }
        let codis: Vec<&str> = RedirectKind::ALL
            .iter()
            .filter(|k| k.is_codis())
            .map(|k| k.name())
            .collect();
        assert_eq!(
            codis,
            [
                "mgrt-one",
                "wrapper-moved",
                "wrapper-retry",
                "wrapper-error"
            ]
        );
    }
}
