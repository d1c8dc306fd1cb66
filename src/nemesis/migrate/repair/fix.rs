//! `fix_slot`: closes one open slot by finishing or rolling back its migration (the module doc
//! of `repair` has the table of which).

use super::super::commands::{count_keys_in_slot, keys_in_slot, migrate_cmd, setslot, split_addr};
use super::super::MigrateError;
use super::{err, Master, SlotFix, REPAIR_MIGRATE_TIMEOUT_MS};
use crate::harness::HarnessError;

/// Keys per `MIGRATE` batch when repairing.
const REPAIR_BATCH_KEYS: usize = 100;
/// The most batches repair sends for one slot from one node.
const REPAIR_BATCHES_MAX: usize = 100_000;

/// Fixes one open slot; the inner `Err` is a reason not to touch it.
pub(super) async fn fix_slot(
    nodes: &mut [Master],
    slot: u16,
) -> Result<Result<SlotFix, String>, MigrateError> {
    let owners: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].me.owns(slot))
        .collect();
    let [owner] = owners[..] else {
        return Ok(Err(format!("{} masters claim the slot", owners.len())));
    };
    let open = survey(nodes, slot, owner).await?;
    if let Some(target) = &open.migrating {
        // A target failed over (a replica promoted in its place) owns no slot any more: its data
        // is on the promoted node, among `nodes`, and the slot can be settled without it.
        let owns_slots = |n: &Master| {
            n.view
                .iter()
                .any(|l| &l.id == target && !l.is_replica() && !l.slots.is_empty())
        };
        if !nodes.iter().any(|n| &n.me.id == target) && nodes.iter().any(owns_slots) {
            // The target may hold keys already moved: rolled back now, the owner would answer
            // "absent" for them until the target is back. Left open, clients meet ASK and a
            // target that does not answer, which is the truth.
            return Ok(Err(format!(
                "migrating to {target}, which is not among the masters repair reaches"
            )));
        }
    }
    Ok(Ok(match open.finish_to(nodes) {
        Some(to) => finish(nodes, open, to).await?,
        None => roll_back(nodes, open).await?,
    }))
}

/// An open slot with a single owner, as `fix_slot` found it.
struct OpenSlotState {
    slot: u16,
    /// Index of the owner in the masters.
    owner: usize,
    /// The id of the node the owner migrates the slot to, if it does.
    migrating: Option<String>,
    /// Non-owners importing the slot or holding keys of it.
    importing: Vec<usize>,
    /// Keys of the slot on each master.
    counts: Vec<usize>,
    /// Nodes whose open state was closed so far.
    closed: Vec<String>,
}

impl OpenSlotState {
    /// Where to finish the migration, if it can be finished (see the module doc's table): the
    /// owner's target among the importing nodes, or else the only importing node with keys when
    /// the owner has none.
    fn finish_to(&self, nodes: &[Master]) -> Option<usize> {
        match &self.migrating {
            Some(target_id) => self
                .importing
                .iter()
                .copied()
                .find(|&i| &nodes[i].me.id == target_id),
            None => {
                let with_keys: Vec<usize> = self
                    .importing
                    .iter()
                    .copied()
                    .filter(|&i| self.counts[i] > 0)
                    .collect();
                match with_keys[..] {
                    [only] if self.counts[self.owner] == 0 => Some(only),
                    _ => None,
                }
            }
        }
    }
}

/// Counts the slot's keys on every master and closes a migrating non-owner (it has nothing to
/// hand over), then says who imports.
async fn survey(
    nodes: &mut [Master],
    slot: u16,
    owner: usize,
) -> Result<OpenSlotState, MigrateError> {
    let mut counts = Vec::with_capacity(nodes.len());
    for n in nodes.iter_mut() {
        counts.push(
            count_keys_in_slot(&mut n.admin, slot)
                .await
                .map_err(err(slot, "countkeysinslot"))?,
        );
    }
    let mut closed = Vec::new();
    for (i, n) in nodes.iter_mut().enumerate() {
        if i != owner && n.migrating(slot).is_some() {
            stable(n, slot).await?;
            closed.push(n.peer.addr.clone());
        }
    }
    let importing = (0..nodes.len())
        .filter(|&i| i != owner && (nodes[i].importing(slot).is_some() || counts[i] > 0))
        .collect();
    Ok(OpenSlotState {
        slot,
        owner,
        migrating: nodes[owner].migrating(slot),
        importing,
        counts,
        closed,
    })
}

/// Finishes the migration to `to`: closes the other importing nodes, hands the owner's keys to
/// `to`, then sets the new owner on `to`, the old owner and the rest.
async fn finish(
    nodes: &mut [Master],
    open: OpenSlotState,
    to: usize,
) -> Result<SlotFix, MigrateError> {
    let OpenSlotState {
        slot,
        owner,
        mut closed,
        ..
    } = open;
    for &i in open.importing.iter().filter(|&&i| i != to) {
        stable(&mut nodes[i], slot).await?;
        closed.push(nodes[i].peer.addr.clone());
    }
    if nodes[to].importing(slot).is_none() {
        let source_id = nodes[owner].me.id.clone();
        nodes[to]
            .admin
            .query::<()>(&setslot(slot, "IMPORTING", Some(&source_id)))
            .await
            .map_err(err(slot, "importing"))?;
    }
    let to_addr = nodes[to].peer.addr.clone();
    let moved = move_all(&mut nodes[owner], &to_addr, slot).await?;
    let to_id = nodes[to].me.id.clone();
    let node = setslot(slot, "NODE", Some(&to_id));
    let order = std::iter::once(to)
        .chain(std::iter::once(owner))
        .chain((0..nodes.len()).filter(|&i| i != to && i != owner));
    for i in order {
        nodes[i]
            .admin
            .query::<()>(&node)
            .await
            .map_err(err(slot, "node"))?;
    }
    closed.push(nodes[owner].peer.addr.clone());
    closed.push(to_addr.clone());
    Ok(SlotFix {
        slot,
        action: "finished",
        owner: to_addr,
        keys_moved: moved,
        duplicates_dropped: 0,
        closed,
    })
}

/// Rolls the migration back: the slot stays with its owner, every importing node's keys go back
/// to it (the owner's copy winning, see [`move_back`]) and each is set `STABLE`.
async fn roll_back(nodes: &mut [Master], open: OpenSlotState) -> Result<SlotFix, MigrateError> {
    let OpenSlotState {
        slot,
        owner,
        mut closed,
        ..
    } = open;
    let owner_addr = nodes[owner].peer.addr.clone();
    let owner_id = nodes[owner].me.id.clone();
    if open.migrating.is_some() {
        // A migrating owner answers the RESTORE of a key it lacks with ASK: close it before the
        // keys come back.
        stable(&mut nodes[owner], slot).await?;
        closed.push(owner_addr.clone());
    }
    let (mut moved, mut dropped) = (0, 0);
    for &i in &open.importing {
        if open.counts[i] > 0 && nodes[i].importing(slot).as_ref() != Some(&owner_id) {
            reopen_from(&mut nodes[i], slot, &owner_id).await?;
        }
        let (m, d) = move_back(&mut nodes[i], &owner_addr, slot).await?;
        moved += m;
        dropped += d;
        stable(&mut nodes[i], slot).await?;
        closed.push(nodes[i].peer.addr.clone());
    }
    // Nothing was importing or migrating on the owner: only stale states were closed.
    let action = if open.importing.is_empty() && open.migrating.is_none() {
        "closed"
    } else {
        "rolled-back"
    };
    Ok(SlotFix {
        slot,
        action,
        owner: owner_addr,
        keys_moved: moved,
        duplicates_dropped: dropped,
        closed,
    })
}

/// Teaches `n` the owner of `slot`, then opens it importing from the owner, so `MIGRATE` of its
/// keys back runs there.
///
/// After a failover mid-migration on Redis 7.0 (redis/redis#6339) a node can hold keys of a slot
/// it has not open (the new target master: MIGRATE gets MOVED) or imports from a demoted master
/// (the old target: it ignored the new owner's claim while importing, MIGRATE gets CLUSTERDOWN).
async fn reopen_from(n: &mut Master, slot: u16, owner_id: &str) -> Result<(), MigrateError> {
    for state in ["NODE", "IMPORTING"] {
        n.admin
            .query::<()>(&setslot(slot, state, Some(owner_id)))
            .await
            .map_err(err(slot, "reopen"))?;
    }
    Ok(())
}

/// Sets `slot` `STABLE` on `n`.
async fn stable(n: &mut Master, slot: u16) -> Result<(), MigrateError> {
    n.admin
        .query::<()>(&setslot(slot, "STABLE", None))
        .await
        .map_err(err(slot, "stable"))
}

/// Moves every key of `slot` from the non-owner `from` back to the owner at `to_addr` with
/// `MIGRATE` without `REPLACE`; a key the owner already holds (`BUSYKEY`) is a stale copy (the
/// module doc says why) and is deleted from `from`. Returns the keys moved and the copies dropped.
async fn move_back(
    from: &mut Master,
    to_addr: &str,
    slot: u16,
) -> Result<(usize, usize), MigrateError> {
    let (host, port) = split_addr(to_addr);
    let (mut moved, mut dropped) = (0, 0);
    for _ in 0..REPAIR_BATCHES_MAX {
        let keys = keys_in_slot(&mut from.admin, slot, REPAIR_BATCH_KEYS)
            .await
            .map_err(err(slot, "getkeysinslot"))?;
        if keys.is_empty() {
            return Ok((moved, dropped));
        }
        let batch = migrate_cmd(host, port, REPAIR_MIGRATE_TIMEOUT_MS, false, &keys);
        match from.admin.query::<()>(&batch).await {
            Ok(()) => moved += keys.len(),
            Err(e) if busy(&e) => {
                // Part of the batch may have gone: settle the rest one key at a time.
                for key in &keys {
                    if move_or_drop(from, (host, port), slot, key).await? {
                        dropped += 1;
                    } else {
                        moved += 1;
                    }
                }
            }
            Err(e) => return Err(err(slot, "migrate")(e)),
        }
    }
    Err(MigrateError::NotDraining {
        slot,
        batches: REPAIR_BATCHES_MAX,
    })
}

/// One key of a batch that met `BUSYKEY`, moved (by the batch already, or now) or, when the
/// owner holds it, deleted as a stale copy: `true` if deleted. Reads and deletes go with
/// `ASKING`, which an importing node needs to serve a slot it does not own.
async fn move_or_drop(
    from: &mut Master,
    (host, port): (&str, &str),
    slot: u16,
    key: &str,
) -> Result<bool, MigrateError> {
    let mut pipe = redis::pipe();
    pipe.cmd("ASKING").ignore().cmd("EXISTS").arg(key);
    let exists: Vec<usize> = from.admin.pipe(&pipe).await.map_err(err(slot, "exists"))?;
    if exists.first() == Some(&0) {
        return Ok(false);
    }
    let one = migrate_cmd(
        host,
        port,
        REPAIR_MIGRATE_TIMEOUT_MS,
        false,
        &[key.to_string()],
    );
    match from.admin.query::<()>(&one).await {
        Ok(()) => Ok(false),
        Err(e) if busy(&e) => {
            let mut pipe = redis::pipe();
            pipe.cmd("ASKING").ignore().cmd("DEL").arg(key).ignore();
            from.admin
                .pipe::<()>(&pipe)
                .await
                .map_err(err(slot, "del-stale-copy"))?;
            Ok(true)
        }
        Err(e) => Err(err(slot, "migrate")(e)),
    }
}

/// Whether a command failed because the target already holds the key.
fn busy(e: &HarnessError) -> bool {
    e.to_string().contains("BUSYKEY")
}

/// Moves every key of `slot` from `from` to `to_addr` with `MIGRATE ... REPLACE`.
async fn move_all(from: &mut Master, to_addr: &str, slot: u16) -> Result<usize, MigrateError> {
    let (host, port) = split_addr(to_addr);
    let mut moved = 0;
    for _ in 0..REPAIR_BATCHES_MAX {
        let keys = keys_in_slot(&mut from.admin, slot, REPAIR_BATCH_KEYS)
            .await
            .map_err(err(slot, "getkeysinslot"))?;
        if keys.is_empty() {
            return Ok(moved);
        }
        from.admin
            .query::<()>(&migrate_cmd(
                host,
                port,
                REPAIR_MIGRATE_TIMEOUT_MS,
                true,
                &keys,
            ))
            .await
            .map_err(err(slot, "migrate"))?;
        moved += keys.len();
    }
    Err(MigrateError::NotDraining {
        slot,
        batches: REPAIR_BATCHES_MAX,
    })
}
