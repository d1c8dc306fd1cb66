//! Carries out a [`Schedule`]: a migration stream and a fault stream run side by side, each
//! action resolved against the cluster as it is when it fires, each fault held and then undone
//! by its inverse; [`heal_all`] restores a healthy, stable cluster at the end.

use super::error::NemesisError;
use super::failover::{self, FailoverChoice};
use super::link;
use super::migrate::atomic::{cancel_atomic, migrate_atomic, AtomicOptions};
use super::migrate::interrupt::{migrate_then_abort, migrate_then_finalize_early};
use super::migrate::repair::repair;
use super::migrate::strike::{migrate_then_failover, migrate_then_strike, repair_settled, Strike};
use super::migrate::{migrate_slot, MigrateError, MigrateOptions, Peer};
use super::net::{Partition, Partitioner};
use super::process;
use super::schedule::{FaultKind, Planned, Schedule};
use super::Ctx;
use crate::harness::{NodeLine, ProcessState};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Batches moved before an `abort`: the slot's first batch lands on the target, then stranded.
const ABORT_AFTER_BATCHES: usize = 1;
/// How long the source has to drop its keys after an early finalize before we look.
const FINALIZE_EARLY_WAIT_MS: u64 = 200;
/// `rdb-key-save-delay` (µs per key) while an atomic migration is cancelled, so that the
/// cancel lands while the snapshot is still being sent.
const CANCEL_SAVE_DELAY_US: u64 = 20_000;
/// How long a struck migration's source or target stays down (or paused).
const STRIKE_HOLD_MS: u64 = 1500;
/// How long after `MIGRATESLOTS` the cancel is sent.
const CANCEL_AFTER_MS: u64 = 30;
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

/// Runs the schedule until it is exhausted or `stop` fires; a fault in force is undone first.
/// `failover` decides which `CLUSTER FAILOVER` the `failover` faults send.
pub async fn run(
    ctx: Ctx,
    schedule: Schedule,
    slots: Vec<u16>,
    opts: MigrateOptions,
    failover: FailoverChoice,
    partitioner: Option<Arc<Partitioner>>,
    stop: CancellationToken,
) -> NemesisSummary {
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
            for p in &schedule.migrations {
                if !wait_until(start, p.at_ms, &stop).await {
                    break;
                }
                let result = migration(&ctx, p, &slots, &opts, &killing).await;
                let failed = result.is_err();
                tally(&mut summary, p.kind, result);
                if failed {
                    // Close what the failed migration left open, as an operator would.
                    repair_now(&ctx).await;
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

fn peer(line: &NodeLine) -> Peer {
    Peer {
        addr: line.addr.clone(),
        id: line.id.clone(),
    }
}

/// One slot move of the migration stream; `Ok((false, 0))` when no move fits right now.
async fn migration(
    ctx: &Ctx,
    p: &Planned,
    slots: &[u16],
    opts: &MigrateOptions,
    killing: &Mutex<BTreeSet<String>>,
) -> Result<(bool, usize), NemesisError> {
    let mut masters = failover::masters_now(ctx).await?;
    masters.sort_by(|a, b| a.addr.cmp(&b.addr));
    let slot = slots[p.target as usize % slots.len()];
    let Some(source) = masters.iter().find(|m| m.owns(slot)).map(peer) else {
        return Ok((false, 0));
    };
    let others: Vec<Peer> = masters
        .iter()
        .filter(|m| m.id != source.id)
        .map(peer)
        .collect();
    if others.is_empty() {
        return Ok((false, 0));
    }
    let target = others[p.variant as usize % others.len()].clone();
    let rest: Vec<Peer> = others
        .iter()
        .filter(|m| m.id != target.id)
        .cloned()
        .collect();
    let rec = &ctx.recorder;
    let err = |e: MigrateError| NemesisError::Migration(e.to_string());
    let began = Instant::now();
    let (keys, outcome) = match p.kind {
        FaultKind::Migrate => {
            let m = migrate_slot(rec, slot, &source, &target, &rest, opts)
                .await
                .map_err(err)?;
            (m.keys_moved, "completed".to_string())
        }
        FaultKind::Atomic => {
            let m = migrate_atomic(rec, slot, slot, &source, &target, &AtomicOptions::default())
                .await
                .map_err(err)?;
            (0, format!("atomic job ended {}", m.state))
        }
        FaultKind::Abort => {
            let r = migrate_then_abort(rec, slot, &source, &target, opts, ABORT_AFTER_BATCHES)
                .await
                .map_err(err)?;
            let outcome = format!(
                "aborted: {} keys stranded on the target ({:?}), {} left on the source",
                r.stranded, r.stranded_keys, r.left
            );
            (r.moved.len(), outcome)
        }
        FaultKind::FinalizeEarly => {
            let r = migrate_then_finalize_early(
                rec,
                slot,
                &source,
                &target,
                &rest,
                opts,
                0,
                FINALIZE_EARLY_WAIT_MS,
            )
            .await
            .map_err(err)?;
            // Redis 7.0 leaves the old owner `MIGRATING` a slot it no longer owns: close it.
            let masters: Vec<Peer> = masters.iter().map(peer).collect();
            repair(rec, &masters).await.map_err(err)?;
            let outcome = format!(
                "finalized early: {} keys left behind and lost ({:?})",
                r.lost.len(),
                r.lost
            );
            (r.moved.len(), outcome)
        }
        FaultKind::Cancel => {
            let state = cancel_midway(ctx, slot, &source, &target).await?;
            (0, state)
        }
        FaultKind::Strike | FaultKind::StrikeFailover => {
            let strike = Strike {
                slot,
                source: &source,
                target: &target,
                opts,
                variant: p.variant,
                hold_ms: STRIKE_HOLD_MS,
                settle_ms: SETTLE_TIMEOUT_MS,
            };
            let r = if p.kind == FaultKind::Strike {
                migrate_then_strike(ctx, &strike, killing).await?
            } else {
                migrate_then_failover(ctx, &strike).await?
            };
            let fixed: Vec<String> = r
                .repair
                .fixed
                .iter()
                .map(|f| format!("slot {} {} to {}", f.slot, f.action, f.owner))
                .collect();
            let outcome = format!(
                "{} the {} {} mid-migration; repair moved {} keys ({}), {} stranded",
                r.how,
                r.role,
                r.node,
                r.repair.keys_moved,
                if fixed.is_empty() {
                    "nothing open".to_string()
                } else {
                    fixed.join(", ")
                },
                r.repair.stranded.iter().map(|s| s.keys).sum::<usize>()
            );
            (r.moved + r.repair.keys_moved, outcome)
        }
        other => unreachable!("{other} is not a migration"),
    };
    tracing::info!(
        kind = %p.kind,
        slot,
        source = %source.addr,
        target = %target.addr,
        keys_moved = keys,
        duration_ms = began.elapsed().as_millis() as u64,
        "migration: {outcome}"
    );
    Ok((true, keys))
}

/// Repairs open slots once, best effort: a failure here is logged, the next action goes on.
async fn repair_now(ctx: &Ctx) {
    let masters = match failover::masters_now(ctx).await {
        Ok(m) => m.iter().map(peer).collect::<Vec<Peer>>(),
        Err(e) => return tracing::warn!(error = %e, "no view of the masters for a repair"),
    };
    if let Err(e) = repair(&ctx.recorder, &masters).await {
        tracing::warn!(error = %e, "repair after a failed migration failed");
    }
}

/// Starts an atomic migration with a slowed snapshot and cancels it while it runs.
/// Returns what happened, for the run log.
async fn cancel_midway(
    ctx: &Ctx,
    slot: u16,
    source: &Peer,
    target: &Peer,
) -> Result<String, NemesisError> {
    let mut admin = crate::harness::Admin::connect(&source.addr).await?;
    let delay = CANCEL_SAVE_DELAY_US.to_string();
    admin
        .run::<()>(&["CONFIG", "SET", "rdb-key-save-delay", &delay])
        .await?;
    let job = {
        let (rec, source, target) = (ctx.recorder.clone(), source.clone(), target.clone());
        tokio::spawn(async move {
            migrate_atomic(
                &rec,
                slot,
                slot,
                &source,
                &target,
                &AtomicOptions::default(),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(CANCEL_AFTER_MS)).await;
    let cancelled = cancel_atomic(&ctx.recorder, source).await;
    let finished = job.await;
    admin
        .run::<()>(&["CONFIG", "SET", "rdb-key-save-delay", "0"])
        .await?;
    let cancelled = cancelled.map_err(|e| NemesisError::Migration(e.to_string()))?;
    let state = match finished {
        Ok(Ok(m)) => m.state,
        Ok(Err(e)) => return Err(NemesisError::Migration(e.to_string())),
        Err(e) => return Err(NemesisError::Migration(e.to_string())),
    };
    Ok(if cancelled {
        format!("cancel sent while running; job ended {state}")
    } else {
        format!("nothing to cancel: job had ended {state}")
    })
}

/// One fault of the fault stream, held for `p.hold_ms` (cut short by `stop`) and undone.
/// `Ok(false)` when no target fits right now.
async fn fault(
    ctx: &Ctx,
    p: &Planned,
    choice: FailoverChoice,
    partitioner: Option<&Partitioner>,
    killing: &Mutex<BTreeSet<String>>,
    stop: &CancellationToken,
) -> Result<bool, NemesisError> {
    let mut nodes: Vec<String> = ctx.cluster.nodes.iter().map(|n| n.addr.clone()).collect();
    nodes.sort();
    let node = nodes[p.target as usize % nodes.len()].clone();
    let mut target = node.clone();
    let began = Instant::now();
    let hold = || async {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(p.hold_ms)) => {}
        }
    };
    match p.kind {
        FaultKind::Kill => {
            lock(killing).insert(node.clone());
            // Odd variants stop the node gracefully (SIGTERM, AOF flushed) instead.
            let graceful = p.variant % 2 == 1;
            let killed = if graceful {
                target = format!("{node} (graceful)");
                process::shutdown(ctx, &node).await
            } else {
                process::kill(ctx, &node).await
            };
            if killed.is_ok() {
                hold().await;
            }
            let restarted = process::restart(ctx, &node).await;
            lock(killing).remove(&node);
            killed?;
            restarted?;
        }
        FaultKind::Pause => {
            process::pause(ctx, &node).await?;
            hold().await;
            process::resume(ctx, &node).await?;
        }
        FaultKind::Failover => {
            let mut replicas: Vec<NodeLine> = failover::view(ctx)
                .await?
                .into_iter()
                .filter(|l| l.is_replica() && !l.troubled())
                .collect();
            if replicas.is_empty() {
                return Ok(false);
            }
            replicas.sort_by(|a, b| a.addr.cmp(&b.addr));
            let replica = &replicas[p.target as usize % replicas.len()];
            let mode = choice.mode(p.variant);
            failover::failover(ctx, &replica.addr, mode).await?;
            target = format!("{} ({})", replica.addr, mode.name());
        }
        FaultKind::Partition => {
            let Some(partitioner) = partitioner else {
                return Ok(false);
            };
            let one_way = (p.variant / 3) % 2 == 1;
            let shape = match p.variant % 3 {
                0 => Partition::Isolate {
                    node: node.clone(),
                    one_way,
                },
                1 => Partition::ClientsFrom {
                    node: node.clone(),
                    one_way,
                },
                _ => {
                    // A minority (this node and the next) against the rest.
                    let i = p.target as usize % nodes.len();
                    let a = vec![nodes[i].clone(), nodes[(i + 1) % nodes.len()].clone()];
                    let b = nodes.iter().filter(|n| !a.contains(n)).cloned().collect();
                    Partition::Nodes { a, b, one_way }
                }
            };
            partitioner.partition(ctx, shape)?;
            hold().await;
            partitioner.heal(ctx)?;
        }
        FaultKind::Slow => {
            // A master's proxy carries clients (a replica's carries no one's traffic).
            let mut masters = failover::masters_now(ctx).await?;
            if masters.is_empty() {
                return Ok(false);
            }
            masters.sort_by(|a, b| a.addr.cmp(&b.addr));
            let master = masters[p.target as usize % masters.len()].addr.clone();
            let faults = link::planned(p);
            link::slow(ctx, &master, &faults)?;
            hold().await;
            link::fast(ctx, &master)?;
            target = format!("{master} ({faults})");
        }
        other => unreachable!("{other} is not a node fault"),
    }
    tracing::info!(
        kind = %p.kind,
        target = %target,
        variant = p.variant,
        duration_ms = began.elapsed().as_millis() as u64,
        "fault done and undone"
    );
    Ok(true)
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
