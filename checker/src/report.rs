//! What a check returns: the verdict, per-key results, and counts that help read them.

//!
//! Plain data, near the bottom of the crate: a report's types depend only on the types they hold
//! ([`Anomaly`], [`Cause`], [`Explanation`], [`Validity`], faults, ops), never on the checks and
//! analyses that fill them in.

mod counts;
mod coverage;
mod redirect;

pub use counts::{counts_text, Latencies, LostWriteCounts, OutcomeCounts, RedirectCounts};
pub use coverage::{BatchCoverage, Coverage, TxnCoverage};
pub use redirect::{PathCounts, RedirectAnalysis, RedirectStats};

use crate::anomaly::{Anomaly, Cause, CauseKind};
use crate::explanation::Explanation;
use crate::validity::Validity;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// The verdict for one key (one partition of the history).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyReport {
    /// The key.
    pub key: String,
    /// Its verdict.
    pub valid: Validity,
    /// Ops on this key, of any outcome.
    pub ops: usize,
    /// Ops the search had to place (after dropping those that cannot matter).
    pub ops_searched: usize,
    /// Search steps taken.
    pub steps: u64,
    /// Why the verdict is unknown (which budget ran out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    /// Why the key is invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
    /// Where the explained ops ran: slot, migration phase, faults, hops (see `context`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    /// The anomaly class of an invalid key (`lost-write`, `stale-read`, ...), set by the
    /// redirect-aware analysis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// What an invalid key's anomaly is attributed to, set by the redirect-aware analysis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
}

impl KeyReport {
    /// A valid verdict on `key`: `ops` ops, `searched` of them placed in `steps` steps. A
    /// search's outcome fills in the rest.
    pub(crate) fn valid(key: &str, ops: usize, searched: usize, steps: u64) -> Self {
        KeyReport {
            key: key.to_string(),
            valid: Validity::Valid,
            ops,
            ops_searched: searched,
            steps,
            unknown: None,
            explanation: None,
            context: None,
            class: None,
            cause: None,
        }
    }
}

/// The result of checking a history: overall verdict, per-key verdicts, and context.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Which check produced this report (e.g. `register-linearizable`).
    pub checker: &'static str,
    /// Overall verdict: `Invalid` if any key is, else `Unknown` if any key is, else `Valid`.
    pub valid: Validity,
    /// Per-key verdicts, ordered by key.
    pub keys: Vec<KeyReport>,
    /// Client ops by outcome.
    pub ops: OutcomeCounts,
    /// Client ops by `f`, then by outcome.
    pub ops_by_f: BTreeMap<String, OutcomeCounts>,
    /// Redirect hops over all ops, by kind.
    pub redirects: RedirectCounts,
    /// Nemesis (fault and migration) events in the history.
    pub nemesis_events: usize,
    /// Non-fatal problems met while reading the history.
    pub warnings: Vec<String>,
    /// Every anomaly found, in the order the analyses ran: list, lost-write and dependency-graph
    /// analysis (`elle`, at most `elle::ANOMALIES_KEPT_PER_CLASS_MAX` per class), then the
    /// redirect-aware analysis's (see [`Anomaly::is_redirect`]), then any added afterwards
    /// (`verify`'s findings). Each has its class, cause and explanation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<Anomaly>,
    /// How many anomalies of each class were found (all of them, kept or not), but for the
    /// redirect anomalies, which `redirect_analysis` counts.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub anomaly_counts: BTreeMap<String, usize>,
    /// Acknowledged adds/appends by Jepsen set-full class, when that analysis ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_writes: Option<LostWriteCounts>,
    /// Redirect statistics, faults and migrations, when that analysis ran (`analyze_redirects`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_analysis: Option<RedirectAnalysis>,
    /// Every anomaly and invalid key, by cause (unexplained and migration first), then by class;
    /// written as a list in that order: `[{"cause": ..., "count": N, "classes": {...}}, ...]`.
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        serialize_with = "causes_in_order"
    )]
    pub causes: BTreeMap<CauseKind, BTreeMap<String, usize>>,
}

impl Report {
    /// A valid report with nothing counted yet, for a check to fill in.
    pub(crate) fn empty(
        checker: &'static str,
        nemesis_events: usize,
        warnings: Vec<String>,
    ) -> Self {
        Report {
            checker,
            valid: Validity::Valid,
            keys: Vec::new(),
            ops: OutcomeCounts::default(),
            ops_by_f: BTreeMap::new(),
            redirects: RedirectCounts::default(),
            nemesis_events,
            warnings,
            anomalies: Vec::new(),
            anomaly_counts: BTreeMap::new(),
            lost_writes: None,
            redirect_analysis: None,
            causes: BTreeMap::new(),
        }
    }

    /// The anomaly classes of the report, with how often each occurs: each invalid key by the
    /// class the checker gave it (`non-linearizable` when it gave none), plus every anomaly of
    /// the graph, list, redirect, data and verify analyses; counted in full, past the anomalies
    /// listed, once `causes` is tallied.
    pub fn classes(&self) -> BTreeMap<String, usize> {
        let mut classes: BTreeMap<String, usize> = BTreeMap::new();
        if !self.causes.is_empty() {
            for (class, n) in self.causes.values().flatten() {
                *classes.entry(class.clone()).or_default() += n;
            }
            return classes;
        }
        for key in self.keys.iter().filter(|k| k.valid == Validity::Invalid) {
            let class = key.class.as_deref().unwrap_or("non-linearizable");
            *classes.entry(class.to_string()).or_default() += 1;
        }
        for a in &self.anomalies {
            *classes.entry(a.class.clone()).or_default() += 1;
        }
        classes
    }

    /// Recounts `causes` from the invalid keys and every anomaly, and makes the verdict invalid
    /// if any anomaly was found: every finding counts, whatever its cause.
    pub fn tally_causes(&mut self) {
        let mut causes: BTreeMap<CauseKind, BTreeMap<String, usize>> = BTreeMap::new();
        let mut count = |cause: Option<&Cause>, class: &str| {
            let kind = cause.map_or(CauseKind::Unexplained, |c| c.kind);
            *causes
                .entry(kind)
                .or_default()
                .entry(class.to_string())
                .or_default() += 1;
        };
        for key in self.keys.iter().filter(|k| k.valid == Validity::Invalid) {
            count(
                key.cause.as_ref(),
                key.class.as_deref().unwrap_or("non-linearizable"),
            );
        }
        let mut any = false;
        for a in &self.anomalies {
            count(a.cause.as_ref(), &a.class);
            any = true;
        }
        let unlisted = self.redirect_analysis.iter().flat_map(|r| &r.unlisted);
        for (kind, classes) in unlisted {
            for (class, n) in classes {
                *causes
                    .entry(*kind)
                    .or_default()
                    .entry(class.clone())
                    .or_default() += n;
                any = true;
            }
        }
        if any {
            self.valid = Validity::Invalid;
        }
        self.causes = causes;
    }
}

/// `causes` as a list in report order, so that JSON readers (and JSON maps, which sort their
/// keys) keep unexplained and migration first.
fn causes_in_order<S: serde::Serializer>(
    causes: &BTreeMap<CauseKind, BTreeMap<String, usize>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Group<'a> {
        cause: CauseKind,
        count: usize,
        classes: &'a BTreeMap<String, usize>,
    }
    serializer.collect_seq(causes.iter().map(|(&cause, classes)| Group {
        cause,
        count: classes.values().sum(),
        classes,
    }))
}

/// `unexplained: lost-write 2; client: ask-without-asking 5`, causes in report order.
pub fn causes_line(causes: &BTreeMap<CauseKind, BTreeMap<String, usize>>) -> String {
    let parts: Vec<String> = causes
        .iter()
        .map(|(cause, classes)| format!("{cause}: {}", counts_text(classes)))
        .collect();
    parts.join("; ")
}

impl Report {
    /// The summary's first line: the checker, its verdict, and the keys by verdict (or, for a
    /// whole-history analysis, the anomaly count).
    fn headline(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |v: Validity| self.keys.iter().filter(|k| k.valid == v).count();
        let others = self.anomalies.len();
        if self.keys.is_empty() {
            // A whole-history analysis (Elle's): no verdicts per key to count.
            let found: usize = self.anomaly_counts.values().sum();
            let n = found.max(others);
            let noun = if n == 1 { "anomaly" } else { "anomalies" };
            writeln!(f, "{}: {} ({n} {noun})", self.checker, self.valid)?;
        } else {
            writeln!(
                f,
                "{}: {} ({} keys: {} valid, {} invalid, {} unknown{})",
                self.checker,
                self.valid,
                self.keys.len(),
                count(Validity::Valid),
                count(Validity::Invalid),
                count(Validity::Unknown),
                match others {
                    0 => String::new(),
                    n => format!("; {n} other anomalies"),
                }
            )?;
        }
        Ok(())
    }
}

/// A compact human summary: verdict, counts, then one line per key that is not valid.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.headline(f)?;
        if !self.causes.is_empty() {
            writeln!(f, "anomalies by cause: {}", causes_line(&self.causes))?;
        }
        write!(f, "ops: {}", self.ops)?;
        for (name, counts) in &self.ops_by_f {
            write!(f, "; {name} {counts}")?;
        }
        writeln!(
            f,
            "\nredirects: {}; nemesis events: {}",
            self.redirects, self.nemesis_events
        )?;
        for key in self.keys.iter().filter(|k| k.valid != Validity::Valid) {
            writeln!(
                f,
                "key {:?}: {} ({} ops, {} searched, {} steps)",
                key.key, key.valid, key.ops, key.ops_searched, key.steps
            )?;
            if let Some(why) = &key.unknown {
                writeln!(f, "  {why}")?;
            }
            if let (Some(class), Some(cause)) = (&key.class, &key.cause) {
                writeln!(f, "  {class}, {cause}")?;
            }
            if let Some(explanation) = &key.explanation {
                writeln!(f, "{explanation}")?;
            }
            let summary = key.context.as_ref().and_then(|c| c.get("summary"));
            for line in summary.and_then(|s| s.as_array()).into_iter().flatten() {
                writeln!(f, "  at {}", line.as_str().unwrap_or_default())?;
            }
        }
        if let Some(l) = &self.lost_writes {
            writeln!(
                f,
                "set-full: {} attempted: {} stable ({} stale), {} lost, {} never read; {} info recovered; {} duplicated",
                l.attempts, l.stable, l.stale, l.lost, l.never_read, l.recovered, l.duplicated
            )?;
        }
        if !self.anomaly_counts.is_empty() {
            let counts: Vec<String> = self
                .anomaly_counts
                .iter()
                .map(|(class, n)| format!("{class} {n}"))
                .collect();
            writeln!(f, "anomalies: {}", counts.join(", "))?;
        }
        for anomaly in self.anomalies.iter().filter(|a| !a.is_redirect()) {
            writeln!(f, "{anomaly}")?;
        }
        if let Some(analysis) = &self.redirect_analysis {
            write!(f, "{analysis}")?;
            let listed = self.anomalies.iter().filter(|a| a.is_redirect());
            redirect::write_listed(f, listed)?;
        }
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        Ok(())
    }
}
