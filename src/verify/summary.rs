//! Verify's results as a `redis-cli --cluster check`-style summary, as `verify.json`, and merged
//! into a run's checker report (so `results.json`, the verdict and `report.html` show them).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use checker::{Anomaly, History, Report, Validity};
use serde::Serialize;

use super::topology::Topology;
use super::{CheckLine, Verification};

/// The file verify's results go to in a run directory.
pub const VERIFY_FILE: &str = "verify.json";

/// One node as verify saw it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeSummary {
    /// `ip:port`.
    pub addr: String,
    /// Cluster node id.
    pub id: String,
    /// `master` or `replica`.
    pub role: &'static str,
    /// The master's address, for a replica.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    /// Keys it holds.
    pub keys: u64,
    /// Slots it owns (masters).
    pub slots: usize,
    /// Its replicas (masters).
    pub replicas: usize,
}

/// The verification before its check lines are written.
pub(super) fn build(
    topology: &Topology,
    counts: &[Vec<u64>],
    anomalies: Vec<Anomaly>,
    warnings: Vec<String>,
    deep: bool,
) -> Verification {
    let nodes: Vec<NodeSummary> = topology
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let master = m
                .line
                .master_id
                .as_deref()
                .and_then(|id| topology.by_id(id))
                .map(|j| topology.members[j].addr().to_string());
            NodeSummary {
                addr: m.addr().to_string(),
                id: m.line.id.clone(),
                role: if m.is_replica() { "replica" } else { "master" },
                master: if m.is_replica() { master } else { None },
                keys: counts[i].iter().sum(),
                slots: topology.slots_of(i),
                replicas: super::replicas::pairs(topology)
                    .iter()
                    .filter(|(_, mm)| *mm == i)
                    .count(),
            }
        })
        .collect();
    Verification {
        keys_on_masters: nodes
            .iter()
            .filter(|n| n.role == "master")
            .map(|n| n.keys)
            .sum(),
        slots_covered: topology.reference.iter().filter(|o| o.is_some()).count(),
        replicas_compared: super::replicas::pairs(topology).len(),
        nodes,
        keys_compared_by_value: 0,
        history_keys_checked: 0,
        deep,
        checks: Vec::new(),
        anomalies,
        warnings,
        duration_ms: 0,
    }
}

/// The check lines: one per class, OK or the count found.
pub(super) fn checks(v: &Verification, with_history: bool) -> Vec<CheckLine> {
    let mut by_class: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &v.anomalies {
        *by_class.entry(a.class.as_str()).or_default() += 1;
    }
    let n = |class: &str| by_class.get(class).copied().unwrap_or(0);
    let mut lines = topology_checks(v, &n);
    lines.extend(data_checks(v, &n));
    if with_history {
        lines.push(line(
            n("final-state-mismatch"),
            format!(
                "{} keys of the history hold a value a last write could have left.",
                v.history_keys_checked
            ),
            format!(
                "{} of {} keys of the history hold a value no last write could have left.",
                n("final-state-mismatch"),
                v.history_keys_checked
            ),
        ));
    }
    lines
}

/// A check line: OK with `ok` when `bad` is 0, else failed with `err`.
fn line(bad: usize, ok: String, err: String) -> CheckLine {
    CheckLine {
        ok: bad == 0,
        text: if bad == 0 { ok } else { err },
    }
}

/// The check lines of the cluster's shape: nodes, slot maps, open and uncovered slots (`n`
/// counts the findings of a class).
fn topology_checks(v: &Verification, n: &dyn Fn(&str) -> usize) -> Vec<CheckLine> {
    vec![
        line(
            n("node-unreachable"),
            "Every node listed answered.".into(),
            format!(
                "{} listed nodes did not answer; the others were checked among themselves.",
                n("node-unreachable")
            ),
        ),
        line(
            n("slot-map-disagreement"),
            format!(
                "All {} nodes agree about slots configuration.",
                v.nodes.len()
            ),
            format!(
                "{} nodes disagree about slots configuration.",
                n("slot-map-disagreement")
            ),
        ),
        line(
            n("open-slot"),
            "No open slots.".into(),
            format!("{} open slots.", n("open-slot")),
        ),
        line(
            n("uncovered-slot"),
            format!("All {} slots covered.", crate::harness::SLOT_COUNT),
            format!("Only {} slots covered.", v.slots_covered),
        ),
    ]
}

/// The check lines of the data: keys on the master that owns their slot, replicas like their
/// masters (`n` counts the findings of a class).
fn data_checks(v: &Verification, n: &dyn Fn(&str) -> usize) -> [CheckLine; 2] {
    [
        line(
            n("stranded-key") + n("duplicated-key"),
            format!(
                "All {} keys on masters sit on the master that owns their slot.",
                v.keys_on_masters
            ),
            format!(
                "Keys on a master that does not own their slot: {} slots with invisible (stranded) \
                 keys, {} with duplicated keys.",
                n("stranded-key"),
                n("duplicated-key")
            ),
        ),
        line(
            n("replica-divergence"),
            match (v.replicas_compared, v.deep) {
                (0, _) => "No replicas to compare.".to_string(),
                (n, true) => format!(
                    "{n} replicas match their masters ({} keys compared by value).",
                    v.keys_compared_by_value
                ),
                (n, false) => format!("{n} replicas match their masters (key counts per slot)."),
            },
            format!(
                "{} replicas differ from their masters.",
                n("replica-divergence")
            ),
        ),
    ]
}

/// Prints the summary: a line per node, a line per check, then each finding and warning.
pub fn print(v: &Verification) {
    use crate::term::{error, ok, status, warn};
    status(&format!(
        "Verified {} nodes in {} ms",
        v.nodes.len(),
        v.duration_ms
    ));
    for n in &v.nodes {
        let what = match &n.master {
            Some(m) => format!("replica of {m}"),
            None => format!("{} slots | {} replicas", n.slots, n.replicas),
        };
        eprintln!("{} ({:.8}...) -> {} keys | {what}", n.addr, n.id, n.keys);
    }
    for c in &v.checks {
        if c.ok {
            ok(&c.text)
        } else {
            error(&c.text)
        }
    }
    for a in &v.anomalies {
        error(&format!("{}: {}", a.class, a.explanation));
    }
    for w in &v.warnings {
        warn(w);
    }
}

/// Writes `dir/verify.json`.
pub fn write(dir: &Path, v: &Verification) -> Result<()> {
    let path = dir.join(VERIFY_FILE);
    std::fs::write(&path, serde_json::to_vec_pretty(v)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// The findings of a saved run's `dir/verify.json` (for `slotcheck report`, which checks a run
/// again): none when verify wrote no file.
pub fn read_findings(dir: &Path) -> Result<Vec<Anomaly>> {
    let path = dir.join(VERIFY_FILE);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not verify's JSON", path.display()))?;
    serde_json::from_value(value["anomalies"].clone())
        .with_context(|| format!("{}: field `anomalies`", path.display()))
}

/// Adds verify's `findings` (a [`Verification`]'s anomalies, or [`read_findings`]') to
/// `report`: its anomalies and counts, and an invalid verdict if there is any; with the run's
/// `history`, each finding gets a cause.
pub fn merge(report: &mut Report, findings: &[Anomaly], history: Option<&History>) -> Result<()> {
    if findings.is_empty() {
        // Nothing to attribute: the check already gave every anomaly its cause.
        return Ok(());
    }
    for a in findings {
        *report.anomaly_counts.entry(a.class.clone()).or_default() += 1;
        report.anomalies.push(a.clone());
        report.valid = Validity::Invalid;
    }
    match history {
        Some(h) => checker::attribute_causes(h, report).context("attributing verify's findings")?,
        None => report.tally_causes(),
    }
    Ok(())
}
