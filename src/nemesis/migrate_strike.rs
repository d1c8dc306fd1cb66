//! A classic migration struck half-way: its source or its target is killed (SIGKILL) or paused
//! (SIGSTOP) after the first batch, held, brought back, and the open slot repaired the way
//! `redis-cli --cluster fix` would. What the repair had to do is the observable effect.

use super::error::NemesisError;
use super::failover;
use super::migrate::{open_slot, MigrateOptions, Peer};
use super::migrate_repair::{repair, RepairReport};
use super::{process, Ctx};
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// What a struck migration did, for the run log.
#[derive(Debug, Clone)]
pub struct StrikeReport {
    /// `killed` or `paused`.
    pub how: &'static str,
    /// `source` or `target`.
    pub role: &'static str,
    /// The node struck.
    pub node: String,
    /// Keys moved before the strike.
    pub moved: usize,
    /// What the repair afterwards fixed, stranded or could not fix.
    pub repair: RepairReport,
}

/// Opens `slot` from `source` to `target`, moves one batch, then strikes one side: `variant`
/// bit 0 picks the target (else the source), bit 1 picks pause (else kill). The node is held
/// down for `hold_ms`, brought back, and the cluster repaired within `settle_ms`. Nodes being
/// killed are listed in `killing` so that the crash watcher does not count them.
#[allow(clippy::too_many_arguments)]
pub async fn migrate_then_strike(
    ctx: &Ctx,
    slot: u16,
    source: &Peer,
    target: &Peer,
    opts: &MigrateOptions,
    variant: u32,
    hold_ms: u64,
    settle_ms: u64,
    killing: &Mutex<BTreeSet<String>>,
) -> Result<StrikeReport, NemesisError> {
    let err = |e: super::migrate::MigrateError| NemesisError::Migration(e.to_string());
    let mut open = open_slot(&ctx.recorder, slot, source, target, opts)
        .await
        .map_err(err)?;
    open.move_batches(1).await.map_err(err)?;
    let moved = open.moved().len();
    drop(open);
    let (role, node) = if variant & 1 == 1 {
        ("target", target.addr.clone())
    } else {
        ("source", source.addr.clone())
    };
    let kill = variant & 2 == 0;
    let hold = Duration::from_millis(hold_ms);
    if kill {
        lock(killing).insert(node.clone());
        let killed = process::kill(ctx, &node).await;
        if killed.is_ok() {
            tokio::time::sleep(hold).await;
        }
        let restarted = process::restart(ctx, &node).await;
        lock(killing).remove(&node);
        killed?;
        restarted?;
    } else {
        process::pause(ctx, &node).await?;
        tokio::time::sleep(hold).await;
        process::resume(ctx, &node).await?;
    }
    let repair = repair_settled(ctx, settle_ms).await?;
    Ok(StrikeReport {
        how: if kill { "killed" } else { "paused" },
        role,
        node,
        moved,
        repair,
    })
}

/// Repairs every open slot, retrying until `timeout_ms` while nodes that just came back (or
/// were just promoted) still disagree: a master view first, then `repair` until it succeeds.
pub async fn repair_settled(ctx: &Ctx, timeout_ms: u64) -> Result<RepairReport, NemesisError> {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let masters = loop {
        match failover::masters_now(ctx).await {
            Ok(m) if !m.is_empty() => break m,
            Ok(_) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(_) => {
                return Err(NemesisError::Timeout {
                    what: "a master to answer".into(),
                    waited_ms: timeout_ms,
                })
            }
            Err(e) => return Err(e),
        }
    };
    let masters: Vec<Peer> = masters
        .iter()
        .map(|m| Peer {
            addr: m.addr.clone(),
            id: m.id.clone(),
        })
        .collect();
    loop {
        match repair(&ctx.recorder, &masters).await {
            Ok(report) => return Ok(report),
            Err(e) if Instant::now() < deadline => {
                tracing::warn!(error = %e, "repair failed, retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(NemesisError::Migration(e.to_string())),
        }
    }
}

fn lock(set: &Mutex<BTreeSet<String>>) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
    set.lock().unwrap_or_else(|p| p.into_inner())
}
