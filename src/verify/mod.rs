//! `slotcheck verify`: what the nodes hold, against where it should be and what the history says.
//!
//! Histories catch what clients saw; some damage is only visible in the data. Verify reads every
//! reachable node's view of the cluster and its keys per slot, and reports, as anomalies of their
//! own classes: listed nodes that do not answer (`node-unreachable`; the rest are checked among
//! themselves), nodes that disagree about the slot map (`slot-map-disagreement`), open slots
//! (`open-slot`), slots no one owns (`uncovered-slot`), keys on a master that does not own their
//! slot and that the owner lacks (`stranded-key`) or also has (`duplicated-key`), replicas that
//! differ from their master once caught up (`replica-divergence`), and, given a register history,
//! keys whose value no last write could have left (`final-state-mismatch`). Counts come first
//! (`CLUSTER COUNTKEYSINSLOT`, pipelined, all nodes in parallel); keys and value digests
//! (`DEBUG DIGEST-VALUE`) only where counts differ, or everywhere with `deep`.
//!
//! [`Placement`] is the one interface the run pipeline asks any server family's placement check
//! through: [`ClusterPlacement`] is this verify; PikiwiDB's is in the `pika` module.

mod counts;
mod family;
mod finals;
mod finding;
mod placement;
mod replicas;
mod summary;
mod topology;

use std::time::Instant;

use checker::phase::Timeline;
use checker::{Anomaly, History};
use serde::Serialize;

use crate::harness::{HarnessError, SLOT_COUNT};
pub use family::{ClusterPlacement, Placement};
pub use summary::{merge, print, read_findings, write, NodeSummary, VERIFY_FILE};

/// What verify looks at and how far.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Compare values (digests) of every key on every replica, not only where counts differ.
    pub deep: bool,
    /// Keys named per finding.
    pub sample_max: usize,
    /// Keys fetched per slot at most (a limit on memory for enormous slots).
    pub keys_per_slot_max: u64,
    /// How long to wait for a replica to catch up with its master.
    pub sync_timeout_ms: u64,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            deep: false,
            sample_max: 20,
            keys_per_slot_max: 1_000_000,
            sync_timeout_ms: 10_000,
        }
    }
}

/// Why verify could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No seed answered.
    #[error("no node of {seeds} answered: {why}")]
    NoNode {
        /// The addresses tried.
        seeds: String,
        /// What each said.
        why: String,
    },
    /// A node answered something we cannot read.
    #[error("{addr}: {detail}")]
    Reply {
        /// The node.
        addr: String,
        /// What was wrong.
        detail: String,
    },
    /// A command failed.
    #[error(transparent)]
    Harness(#[from] HarnessError),
    /// The history could not be paired into operations.
    #[error("the history: {0}")]
    History(String),
    /// A comparison task panicked.
    #[error("comparison task: {0}")]
    Task(String),
}

/// What verify found, for the terminal, `verify.json` and `results.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// Every node that answered, masters first.
    pub nodes: Vec<NodeSummary>,
    /// Keys on all masters together.
    pub keys_on_masters: u64,
    /// Slots with an owner.
    pub slots_covered: usize,
    /// Replica/master pairs compared.
    pub replicas_compared: usize,
    /// Keys whose values were compared by digest (replicas and duplicated keys).
    pub keys_compared_by_value: u64,
    /// Keys of the history whose final value was judged.
    pub history_keys_checked: usize,
    /// Whether values were compared everywhere.
    pub deep: bool,
    /// One line per check, `redis-cli --cluster check` style.
    pub checks: Vec<CheckLine>,
    /// The findings, as anomalies.
    pub anomalies: Vec<Anomaly>,
    /// Things verify could not do or could not be sure of.
    pub warnings: Vec<String>,
    /// Wall-clock time, ms.
    pub duration_ms: u64,
}

/// One check and whether it passed.
#[derive(Debug, Clone, Serialize)]
pub struct CheckLine {
    /// Passed.
    pub ok: bool,
    /// What was checked, or what is wrong.
    pub text: String,
}

/// Verifies the cluster reachable from `seeds`; with `history`, also the final values of the keys
/// it touched (register workloads) and each finding's slot history.
pub async fn verify(
    seeds: &[String],
    history: Option<&History>,
    opts: &VerifyOptions,
) -> Result<Verification, VerifyError> {
    let start = Instant::now();
    let progress = crate::term::spinner("verify: reading every node's view of the cluster");
    let topology = topology::discover(seeds).await?;
    let mut warnings: Vec<String> = Vec::new();
    let mut findings = topology::findings(&topology);
    progress.set_message("verify: waiting for replicas to catch up");
    warnings.extend(replicas::wait_synced(&topology, opts).await);
    progress.set_message(format!(
        "verify: counting keys in {SLOT_COUNT} slots on {} nodes",
        topology.members.len()
    ));
    let mut counts = count_all(&topology).await?;
    let misplaced = placement::misplaced(&topology, &counts);
    progress.set_message(format!(
        "verify: inspecting {} misplaced slots",
        misplaced.len()
    ));
    let (placed, w) = placement::inspect(&topology, &misplaced, opts).await?;
    findings.extend(placed);
    warnings.extend(w);
    progress.set_message(if opts.deep {
        "verify: comparing every replica's keys and values with its master"
    } else {
        "verify: comparing replicas with their masters"
    });
    let (mut diverged, mut compared, w) = replicas::compare(&topology, &counts, opts).await?;
    if !diverged.is_empty() {
        // Once more after another catch-up: a write still in flight is not a divergence.
        warnings.extend(replicas::wait_synced(&topology, opts).await);
        counts = count_all(&topology).await?;
        (diverged, compared, _) = replicas::compare(&topology, &counts, opts).await?;
    }
    warnings.extend(w);
    findings.extend(diverged);
    let timeline = history.map(|h| (h, Timeline::new(h)));
    let context = timeline.as_ref().map(|(h, t)| (*h, t));
    let mut anomalies: Vec<Anomaly> = findings
        .into_iter()
        .map(|f| f.into_anomaly(context))
        .collect();
    let mut history_keys_checked = 0;
    if let Some((h, t)) = context {
        if finals::is_register(h) {
            progress.set_message("verify: reading the final value of every key of the history");
            let (found, read) = finals::check(&topology, h).await?;
            history_keys_checked = read;
            anomalies.extend(found.into_iter().map(|a| annotate(a, h, t)));
        } else {
            warnings
                .push("the history is not a register workload's: final values not judged".into());
        }
    }
    progress.finish_and_clear();
    let mut v = summary::build(&topology, &counts, anomalies, warnings, opts.deep);
    v.keys_compared_by_value = compared;
    v.history_keys_checked = history_keys_checked;
    v.checks = summary::checks(&v, history.is_some());
    v.duration_ms = start.elapsed().as_millis() as u64;
    Ok(v)
}

/// Per-slot counts of every member, asked of all in parallel.
async fn count_all(topology: &topology::Topology) -> Result<Vec<Vec<u64>>, VerifyError> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, m) in topology.members.iter().enumerate() {
        let mut admin = m.admin.clone();
        tasks.spawn(async move { (i, counts::per_slot(&mut admin).await) });
    }
    let mut all = vec![Vec::new(); topology.members.len()];
    while let Some(joined) = tasks.join_next().await {
        let (i, c) = joined.map_err(|e| VerifyError::Task(e.to_string()))?;
        all[i] = c?;
    }
    Ok(all)
}

/// A final-state anomaly's context: its key's slot and that slot's migration history.
fn annotate(mut a: Anomaly, history: &History, timeline: &Timeline) -> Anomaly {
    if let Some(key) = a.keys.first() {
        let slot = checker::key_slot(key.as_bytes());
        a.context = Some(finding::slot_context(history, timeline, slot));
    }
    a
}
