//! Classic migrations stopped half-way, on purpose: `abort` and `finalize_early`.
//!
//! Both leave the cluster in a state that `redis-cli --cluster check` calls healthy while keys are
//! misplaced or gone, which is exactly what a correctness tester wants clients to run into:
//!
//! - `abort`: `CLUSTER SETSLOT <slot> STABLE` on the target and the source after some batches.
//!   The keys already moved are *stranded* on the target, which does not own the slot: no client
//!   can reach them (the target answers `MOVED` to the source, which no longer has them).
//! - `finalize_early`: `CLUSTER SETSLOT <slot> NODE <target>` on the target and the other masters
//!   while the source still holds keys. The target bumps its config epoch; when the source hears
//!   of it, it deletes the keys of the slot it lost ("dirty slot"): those keys are *lost*.

use super::commands::{count_keys_in_slot, keys_in_slot, setslot, tell_others};
use super::{open_slot, MigrateError, MigrateOptions, OpenSlot, Peer};
use crate::harness::{parse_nodes, Admin};
use serde_json::json;
use std::time::{Duration, Instant};
use workloads::Recorder;

/// The most keys we list (in reports and events) for one slot; counts are always exact.
pub const LISTED_KEYS_MAX: usize = 10_000;
/// The most keys written into one event, so histories stay readable.
const EVENT_KEYS_MAX: usize = 100;

/// What an aborted classic migration left behind.
#[derive(Debug, Clone)]
pub struct AbortReport {
    /// The slot.
    pub slot: u16,
    /// The owner, before and after.
    pub source: String,
    /// The node that was importing.
    pub target: String,
    /// Keys moved before the abort, in order.
    pub moved: Vec<String>,
    /// Keys of the slot on the target after the abort: unreachable, since it does not own it.
    pub stranded: usize,
    /// Up to `LISTED_KEYS_MAX` of the stranded keys.
    pub stranded_keys: Vec<String>,
    /// Keys of the slot still on the source (still reachable).
    pub left: usize,
}

/// What finalizing a classic migration before the source was empty cost.
#[derive(Debug, Clone)]
pub struct EarlyFinalizeReport {
    /// The slot.
    pub slot: u16,
    /// The old owner.
    pub source: String,
    /// The new owner.
    pub target: String,
    /// Keys moved before the early finalize, in order.
    pub moved: Vec<String>,
    /// Keys still on the source when the target was made owner (up to `LISTED_KEYS_MAX`).
    pub left_behind: Vec<String>,
    /// Of `left_behind`, those now on neither node: deleted by the source.
    pub lost: Vec<String>,
    /// Keys of the slot the source still had at the end of the wait (0 once it has dropped them).
    pub still_on_source: usize,
    /// From the target's `SETSLOT NODE` until the source had no keys of the slot left.
    pub drop_ms: Option<u64>,
    /// Whether the source still shows the slot `MIGRATING` at the end: Redis 7.0 keeps it open
    /// (for a slot it no longer owns) until `SETSLOT STABLE` or `repair`; Valkey 9 clears it.
    pub source_still_migrating: bool,
}

/// Runs a classic migration of `slot` for `batches` batches, then aborts it (see [`abort`]).
pub async fn migrate_then_abort(
    recorder: &Recorder,
    slot: u16,
    source: &Peer,
    target: &Peer,
    opts: &MigrateOptions,
    batches: usize,
) -> Result<AbortReport, MigrateError> {
    let mut open = open_slot(recorder, slot, source, target, opts).await?;
    open.move_batches(batches).await?;
    abort(open).await
}

/// Closes an open classic migration without moving the slot: `SETSLOT STABLE` on the target,
/// then on the source, each recorded (`migrate-step`/`stable`); then counts what is stranded and
/// records `migrate-end`/`aborted`.
pub async fn abort(mut open: OpenSlot) -> Result<AbortReport, MigrateError> {
    let stable = setslot(open.slot, "STABLE", None);
    open.dst
        .query::<()>(&stable)
        .await
        .map_err(open.step_err("stable-target"))?;
    open.notes
        .note("migrate-step", "stable", json!({"node": open.target.addr}));
    open.src
        .query::<()>(&stable)
        .await
        .map_err(open.step_err("stable-source"))?;
    open.notes
        .note("migrate-step", "stable", json!({"node": open.source.addr}));
    let stranded = count_keys_in_slot(&mut open.dst, open.slot)
        .await
        .map_err(open.step_err("countkeysinslot"))?;
    let stranded_keys = keys_in_slot(&mut open.dst, open.slot, LISTED_KEYS_MAX)
        .await
        .map_err(open.step_err("getkeysinslot"))?;
    let left = count_keys_in_slot(&mut open.src, open.slot)
        .await
        .map_err(open.step_err("countkeysinslot"))?;
    open.notes.note(
        "migrate-end",
        "aborted",
        json!({
            "keys_moved": open.moved.len(),
            "stranded": stranded,
            "stranded_node": open.target.addr,
            "stranded_keys": &stranded_keys[..stranded_keys.len().min(EVENT_KEYS_MAX)],
            "left": left,
            "duration_ms": open.started.elapsed().as_millis() as u64,
        }),
    );
    Ok(AbortReport {
        slot: open.slot,
        source: open.source.addr.clone(),
        target: open.target.addr.clone(),
        moved: std::mem::take(&mut open.moved),
        stranded,
        stranded_keys,
        left,
    })
}

/// Runs a classic migration of `slot` for `batches` batches, then finalizes it early (see
/// [`finalize_early`]).
#[allow(clippy::too_many_arguments)]
pub async fn migrate_then_finalize_early(
    recorder: &Recorder,
    slot: u16,
    source: &Peer,
    target: &Peer,
    others: &[Peer],
    opts: &MigrateOptions,
    batches: usize,
    wait_ms: u64,
) -> Result<EarlyFinalizeReport, MigrateError> {
    let mut open = open_slot(recorder, slot, source, target, opts).await?;
    open.move_batches(batches).await?;
    finalize_early(open, others, wait_ms).await
}

/// Makes the target the owner while the source still holds keys: `SETSLOT NODE target` on the
/// target and on `others` (never on the source, which refuses while it has keys), recorded as
/// `migrate-step`/`finalized` with `early: true`. Then waits up to `wait_ms` for the source to
/// drop the slot's keys, records `migrate-step`/`keys-lost` and `migrate-end`/`finalized-early`.
pub async fn finalize_early(
    mut open: OpenSlot,
    others: &[Peer],
    wait_ms: u64,
) -> Result<EarlyFinalizeReport, MigrateError> {
    let slot = open.slot;
    let (left_behind, finalized_at) = claim_for_target(&mut open, others).await?;
    let (still_on_source, drop_ms) = wait_source_drop(&mut open, finalized_at, wait_ms).await?;
    let lost = lost_keys(&mut open, &left_behind).await?;
    let (source_still_owns, source_still_migrating) = source_state(&mut open.src, slot)
        .await
        .unwrap_or((true, true));
    open.notes.note(
        "migrate-step",
        "keys-lost",
        json!({
            "node": open.source.addr,
            "lost": lost.len(),
            "lost_keys": &lost[..lost.len().min(EVENT_KEYS_MAX)],
            "still_on_source": still_on_source,
            "source_still_owns": source_still_owns,
            "source_still_migrating": source_still_migrating,
            "drop_ms": drop_ms,
        }),
    );
    open.notes.note(
        "migrate-end",
        "finalized-early",
        json!({
            "keys_moved": open.moved.len(),
            "left_behind": left_behind.len(),
            "lost": lost.len(),
            "duration_ms": open.started.elapsed().as_millis() as u64,
        }),
    );
    Ok(EarlyFinalizeReport {
        slot,
        source: open.source.addr.clone(),
        target: open.target.addr.clone(),
        moved: std::mem::take(&mut open.moved),
        left_behind,
        lost,
        still_on_source,
        drop_ms,
        source_still_migrating,
    })
}

/// Lists the keys still on the source, then sets the target the owner on the target and on
/// `others`, recorded; returns the keys left behind and when the target took the slot.
async fn claim_for_target(
    open: &mut OpenSlot,
    others: &[Peer],
) -> Result<(Vec<String>, Instant), MigrateError> {
    let slot = open.slot;
    let left_behind = keys_in_slot(&mut open.src, slot, LISTED_KEYS_MAX)
        .await
        .map_err(open.step_err("getkeysinslot"))?;
    open.dst
        .query::<()>(&setslot(slot, "NODE", Some(&open.target.id)))
        .await
        .map_err(open.step_err("node-target"))?;
    let finalized_at = Instant::now();
    open.notes.note(
        "migrate-step",
        "finalized",
        json!({
            "node": open.target.addr, "early": true, "left_behind": left_behind.len(),
            "left_behind_keys": &left_behind[..left_behind.len().min(EVENT_KEYS_MAX)],
        }),
    );
    tell_others(slot, &open.target.id, others, &open.opts).await?;
    for other in others {
        open.notes.note(
            "migrate-step",
            "finalized",
            json!({"node": other.addr, "early": true}),
        );
    }
    Ok((left_behind, finalized_at))
}

/// Waits up to `wait_ms` after `finalized_at` for the source to drop the slot's keys (it learns
/// the new owner by gossip, then deletes them); returns the keys still there and, if it dropped
/// them, after how long.
async fn wait_source_drop(
    open: &mut OpenSlot,
    finalized_at: Instant,
    wait_ms: u64,
) -> Result<(usize, Option<u64>), MigrateError> {
    let deadline = finalized_at + Duration::from_millis(wait_ms);
    loop {
        let still_on_source = count_keys_in_slot(&mut open.src, open.slot)
            .await
            .map_err(open.step_err("countkeysinslot"))?;
        if still_on_source == 0 {
            return Ok((0, Some(finalized_at.elapsed().as_millis() as u64)));
        }
        if Instant::now() >= deadline {
            return Ok((still_on_source, None));
        }
        tokio::time::sleep(Duration::from_millis(crate::nemesis::POLL_MS)).await;
    }
}

/// The keys of `left_behind` that are neither on the source any more nor on the target.
async fn lost_keys(
    open: &mut OpenSlot,
    left_behind: &[String],
) -> Result<Vec<String>, MigrateError> {
    let remaining = keys_in_slot(&mut open.src, open.slot, LISTED_KEYS_MAX)
        .await
        .map_err(open.step_err("getkeysinslot"))?;
    let mut lost = Vec::new();
    for key in left_behind.iter().filter(|k| !remaining.contains(k)) {
        let on_target: usize = open
            .dst
            .query(redis::cmd("EXISTS").arg(key))
            .await
            .map_err(open.step_err("exists"))?;
        if on_target == 0 {
            lost.push(key.clone());
        }
    }
    Ok(lost)
}

/// Whether the node behind `admin` still serves `slot`, and whether it still has it migrating.
async fn source_state(admin: &mut Admin, slot: u16) -> Option<(bool, bool)> {
    let text = admin.text(&["CLUSTER", "NODES"]).await.ok()?;
    let lines = parse_nodes(&text)?;
    let me = lines.iter().find(|l| l.has_flag("myself"))?;
    let migrating = format!("[{slot}->-");
    Some((
        me.owns(slot),
        me.open_slots.iter().any(|e| e.starts_with(&migrating)),
    ))
}
