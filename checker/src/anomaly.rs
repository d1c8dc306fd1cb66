//! An anomaly: one violation found by graph or list analysis (Elle's `:anomalies`), as data.
//!
//! Classes use the literature's names (`G0`, `G1a`, `G1b`, `G1c`, `G-single`, `G2-item`,
//! `incompatible-order`, `duplicate-elements`, `garbage-read`, `lost-write`, ...). Each anomaly
//! names the keys and the ops (events) it involves, a prose `explanation`, and structured `data`
//! (the cycle's steps, the reads that disagree, ...). Other analyses (e.g. redirect-aware
//! attribution) may annotate it afterwards through `context`.

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
    pub cause: Option<crate::cause::Cause>,
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

/// How many anomalies of each class a list holds (for the report's summary).
pub fn counts_by_class(anomalies: &[Anomaly]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for a in anomalies {
        *counts.entry(a.class.clone()).or_insert(0) += 1;
    }
    counts
}
