//! Carries out a [`Schedule`]: a migration stream and a fault stream run side by side, each
//! action resolved against the cluster as it is when it fires, each fault held and then undone
//! by its inverse; [`heal_all`] restores a healthy, stable cluster at the end.

mod fault;
mod migration;

use super::error::NemesisError;
use super::family::ClusterNemesis;
use super::migrate::strike::repair_settled;
use super::net::Partitioner;
use super::process;
use super::schedule::FaultKind;
use super::Ctx;
use crate::harness::ProcessState;
use fault::fault;
use migration::{make_clean, migration};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the crash watcher looks at the server processes.
const CRASH_POLL_MS: u64 = 250;
/// Deadline for the cluster to settle after the final heal.
const SETTLE_TIMEOUT_MS: u64 = 30_000;

/// What the nemesis did during a run, for the summary and the run log.
#[derive(Debug, Default, Clone)]
pub struct NemesisSummary {
    /// Actions carried out, by kind.
    pub done: BTreeMap<FaultKind, usize>,
    /// Actions skipped because no target fitted at the time (no replica to fail over, ...).
    pub skipped: BTreeMap<FaultKind, usize>,
    /// Actions that failed, with the reason.
    pub failures: Vec<String>,
    /// Keys moved by completed migrations.
    pub keys_moved: usize,
    /// Nodes whose process died without the nemesis killing it (a server crash), with the log
    /// to read; each was restarted.
    pub crashes: Vec<String>,
}

impl NemesisSummary {
    /// Completed actions of all kinds.
    pub fn total_done(&self) -> usize {
        self.done.values().sum()
    }
}

/// Runs `nemesis`'s schedule until it is exhausted or `stop` fires; a fault in force is undone
/// first. Its `failover` decides which `CLUSTER FAILOVER` the `failover` faults send, its
/// `target` where migrations move their slot.
pub async fn run(nemesis: ClusterNemesis, stop: CancellationToken) -> NemesisSummary {
    let ClusterNemesis {
        ctx,
        schedule,
        slots,
        migrate: opts,
        target,
        failover,
        partitioner,
    } = nemesis;
    assert!(!slots.is_empty(), "no slots to migrate");
    let start = Instant::now();
    let killing = Arc::new(Mutex::new(BTreeSet::new()));
    let watcher = {
        let (ctx, stop, killing) = (ctx.clone(), stop.clone(), killing.clone());
        tokio::spawn(async move { watch_crashes(&ctx, &killing, &stop).await })
    };
    let migrations = {
        let (ctx, stop, killing) = (ctx.clone(), stop.clone(), killing.clone());
        let slots = slots.clone();
        tokio::spawn(async move {
            let mut summary = NemesisSummary::default();
            // Whether a failed migration may have left a slot open that no repair closed since.
            let mut dirty = false;
            for p in &schedule.migrations {
                if !wait_until(start, p.at_ms, &stop).await {
                    break;
                }
                if dirty {
                    if let Err(e) = make_clean(&ctx).await {
                        let why = format!("not started, the cluster is not clean: {e}");
                        tally(&mut summary, p.kind, Err(NemesisError::Migration(why)));
                        continue;
                    }
                }
                let result = migration(&ctx, p, (&slots, target), &opts, &killing).await;
                dirty = result.is_err();
                tally(&mut summary, p.kind, result);
                if dirty {
                    // Close what the failed migration left open at once, as an operator would.
                    match make_clean(&ctx).await {
                        Ok(()) => dirty = false,
                        Err(e) => {
                            tracing::warn!(error = %e, "repair after a failed migration failed")
                        }
                    }
                }
            }
            summary
        })
    };
    let mut summary = NemesisSummary::default();
    for p in &schedule.faults {
        if !wait_until(start, p.at_ms, &stop).await {
            break;
        }
        let result = fault(&ctx, p, failover, partitioner.as_deref(), &killing, &stop).await;
        tally(&mut summary, p.kind, result.map(|done| (done, 0)));
    }
    match migrations.await {
        Ok(m) => merge(&mut summary, m),
        Err(e) => summary.failures.push(format!("migration stream: {e}")),
    }
    match watcher.await {
        Ok(crashes) => summary.crashes.extend(crashes),
        Err(e) => summary.failures.push(format!("crash watcher: {e}")),
    }
    summary
}

/// Watches for nodes whose process died on its own while the nemesis did not kill them: a
/// server crash is a finding in itself. Each is recorded (`crash`, with its log) and restarted.
async fn watch_crashes(
    ctx: &Ctx,
    killing: &Mutex<BTreeSet<String>>,
    stop: &CancellationToken,
) -> Vec<String> {
    let mut crashes = Vec::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return crashes,
            _ = tokio::time::sleep(Duration::from_millis(CRASH_POLL_MS)) => {}
        }
        for node in &ctx.cluster.nodes {
            let ours = lock(killing).contains(&node.addr);
            if ours || ctx.cluster.process_state(&node.addr) != Some(ProcessState::Down) {
                continue;
            }
            crashes.push(record_crash(ctx, &node.addr, &node.log).await);
        }
    }
}

/// Records a crashed node and starts it again; returns a line for the summary.
async fn record_crash(ctx: &Ctx, addr: &str, log: &std::path::Path) -> String {
    let line = format!("{addr} crashed (see {})", log.display());
    tracing::error!(node = addr, log = %log.display(), "server crashed");
    ctx.recorder.nemesis(
        "crash",
        json!({"node": addr, "log": log.display().to_string(), "phase": "end"}),
    );
    if let Err(e) = process::restart(ctx, addr).await {
        tracing::error!(node = addr, error = %e, "restart after crash failed");
    }
    line
}

/// Locks the set of nodes being killed, also after a panic elsewhere poisoned it.
fn lock(set: &Mutex<BTreeSet<String>>) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
    set.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sleeps until `at_ms` after `start`; false if `stop` fired first.
async fn wait_until(start: Instant, at_ms: u64, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep_until(start + Duration::from_millis(at_ms)) => true,
    }
}

fn tally(
    summary: &mut NemesisSummary,
    kind: FaultKind,
    result: Result<(bool, usize), NemesisError>,
) {
    match result {
        Ok((true, keys)) => {
            *summary.done.entry(kind).or_default() += 1;
            summary.keys_moved += keys;
        }
        Ok((false, _)) => *summary.skipped.entry(kind).or_default() += 1,
        Err(e) => {
            tracing::warn!(%kind, error = %e, "nemesis action failed");
            summary.failures.push(format!("{kind}: {e}"));
        }
    }
}

fn merge(into: &mut NemesisSummary, from: NemesisSummary) {
    for (k, n) in from.done {
        *into.done.entry(k).or_default() += n;
    }
    for (k, n) in from.skipped {
        *into.skipped.entry(k).or_default() += n;
    }
    into.failures.extend(from.failures);
    into.keys_moved += from.keys_moved;
    into.crashes.extend(from.crashes);
}

/// Undoes every fault that may still be in force (paused or dead nodes, partitions), closes
/// open slots, and waits until the cluster is stable: `cluster_state:ok` everywhere, no open
/// slots, one slot map.
pub async fn heal_all(ctx: &Ctx, partitioner: Option<&Partitioner>) -> Result<(), NemesisError> {
    ctx.begin("heal-all", json!({}));
    let result = heal_all_steps(ctx, partitioner).await;
    let error = result.as_ref().err().map(|e| e.to_string());
    ctx.end("heal-all", json!({}), error.as_deref());
    result
}

async fn heal_all_steps(ctx: &Ctx, partitioner: Option<&Partitioner>) -> Result<(), NemesisError> {
    if let Some(p) = partitioner {
        p.heal(ctx)?;
    }
    for node in &ctx.cluster.nodes {
        match ctx.cluster.process_state(&node.addr) {
            Some(ProcessState::Paused) => process::resume(ctx, &node.addr).await?,
            // Every kill was followed by a restart: a node down now died on its own.
            Some(ProcessState::Down) => {
                let line = record_crash(ctx, &node.addr, &node.log).await;
                crate::term::error(&line);
            }
            _ => {}
        }
    }
    // Nodes that just came back need a moment before every node answers CLUSTER NODES sanely,
    // and a repair step can meet a node still catching up: `repair_settled` retries.
    let report = repair_settled(ctx, SETTLE_TIMEOUT_MS).await?;
    if !report.fixed.is_empty() || !report.stranded.is_empty() {
        tracing::info!(report = ?report, "repair after the run");
    }
    ctx.cluster
        .wait_stable(SETTLE_TIMEOUT_MS)
        .await
        .map_err(NemesisError::from)
}
