//! One line of a history ([`Event`]) and the types of its fields: who, what kind, the redirect
//! hops followed and why a client gave up.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    pub(super) fn from_json(v: &Value) -> Result<Self, String> {
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
    /// The op was sent with others as one request: in a pipeline, a `MULTI`/`EXEC` or a script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Batch>,
}

/// How an op was sent with other commands, so that coverage can count the redirects batches met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Batch {
    /// One of several commands written at once on one connection (`--pipeline K`).
    Pipeline,
    /// A transaction: `MULTI`, its commands, `EXEC`.
    Multi,
    /// A transaction as one Lua script (`EVAL`).
    Lua,
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
            batch: None,
        }
    }
}
