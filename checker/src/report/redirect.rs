//! What the redirect-aware analysis (`context`) adds to a report, as plain data: redirect
//! statistics and the fault intervals (its anomalies join the report's one list). The analysis that computes them is in
//! `context`, `redirects` and `protocol`.

use super::counts::{counts_text, RedirectCounts};
use super::coverage::Coverage;
use crate::anomaly::{Anomaly, CauseKind};
use crate::fault::Fault;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// How many redirect anomalies of one class the text rendering shows (JSON has them all).
const SHOWN_PER_CLASS_MAX: usize = 3;
/// What the redirect-aware analysis adds to a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedirectAnalysis {
    /// Hops by slot, phase and outcome.
    pub stats: RedirectStats,
    /// Every fault interval.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// Migrations recorded (classic, atomic, or repairs of slots no migration opened).
    pub migrations: usize,
    /// What the client ops met: migrating slots, hops by kind, batches (see `crate::coverage`).
    pub coverage: Coverage,
    /// Redirect-protocol anomalies found past the listed ones, by cause and class: counted in
    /// the verdict and `causes`, not listed.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub unlisted: std::collections::BTreeMap<CauseKind, std::collections::BTreeMap<String, usize>>,
}

impl fmt::Display for RedirectAnalysis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut verbs: std::collections::BTreeMap<&str, usize> = Default::default();
        for fault in &self.faults {
            *verbs.entry(fault.f.as_str()).or_default() += 1;
        }
        let verbs = counts_text(&verbs);
        writeln!(
            f,
            "migrations: {}; faults and repairs: {verbs}",
            self.migrations
        )?;
        writeln!(f, "{}", self.stats)
    }
}

/// Writes the redirect anomalies of a report's list, at most [`SHOWN_PER_CLASS_MAX`] of each
/// class with the summary lines of their context, then how many more of each class there are.
pub(crate) fn write_listed<'a>(
    f: &mut fmt::Formatter<'_>,
    anomalies: impl Iterator<Item = &'a Anomaly>,
) -> fmt::Result {
    let mut shown: std::collections::BTreeMap<&str, usize> = Default::default();
    for a in anomalies {
        let n = shown.entry(a.class.as_str()).or_default();
        *n += 1;
        if *n > SHOWN_PER_CLASS_MAX {
            continue;
        }
        writeln!(f, "{a}")?;
        if let Some(summary) = a.context.as_ref().and_then(|c| c.get("summary")) {
            for line in summary.as_array().into_iter().flatten() {
                writeln!(f, "  {}", line.as_str().unwrap_or(""))?;
            }
        }
    }
    for (class, n) in shown.iter().filter(|(_, &n)| n > SHOWN_PER_CLASS_MAX) {
        writeln!(
            f,
            "... and {} more {class} listed in results.json",
            n - SHOWN_PER_CLASS_MAX
        )?;
    }
    Ok(())
}

/// Redirect hops by slot, by the slot's migration phase, and how ops that met them ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RedirectStats {
    /// Ops that followed at least one hop.
    pub ops_redirected: u64,
    /// The most hops one op followed.
    pub hops_max: usize,
    /// Hops by slot (the slot the reply named).
    pub by_slot: BTreeMap<u16, RedirectCounts>,
    /// Hops by the migration phase of their slot when the op was invoked.
    pub by_phase: BTreeMap<&'static str, RedirectCounts>,
    /// Ops whose client gave up following redirects (`gave_up`, or for histories without it a
    /// `fail` whose error is a redirect reply), by the kind of the last redirect.
    pub failed_on: RedirectCounts,
    /// Redirect-protocol anomalies by class (listed or not; see [`crate::protocol`]).
    pub violations: BTreeMap<String, u64>,
    /// Paths that bounced while the cluster's view changed, or broke off: no anomaly.
    pub paths: PathCounts,
}

/// Renders as a few lines: totals, then the busiest slots and the phases.
impl fmt::Display for RedirectStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |r: &RedirectCounts| r.to_string();
        let violations = counts_text(&self.violations);
        write!(
            f,
            "redirected ops: {} (at most {} hops); protocol violations: {violations}; \
             bounces that broke no rule: {}, broken-off paths: {}; failed on a redirect: {}",
            self.ops_redirected,
            self.hops_max,
            self.paths.bounces,
            self.paths.breaks,
            c(&self.failed_on)
        )?;
        for (phase, counts) in &self.by_phase {
            write!(f, "\n  during {phase}: {}", c(counts))?;
        }
        let mut busiest: Vec<(&u16, &RedirectCounts)> = self.by_slot.iter().collect();
        busiest.sort_by_key(|(slot, r)| (std::cmp::Reverse(r.total()), **slot));
        for (slot, counts) in busiest.into_iter().take(5) {
            write!(f, "\n  slot {slot}: {}", c(counts))?;
        }
        Ok(())
    }
}

/// Paths that broke no rule but were not straight either.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PathCounts {
    /// Ops whose path came back to a node or bounced off an ASK target and broke no rule: the
    /// cluster's view changed meanwhile, or the bounce resolved with a client that sends ASKING.
    pub bounces: u64,
    /// Ops whose client started again at a node no redirect named (after a timeout, a refresh).
    pub breaks: u64,
}
