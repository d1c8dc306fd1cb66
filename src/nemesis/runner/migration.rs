//! The migration stream's actions: one slot move per planned migration, of the kind the plan
//! says (classic, atomic, abort, finalize early, cancel, strike), resolved against the masters as
//! they are when it fires.

use super::super::error::NemesisError;
use super::super::failover;
use super::super::migrate::atomic::{cancel_atomic, migrate_atomic, AtomicOptions};
use super::super::migrate::interrupt::{migrate_then_abort, migrate_then_finalize_early};
use super::super::migrate::repair::{open_slots_on, repair};
use super::super::migrate::strike::{
    migrate_then_failover, migrate_then_strike, repair_settled, Strike,
};
use super::super::migrate::{migrate_slot, MigrateError, MigrateOptions, Peer};
use super::super::schedule::{FaultKind, MigrateTarget, Planned};
use super::super::Ctx;
use super::SETTLE_TIMEOUT_MS;
use crate::harness::NodeLine;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

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
/// How long the stream tries to close what a failed migration left open (nodes being
/// restarted, paused or cut off come back within a fault's hold) before it skips a move.
const CLEAN_TIMEOUT_MS: u64 = 10_000;
/// Connect timeout when every node is asked for open slots.
const CLEAN_CONNECT_MS: u64 = 2_000;

/// A slot move as the plan resolved it against the masters of the moment.
struct Move {
    slot: u16,
    source: Peer,
    target: Peer,
    /// Whether the target owned no slots when the move was picked.
    target_was_empty: bool,
    /// The masters other than source and target.
    rest: Vec<Peer>,
    /// Every master.
    masters: Vec<Peer>,
}

fn peer(line: &NodeLine) -> Peer {
    Peer {
        addr: line.addr.clone(),
        id: line.id.clone(),
    }
}

/// One slot move of the migration stream over the workload's `slots`, to a master `target`
/// allows; `Ok((false, 0))` when no move fits right now.
pub(super) async fn migration(
    ctx: &Ctx,
    p: &Planned,
    (slots, target): (&[u16], MigrateTarget),
    opts: &MigrateOptions,
    killing: &Mutex<BTreeSet<String>>,
) -> Result<(bool, usize), NemesisError> {
    let Some(mv) = pick(ctx, p, slots, target).await? else {
        return Ok((false, 0));
    };
    let began = Instant::now();
    let (keys, outcome) = drive(ctx, p, &mv, opts, killing).await?;
    tracing::info!(
        kind = %p.kind,
        slot = mv.slot,
        source = %mv.source.addr,
        target = %mv.target.addr,
        target_was_empty = mv.target_was_empty,
        keys_moved = keys,
        duration_ms = began.elapsed().as_millis() as u64,
        "migration: {outcome}"
    );
    Ok((true, keys))
}

/// The slot `p` moves, from the master owning it to another, as [`choose`] decides over the
/// masters of the moment; `None` if no move fits.
async fn pick(
    ctx: &Ctx,
    p: &Planned,
    slots: &[u16],
    target: MigrateTarget,
) -> Result<Option<Move>, NemesisError> {
    let mut masters = failover::masters_for_moves(ctx).await?;
    masters.sort_by(|a, b| a.addr.cmp(&b.addr));
    Ok(choose(&masters, p, slots, target))
}

/// The move `p` makes among `masters` (in address order): the `p.target`-th workload slot, from
/// its owner to the `p.variant`-th other master; `None` if no master owns it or there is no
/// other. With [`MigrateTarget::Empty`] only masters owning no slots are targets; when none is
/// empty the move empties one ([`emptying`]), and when none can be emptied (every master owns
/// slots beyond the workload's) any other master is the target.
fn choose(masters: &[NodeLine], p: &Planned, slots: &[u16], target: MigrateTarget) -> Option<Move> {
    let empty_exists = masters.iter().any(|m| m.slots.is_empty());
    if target == MigrateTarget::Empty && !empty_exists {
        if let Some((slot, source)) = emptying(masters, p, slots) {
            let others = masters.iter().filter(|m| m.id != source.id);
            return resolve(masters, slot, source, others.collect(), p.variant);
        }
    }
    let only_empty = target == MigrateTarget::Empty && empty_exists;
    let slot = slots[p.target as usize % slots.len()];
    let source = masters.iter().find(|m| m.owns(slot))?;
    let others: Vec<&NodeLine> = masters
        .iter()
        .filter(|m| m.id != source.id)
        .filter(|m| !only_empty || m.slots.is_empty())
        .collect();
    resolve(masters, slot, source, others, p.variant)
}

/// When no master is empty under [`MigrateTarget::Empty`]: the slot that empties a master, and
/// that master. The master is the one owning the fewest slots, all of them the workload's (so
/// it owned none before migrations brought them: a spare); the slot is its `p.target`-th.
/// `None` when every master owns slots beyond the workload's.
fn emptying<'m>(
    masters: &'m [NodeLine],
    p: &Planned,
    slots: &[u16],
) -> Option<(u16, &'m NodeLine)> {
    let owned = |m: &NodeLine| -> Vec<u16> { m.slots.iter().flat_map(|&(a, b)| a..=b).collect() };
    let source = masters
        .iter()
        .filter(|m| !m.slots.is_empty())
        .filter(|m| owned(m).iter().all(|s| slots.binary_search(s).is_ok()))
        .min_by_key(|m| owned(m).len())?;
    let mine = owned(source);
    Some((mine[p.target as usize % mine.len()], source))
}

/// The move of `slot` from `source` to `others[variant % len]`; `None` without others.
fn resolve(
    masters: &[NodeLine],
    slot: u16,
    source: &NodeLine,
    others: Vec<&NodeLine>,
    variant: u32,
) -> Option<Move> {
    let target = *others.get(variant as usize % others.len().max(1))?;
    let rest = masters
        .iter()
        .filter(|m| m.id != source.id && m.id != target.id)
        .map(peer)
        .collect();
    Some(Move {
        slot,
        source: peer(source),
        target: peer(target),
        target_was_empty: target.slots.is_empty(),
        rest,
        masters: masters.iter().map(peer).collect(),
    })
}

/// Carries out the move the way `p.kind` says; returns the keys moved and a line for the run log.
async fn drive(
    ctx: &Ctx,
    p: &Planned,
    mv: &Move,
    opts: &MigrateOptions,
    killing: &Mutex<BTreeSet<String>>,
) -> Result<(usize, String), NemesisError> {
    let (rec, slot, source, target) = (&ctx.recorder, mv.slot, &mv.source, &mv.target);
    match p.kind {
        FaultKind::Migrate => {
            let m = migrate_slot(rec, slot, source, target, &mv.rest, opts)
                .await
                .map_err(migration_error)?;
            Ok((m.keys_moved, "completed".to_string()))
        }
        FaultKind::Atomic => {
            let m = migrate_atomic(rec, slot, slot, source, target, &AtomicOptions::default())
                .await
                .map_err(migration_error)?;
            Ok((0, format!("atomic job ended {}", m.state)))
        }
        FaultKind::Abort => {
            let r = migrate_then_abort(rec, slot, source, target, opts, ABORT_AFTER_BATCHES)
                .await
                .map_err(migration_error)?;
            let outcome = format!(
                "aborted: {} keys stranded on the target ({:?}), {} left on the source",
                r.stranded, r.stranded_keys, r.left
            );
            Ok((r.moved.len(), outcome))
        }
        FaultKind::FinalizeEarly => finalize_early(ctx, mv, opts).await,
        FaultKind::Cancel => Ok((0, cancel_midway(ctx, slot, source, target).await?)),
        FaultKind::Strike | FaultKind::StrikeFailover => strike(ctx, p, mv, opts, killing).await,
        other => unreachable!("{other} is not a migration"),
    }
}

/// A migration's own error, as the nemesis reports it.
fn migration_error(e: MigrateError) -> NemesisError {
    NemesisError::Migration(e.to_string())
}

/// Finalizes the move early (keys left on the source are lost), then repairs what Redis 7.0
/// leaves open.
async fn finalize_early(
    ctx: &Ctx,
    mv: &Move,
    opts: &MigrateOptions,
) -> Result<(usize, String), NemesisError> {
    let rec = &ctx.recorder;
    let (source, target, rest) = (&mv.source, &mv.target, &mv.rest);
    let wait_ms = FINALIZE_EARLY_WAIT_MS;
    let r = migrate_then_finalize_early(rec, mv.slot, source, target, rest, opts, 0, wait_ms)
        .await
        .map_err(migration_error)?;
    // Redis 7.0 leaves the old owner `MIGRATING` a slot it no longer owns: close it.
    repair(rec, &mv.masters).await.map_err(migration_error)?;
    let outcome = format!(
        "finalized early: {} keys left behind and lost ({:?})",
        r.lost.len(),
        r.lost
    );
    Ok((r.moved.len(), outcome))
}

/// Strikes the move's source or target (kill or pause, or a failover), then reports what the
/// repair had to do.
async fn strike(
    ctx: &Ctx,
    p: &Planned,
    mv: &Move,
    opts: &MigrateOptions,
    killing: &Mutex<BTreeSet<String>>,
) -> Result<(usize, String), NemesisError> {
    let strike = Strike {
        slot: mv.slot,
        source: &mv.source,
        target: &mv.target,
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
    Ok((r.moved + r.repair.keys_moved, outcome))
}

/// Makes the cluster fit for the next migration after one failed: repairs every open slot
/// (retrying while nodes come back), then asks every node whether a slot is still open, as
/// `redis-cli --cluster reshard` checks before it moves anything. A move started over a slot
/// still open towards another node strands the keys clients wrote there through `ASK`: the
/// harness, not the server, would lose them.
pub(super) async fn make_clean(ctx: &Ctx) -> Result<(), NemesisError> {
    let report = repair_settled(ctx, CLEAN_TIMEOUT_MS).await?;
    if let Some((slot, why)) = report.unfixed.first() {
        return Err(NemesisError::Migration(format!(
            "repair left slot {slot} open: {why}"
        )));
    }
    let addrs: Vec<&str> = ctx.cluster.nodes.iter().map(|n| n.addr.as_str()).collect();
    let open = open_slots_on(&addrs, CLEAN_CONNECT_MS)
        .await
        .map_err(migration_error)?;
    if open.is_empty() {
        Ok(())
    } else {
        Err(NemesisError::Migration(format!(
            "slots still open after repair: {}",
            open.join("; ")
        )))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::parse_nodes;

    /// Three masters: `a` owns 0-99, `b` 100-200 but 150, `c` what its line says.
    fn masters(c_slots: &str) -> Vec<NodeLine> {
        let text = format!(
            "a 127.0.0.1:1@10001 master - 0 0 1 connected 0-99\n\
             b 127.0.0.1:2@10002 master - 0 0 2 connected 100-149 151-200\n\
             c 127.0.0.1:3@10003 master - 0 0 3 connected {c_slots}\n"
        );
        parse_nodes(&text).unwrap()
    }

    fn planned(target: u32, variant: u32) -> Planned {
        Planned {
            at_ms: 0,
            kind: FaultKind::Migrate,
            target,
            variant,
            hold_ms: 0,
        }
    }

    #[test]
    fn empty_targets_the_master_without_slots_then_empties_it_again() {
        let workload = [5, 150, 160];
        for variant in 0..4 {
            // Slot 5 is `a`'s; `c` is the only empty master.
            let mv = choose(
                &masters(""),
                &planned(0, variant),
                &workload,
                MigrateTarget::Empty,
            )
            .unwrap();
            assert_eq!((mv.slot, mv.target.id.as_str()), (5, "c"));
            assert!(mv.target_was_empty);
            assert_eq!(mv.rest.len(), 1);
        }
        // No master is empty: `c` holds only workload slots, so one of them goes back.
        let mv = choose(
            &masters("150"),
            &planned(0, 1),
            &workload,
            MigrateTarget::Empty,
        )
        .unwrap();
        assert_eq!((mv.slot, mv.source.id.as_str()), (150, "c"));
        assert_eq!(mv.target.id, "b");
        assert!(!mv.target_was_empty);
        // Every master owns slots beyond the workload's: a move to any other master.
        let mv = choose(
            &masters("150 300"),
            &planned(2, 0),
            &workload,
            MigrateTarget::Empty,
        );
        let mv = mv.unwrap();
        assert_eq!((mv.slot, mv.source.id.as_str()), (160, "b"));
        assert_eq!(mv.target.id, "a");
    }

    #[test]
    fn any_targets_every_other_master_empty_or_not() {
        let targets: BTreeSet<String> = (0..6)
            .map(|v| choose(&masters(""), &planned(0, v), &[5], MigrateTarget::Any).unwrap())
            .map(|mv| mv.target.id)
            .collect();
        assert_eq!(targets, BTreeSet::from(["b".to_string(), "c".to_string()]));
        assert!(choose(&masters(""), &planned(0, 0), &[9999], MigrateTarget::Any).is_none());
    }
}
