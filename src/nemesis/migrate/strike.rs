//! A classic migration struck half-way: its source or its target is killed (SIGKILL) or paused
//! (SIGSTOP) after the first batch, held, brought back, and the open slot repaired the way
//! `redis-cli --cluster fix` would. What the repair had to do is the observable effect.
//!
//! [`migrate_then_failover`] strikes by failover instead: a replica of the source or of the
//! target takes over (`CLUSTER FAILOVER`, the safe kind) while the slot is `MIGRATING` /
//! `IMPORTING`. Redis 7.0 keeps that state on the master only (redis/redis#6339): a new source
//! master serves the slot as if nothing had moved (keys moved read as absent), a new target
//! master answers `MOVED` back to the source, which still sends `ASK` to the demoted target.
//! Valkey 8+ replicates the state and points the other side at the new master.

use super::repair::{open_slots, repair, RepairReport};
use super::{open_slot, MigrateError, MigrateOptions, OpenSlot, Peer};
use crate::harness::{parse_nodes, Admin, NodeLine};
use crate::nemesis::error::NemesisError;
use crate::nemesis::failover::{self, FailoverMode};
use crate::nemesis::{process, Ctx};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// What a struck migration did, for the run log.
#[derive(Debug, Clone)]
pub struct StrikeReport {
    /// `killed`, `paused` or `failed over`.
    pub how: &'static str,
    /// `source` or `target`.
    pub role: &'static str,
    /// The node struck.
    pub node: String,
    /// The replica promoted in its place (a failover strike that landed).
    pub promoted: Option<String>,
    /// Keys moved before the strike.
    pub moved: usize,
    /// What the repair afterwards fixed, stranded or could not fix.
    pub repair: RepairReport,
}

/// One struck migration: the slot, its two sides, how it migrates, which side and how it is
/// struck (`variant`), how long the strike is held and how long the repair may take.
#[derive(Debug, Clone, Copy)]
pub struct Strike<'a> {
    /// The slot to open.
    pub slot: u16,
    /// Its owner.
    pub source: &'a Peer,
    /// Where it moves.
    pub target: &'a Peer,
    /// How the classic migration paces itself.
    pub opts: &'a MigrateOptions,
    /// Bit 0 picks the target (else the source); the other bits pick the way to strike.
    pub variant: u32,
    /// How long the struck side is held down (or the new master left alone) before the repair.
    pub hold_ms: u64,
    /// How long the repair may take.
    pub settle_ms: u64,
}

impl Strike<'_> {
    /// Opens the slot and moves one batch; returns the open slot, the keys moved and the side
    /// to strike (`source` or `target`, and its address).
    async fn open_one_batch(
        &self,
        ctx: &Ctx,
    ) -> Result<(OpenSlot, usize, &'static str, String), NemesisError> {
        let err = |e: MigrateError| NemesisError::Migration(e.to_string());
        let mut open = open_slot(
            &ctx.recorder,
            self.slot,
            self.source,
            self.target,
            self.opts,
        )
        .await
        .map_err(err)?;
        open.move_batches(1).await.map_err(err)?;
        let moved = open.moved().len();
        let (role, node) = if self.variant & 1 == 1 {
            ("target", self.target.addr.clone())
        } else {
            ("source", self.source.addr.clone())
        };
        Ok((open, moved, role, node))
    }
}

/// Opens the slot, moves one batch, then strikes one side: `variant` bit 0 picks the target
/// (else the source), bit 1 picks pause (else kill). The node is held down for `hold_ms`,
/// brought back, and the cluster repaired within `settle_ms`. Nodes being killed are listed in
/// `killing` so that the crash watcher does not count them.
pub async fn migrate_then_strike(
    ctx: &Ctx,
    strike: &Strike<'_>,
    killing: &Mutex<BTreeSet<String>>,
) -> Result<StrikeReport, NemesisError> {
    let (open, moved, role, node) = strike.open_one_batch(ctx).await?;
    drop(open);
    let kill = strike.variant & 2 == 0;
    let hold = Duration::from_millis(strike.hold_ms);
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
    let repair = repair_settled(ctx, strike.settle_ms).await?;
    Ok(StrikeReport {
        how: if kill { "killed" } else { "paused" },
        role,
        node,
        promoted: None,
        moved,
        repair,
    })
}

/// Opens the slot, moves one batch, then fails over one side while the slot is half-migrated:
/// `variant` bit 0 picks the target (else the source); the replica that takes over is the
/// seeded (`variant >> 1`) one of its live replicas. `CLUSTER FAILOVER` (the default,
/// coordinated kind) is sent and awaited until every reachable node lists the replica as master
/// ([`failover::failover_landed`], not waiting for `cluster_state:ok`: on Redis 7.0 the
/// importing target may say `fail` until the repair; recorded as `failover` events, `mode`
/// `default`, `agreed: false`); then `migrate-step` `failed-over` records the slot, `role`, the
/// struck `node`, the `replica`, `moved_total` and `promoted` (or `error`); then the cluster is
/// repaired `hold_ms` later (clients meet the half-migrated slot under its new master
/// meanwhile), within `settle_ms` as [`migrate_then_strike`] does.
pub async fn migrate_then_failover(
    ctx: &Ctx,
    strike: &Strike<'_>,
) -> Result<StrikeReport, NemesisError> {
    let (open, moved, role, node) = strike.open_one_batch(ctx).await?;
    let (variant, hold_ms, settle_ms) = (strike.variant, strike.hold_ms, strike.settle_ms);
    let mut replicas: Vec<String> = failover::replicas_of(ctx, &node)
        .await?
        .into_iter()
        .filter(|l| !l.troubled())
        .map(|l| l.addr)
        .collect();
    replicas.sort();
    let Some(replica) = replicas
        .get((variant >> 1) as usize % replicas.len().max(1))
        .cloned()
    else {
        drop(open);
        repair_settled(ctx, settle_ms).await?;
        return Err(NemesisError::Refused {
            node,
            reason: "has no live replica to fail over to".into(),
        });
    };
    let promoted = failover::failover_landed(ctx, &replica, FailoverMode::Default).await;
    let mut value = json!({"node": node, "role": role, "replica": replica,
                           "mode": FailoverMode::Default.name(), "moved_total": moved});
    match &promoted {
        Ok(p) => value["promoted"] = json!(p.node),
        Err(e) => value["error"] = json!(e.to_string()),
    }
    open.notes.note("migrate-step", "failed-over", value);
    drop(open);
    tokio::time::sleep(Duration::from_millis(hold_ms)).await;
    let repair = repair_settled(ctx, settle_ms).await?;
    let promoted = promoted?;
    Ok(StrikeReport {
        how: "failed over",
        role,
        node,
        promoted: Some(promoted.node),
        moved,
        repair,
    })
}

/// Repairs every open slot, retrying until `timeout_ms` while nodes that just came back (or
/// were just promoted) still disagree: a master view first, then `repair` until it succeeds.
pub async fn repair_settled(ctx: &Ctx, timeout_ms: u64) -> Result<RepairReport, NemesisError> {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        // Asked again on every try: right after a failover a view may still list the demoted
        // master as one (it then refuses `SETSLOT`: "use SETSLOT only with masters").
        let masters = loop {
            match failover::masters_for_moves(ctx).await {
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
        let repaired = match repair(&ctx.recorder, &masters).await {
            Ok(report) => close_strays(ctx).await.map(|()| report),
            Err(e) => Err(NemesisError::Migration(e.to_string())),
        };
        match repaired {
            // A slot no master claims (its owner down or flagged failing) may be claimed again
            // once the owner is back: try again while there is time.
            Ok(report) if !report.unfixed.is_empty() && Instant::now() < deadline => {
                tracing::warn!(unfixed = ?report.unfixed, "repair left slots open, retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Ok(report) => return Ok(report),
            Err(e) if Instant::now() < deadline => {
                tracing::warn!(error = %e, "repair failed, retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Closes open slots that `repair` (which looks at masters) cannot see: a replica that kept its
/// primary's `MIGRATING`/`IMPORTING` (Valkey 9 replicates them; a demoted master keeps its own)
/// gets `SETSLOT s STABLE` through its primary, which replicates it; a master that owns no slot
/// and holds no key of `s` gets it directly. Each is recorded as a `repair-step` `closed`.
///
/// An open slot that is repair's to settle is left alone: on a master owning slots or holding
/// keys of it (repair left it open because its owner was down or flagged failing; closing it
/// here would strand the keys clients wrote through `ASK`), or on a replica whose primary still
/// has it open. The caller retries repair, and the run's gate sees it still open.
async fn close_strays(ctx: &Ctx) -> Result<(), NemesisError> {
    for node in &ctx.cluster.nodes {
        let mut admin = Admin::connect(&node.addr).await?;
        let text = admin.text(&["CLUSTER", "NODES"]).await?;
        let lines = parse_nodes(&text).unwrap_or_default();
        let Some(me) = lines.iter().find(|l| l.has_flag("myself")) else {
            continue;
        };
        for slot in open_slots(me) {
            let primary = me
                .master_id
                .as_ref()
                .filter(|_| me.is_replica())
                .and_then(|id| lines.iter().find(|l| &l.id == id))
                .map(|l| l.addr.clone());
            let via = primary.unwrap_or_else(|| node.addr.clone());
            let mut to = Admin::connect(&via).await?;
            if !stray(me, &mut admin, &mut to, slot).await? {
                continue;
            }
            let stable = ["CLUSTER", "SETSLOT", &slot.to_string(), "STABLE"];
            to.run::<()>(&stable).await?;
            if via != node.addr {
                // Where the replica accepts it (not Redis 7.0), close it there too; a refusal is fine.
                let _ = admin.run::<()>(&stable).await;
            }
            ctx.recorder.nemesis(
                "repair-step",
                json!({"phase": "closed", "slot": slot, "closed": [node.addr], "via": via}),
            );
        }
    }
    Ok(())
}

/// Whether `slot`, open on the node `me` (asked through `admin`; `via` is its primary for a
/// replica, else the node itself), is a stray [`close_strays`] may close.
async fn stray(
    me: &NodeLine,
    admin: &mut Admin,
    via: &mut Admin,
    slot: u16,
) -> Result<bool, NemesisError> {
    if me.is_replica() {
        let text = via.text(&["CLUSTER", "NODES"]).await?;
        let lines = parse_nodes(&text).unwrap_or_default();
        let primary_open = lines
            .iter()
            .find(|l| l.has_flag("myself"))
            .is_some_and(|p| open_slots(p).contains(&slot));
        return Ok(!primary_open);
    }
    if !me.slots.is_empty() {
        return Ok(false);
    }
    let keys: usize = admin
        .run(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()])
        .await?;
    Ok(keys == 0)
}

fn lock(set: &Mutex<BTreeSet<String>>) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
    set.lock().unwrap_or_else(|p| p.into_inner())
}
