//! An anomaly: one violation found by graph or list analysis (Elle's `:anomalies`), as data.
//!
//! Classes use the literature's names, as Elle spells them (`G0`, `G1a`, `G1b`, `G1c`, `G-single-item`, `G2-item`,
//! `incompatible-order`, `duplicate-elements`, `garbage-read`, `lost-write`, ...). Each anomaly
//! names the keys and the ops (events) it involves, a prose `explanation`, and structured `data`
//! (the cycle's steps, the reads that disagree, ...). Other analyses (e.g. redirect-aware
//! attribution) may annotate it afterwards through `context`, and give it a [`Cause`] (the rules
//! that choose one are in [`crate::cause`]).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// An op an anomaly involves: where it is in the history (so a reader can find it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AnomalyEvent {
    /// Position of the op's invocation in `History::events`.
    pub event: usize,
    /// 1-based line of that invocation in the file.
    pub line: usize,
}

/// One anomaly: its class, where it is, why it is one (prose and data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// The literature's name of the class (`G1c`, `lost-write`, `incompatible-order`, ...).
    pub class: String,
    /// The keys involved, sorted.
    pub keys: Vec<String>,
    /// The ops involved, in the order the explanation names them.
    pub events: Vec<AnomalyEvent>,
    /// The proof in prose, Elle style ("T1 < T2 because ...: a contradiction!").
    pub explanation: String,
    /// The proof as data (class-specific: cycle steps, reads, elements).
    pub data: serde_json::Value,
    /// Annotations added by later analyses (slot, migration phase, redirects seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    /// What it is attributed to (client, server, migration, a documented loss, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {:?}: {}", self.class, self.keys, self.explanation)?;
        if let Some(cause) = &self.cause {
            write!(f, " [{}]", cause.kind)?;
        }
        Ok(())
    }
}

/// The classes the redirect-aware analysis finds: the redirect-protocol checker's
/// ([`crate::protocol`]), `stale-route` and `redirect-after-apply`. A report counts them in its
/// redirect statistics, not in `anomaly_counts`, and its text lists a few of each.
pub const REDIRECT_CLASSES: [&str; 5] = [
    "ask-without-asking",
    "ask-as-moved",
    "redirect-loop",
    "stale-route",
    "redirect-after-apply",
];

impl Anomaly {
    /// Whether the redirect-aware analysis found it (its class is one of [`REDIRECT_CLASSES`]).
    pub fn is_redirect(&self) -> bool {
        REDIRECT_CLASSES.contains(&self.class.as_str())
    }
}

/// How many anomalies of each class a list holds (for the report's summary).
pub fn counts_by_class(anomalies: &[Anomaly]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for a in anomalies {
        *counts.entry(a.class.clone()).or_insert(0) += 1;
    }
    counts
}

/// What an anomaly is attributed to (see [`crate::cause`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CauseKind {
    /// Nothing recorded accounts for it.
    Unexplained,
    /// A migration of its slot around its ops, with no documented loss.
    Migration,
    /// The servers broke the protocol.
    Server,
    /// The client broke the redirect protocol.
    Client,
    /// The client resent a non-idempotent op.
    ClientResend,
    /// A loss the chosen faults cause by design.
    DocumentedLoss,
}

impl CauseKind {
    /// Every kind, in the order reports list them (unexplained and migration first).
    pub const ALL: [CauseKind; 6] = [
        CauseKind::Unexplained,
        CauseKind::Migration,
        CauseKind::Server,
        CauseKind::Client,
        CauseKind::ClientResend,
        CauseKind::DocumentedLoss,
    ];

    /// The name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            CauseKind::Unexplained => "unexplained",
            CauseKind::Migration => "migration",
            CauseKind::Server => "server",
            CauseKind::Client => "client",
            CauseKind::ClientResend => "client-resend",
            CauseKind::DocumentedLoss => "documented-loss",
        }
    }
}

impl fmt::Display for CauseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An anomaly's cause: its kind, the proof in one sentence, and the line it rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    /// What it is attributed to.
    pub kind: CauseKind,
    /// Why, in one sentence.
    pub why: String,
    /// 1-based line of the fault or migration event the attribution rests on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl Cause {
    /// A cause of `kind` for the reason `why`, resting on no particular line.
    pub fn new(kind: CauseKind, why: impl Into<String>) -> Cause {
        Cause {
            kind,
            why: why.into(),
            line: None,
        }
    }

    /// The same cause, resting on `line`.
    pub fn at(mut self, line: usize) -> Cause {
        self.line = Some(line);
        self
    }
}

/// Renders as `cause documented-loss: a kill ... (line 40)`.
impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cause {}: {}", self.kind, self.why)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}
