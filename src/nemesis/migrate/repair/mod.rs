//! `repair`: close every open slot the way `redis-cli --cluster fix` does, and report keys that sit
//! on a master that does not own their slot. Plus `wait_no_open_slots` and `open_slots_on`.
//!
//! For each open slot (a master's own `CLUSTER NODES` line shows `[s->-id]` migrating or
//! `[s-<-id]` importing), with O the single master that claims the slot, and — as redis-cli does —
//! any non-owner holding keys of the slot counted as importing:
//!
//! | migrating | importing | action |
//! |---|---|---|
//! | O → T | T | *finish*: move O's remaining keys to T, then `SETSLOT NODE T` on T, O, the rest |
//! | O | none | *roll back*: `SETSLOT STABLE` on O |
//! | O → T | T and others | finish to T; `STABLE` on the others (their keys reported stranded) |
//! | O → X | some, X not among them | roll back: `STABLE` on O, move their keys to O, `STABLE` on them |
//! | O → X, X not reached, a master owning slots | any | *unfixed*: X may hold moved keys; wait until it is back |
//! | none | I (O has no keys, only I has keys) | *finish* to I (nothing to move) |
//! | none | I... | *roll back*: move their keys to O, then `STABLE` on each |
//!
//! Moving keys back to the owner, the owner's copy wins: while a slot is open its owner serves
//! every key it holds and answers `ASK` only for keys it lacks, so a key on both the owner and a
//! non-owner is a stale copy on the non-owner, left by a `MIGRATE` that failed after the target
//! had restored the key (`IOERR` when the target was killed or paused mid-batch). Such a copy is
//! deleted, not written over the owner's newer value (`duplicates_dropped`), as `redis-cli
//! --cluster fix` refuses to replace a key whose content differs. Keys moved the other way (to
//! the target a migration is finished to) go with `REPLACE`: there the owner's copy is the one
//! that travels.
//!
//! A non-owner with keys that does not import from the owner is told the owner (`SETSLOT NODE`)
//! and set `IMPORTING` from it before its keys are moved back, or it would answer `MIGRATE` with
//! `MOVED` or `CLUSTERDOWN`. A migrating node that is not the owner
//! is first set `STABLE`, then treated like any other
//! non-owner (action `closed` if that was all: Redis 7.0 leaves this state on the old owner after
//! `finalize_early`). A
//! slot with no owner or several owners is reported `unfixed`. Stable slots are not touched: keys
//! on a non-owner there (left by `abort`) are only reported, since moving them could overwrite
//! newer values; `redis-cli --cluster check` does not see them at all. Keys are moved with
//! `MIGRATE ... REPLACE`, as redis-cli's fix mode does on `BUSYKEY`.

mod fix;

use super::commands::keys_in_slot;
use super::{MigrateError, Peer, MIGRATE_SLACK_MS};
use crate::harness::{parse_nodes, Admin, HarnessError, NodeLine, SLOT_COUNT};
use fix::fix_slot;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use workloads::Recorder;

/// `MIGRATE` timeout when repairing.
const REPAIR_MIGRATE_TIMEOUT_MS: u64 = 5000;
/// `COUNTKEYSINSLOT` commands per pipeline when scanning for stranded keys.
const SCAN_PIPELINE_SLOTS: u16 = 1024;
/// Sample keys listed per stranded slot.
const STRANDED_SAMPLE_KEYS: usize = 20;

/// What repair did to one open slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotFix {
    /// The slot.
    pub slot: u16,
    /// `finished` (slot moved to `owner`), `rolled-back` (slot stayed with `owner`) or `closed`
    /// (only a non-owner's stale `MIGRATING` was cleared).
    pub action: &'static str,
    /// The owner afterwards.
    pub owner: String,
    /// Keys moved by repair for this slot.
    pub keys_moved: usize,
    /// Stale copies deleted from a non-owner because the owner holds the key (see `fix`).
    pub duplicates_dropped: usize,
    /// Nodes whose open state was closed.
    pub closed: Vec<String>,
}

/// Keys on a master that does not own their slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stranded {
    /// The slot.
    pub slot: u16,
    /// The node holding them.
    pub node: String,
    /// How many.
    pub keys: usize,
    /// A few of them.
    pub sample: Vec<String>,
}

/// Everything repair found and did.
#[derive(Debug, Clone, Default)]
pub struct RepairReport {
    /// Open slots closed.
    pub fixed: Vec<SlotFix>,
    /// Keys left on non-owners (not moved).
    pub stranded: Vec<Stranded>,
    /// Open slots repair would not touch, with why.
    pub unfixed: Vec<(u16, String)>,
    /// Total keys moved.
    pub keys_moved: usize,
}

/// One master as it sees itself.
struct Master {
    peer: Peer,
    admin: Admin,
    me: NodeLine,
    /// Its whole `CLUSTER NODES` when repair connected: how it sees the nodes repair cannot reach.
    view: Vec<NodeLine>,
}

impl Master {
    /// `Some(target id)` if this node has `slot` migrating.
    fn migrating(&self, slot: u16) -> Option<String> {
        open_entry(&self.me, slot, "->-")
    }

    /// `Some(source id)` if this node has `slot` importing.
    fn importing(&self, slot: u16) -> Option<String> {
        open_entry(&self.me, slot, "-<-")
    }
}

/// Parses `[slot->-id]` / `[slot-<-id]` entries of a node's own line.
fn open_entry(me: &NodeLine, slot: u16, arrow: &str) -> Option<String> {
    me.open_slots.iter().find_map(|e| {
        let inner = e.trim_start_matches('[').trim_end_matches(']');
        let (s, id) = inner.split_once(arrow)?;
        (s.parse::<u16>().ok()? == slot).then(|| id.to_string())
    })
}

/// Slots a node's own line shows open.
pub(super) fn open_slots(me: &NodeLine) -> Vec<u16> {
    me.open_slots
        .iter()
        .filter_map(|e| {
            let inner = e.trim_start_matches('[');
            let end = inner.find(|c: char| !c.is_ascii_digit())?;
            inner[..end].parse().ok()
        })
        .collect()
}

fn err(slot: u16, step: &'static str) -> impl Fn(HarnessError) -> MigrateError {
    move |source| MigrateError::Step { slot, step, source }
}

async fn connect_all(masters: &[Peer]) -> Result<Vec<Master>, MigrateError> {
    let mut out = Vec::with_capacity(masters.len());
    for peer in masters {
        let mut admin =
            Admin::connect_with_timeout(&peer.addr, REPAIR_MIGRATE_TIMEOUT_MS + MIGRATE_SLACK_MS)
                .await
                .map_err(err(0, "connect"))?;
        let view = cluster_view(&mut admin).await?;
        let me = own_line(&admin, view.clone())?;
        out.push(Master {
            peer: peer.clone(),
            admin,
            me,
            view,
        });
    }
    Ok(out)
}

/// Every line of the node's `CLUSTER NODES`.
async fn cluster_view(admin: &mut Admin) -> Result<Vec<NodeLine>, MigrateError> {
    let text = admin
        .text(&["CLUSTER", "NODES"])
        .await
        .map_err(err(0, "cluster-nodes"))?;
    parse_nodes(&text).ok_or_else(|| MigrateError::Reply {
        addr: admin.addr().to_string(),
        command: "CLUSTER NODES",
        detail: "unparsable".to_string(),
    })
}

/// The node's own line of `CLUSTER NODES`.
async fn myself(admin: &mut Admin) -> Result<NodeLine, MigrateError> {
    let view = cluster_view(admin).await?;
    own_line(admin, view)
}

/// The `myself` line among `view`, `admin`'s node's.
fn own_line(admin: &Admin, view: Vec<NodeLine>) -> Result<NodeLine, MigrateError> {
    view.into_iter()
        .find(|l| l.has_flag("myself"))
        .ok_or_else(|| MigrateError::Reply {
            addr: admin.addr().to_string(),
            command: "CLUSTER NODES",
            detail: "no myself line".to_string(),
        })
}

/// Waits until no master in `masters` shows an open slot; errors after `timeout_ms`.
pub async fn wait_no_open_slots(masters: &[Peer], timeout_ms: u64) -> Result<(), MigrateError> {
    let started = Instant::now();
    let deadline = started + Duration::from_millis(timeout_ms);
    let mut admins = Vec::with_capacity(masters.len());
    for peer in masters {
        admins.push(
            Admin::connect(&peer.addr)
                .await
                .map_err(err(0, "connect"))?,
        );
    }
    loop {
        let open = open_now(&mut admins).await?;
        if open.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(MigrateError::Timeout {
                waiting_for: "no open slots".to_string(),
                elapsed_ms: started.elapsed().as_millis() as u64,
                last_seen: open.join("; "),
            });
        }
        tokio::time::sleep(Duration::from_millis(crate::nemesis::POLL_MS)).await;
    }
}

/// Open slots on each node at `addrs` as its own line shows them (`"addr [..]"`, none when
/// empty): the check `redis-cli --cluster reshard` makes before it moves anything. A node that
/// cannot be asked is an error, since its slots are then unknown.
pub async fn open_slots_on(addrs: &[&str], timeout_ms: u64) -> Result<Vec<String>, MigrateError> {
    let mut admins = Vec::with_capacity(addrs.len());
    for addr in addrs {
        admins.push(
            Admin::connect_with_timeout(addr, timeout_ms)
                .await
                .map_err(err(0, "connect"))?,
        );
    }
    open_now(&mut admins).await
}

/// One `CLUSTER NODES` per admin: `"addr [open entries]"` for each node with an open slot.
async fn open_now(admins: &mut [Admin]) -> Result<Vec<String>, MigrateError> {
    let mut open = Vec::new();
    for admin in admins.iter_mut() {
        let me = myself(admin).await?;
        if !me.open_slots.is_empty() {
            open.push(format!("{} {:?}", admin.addr(), me.open_slots));
        }
    }
    Ok(open)
}

/// Closes every open slot among `masters` (finishing or rolling back, see the module doc), reports
/// stranded keys, and records `repair` `begin`, one `repair-step` per fixed slot (`finished` /
/// `rolled-back`), per stranded slot (`stranded`) and per unfixed slot (`unfixed`), and `repair`
/// `end` with the totals.
///
/// A repair that fails records its `end` with the `error`, so the history never holds a repair
/// that seems to last until the next one.
pub async fn repair(recorder: &Recorder, masters: &[Peer]) -> Result<RepairReport, MigrateError> {
    let started = Instant::now();
    recorder.nemesis(
        "repair",
        json!({"phase": "begin", "nodes": masters.iter().map(|m| &m.addr).collect::<Vec<_>>()}),
    );
    let result = repair_open(recorder, masters).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let end = match &result {
        Ok(report) => json!({"phase": "end", "fixed": report.fixed.len(),
            "unfixed": report.unfixed.len(),
            "stranded": report.stranded.iter().map(|s| s.keys).sum::<usize>(),
            "keys_moved": report.keys_moved, "duration_ms": duration_ms}),
        Err(e) => json!({"phase": "end", "error": e.to_string(), "duration_ms": duration_ms}),
    };
    recorder.nemesis("repair", end);
    result
}

/// `repair`'s work between its `begin` and its `end`.
async fn repair_open(recorder: &Recorder, masters: &[Peer]) -> Result<RepairReport, MigrateError> {
    let mut nodes = connect_all(masters).await?;
    let mut open: Vec<u16> = nodes.iter().flat_map(|n| open_slots(&n.me)).collect();
    open.sort_unstable();
    open.dedup();
    let mut report = RepairReport::default();
    for slot in open {
        match fix_slot(&mut nodes, slot).await? {
            Ok(fix) => {
                recorder.nemesis(
                    "repair-step",
                    json!({"phase": fix.action, "slot": slot, "to": fix.owner,
                           "keys_moved": fix.keys_moved,
                           "duplicates_dropped": fix.duplicates_dropped, "closed": fix.closed}),
                );
                report.keys_moved += fix.keys_moved;
                report.fixed.push(fix);
            }
            Err(reason) => {
                recorder.nemesis(
                    "repair-step",
                    json!({"phase": "unfixed", "slot": slot, "reason": reason}),
                );
                report.unfixed.push((slot, reason));
            }
        }
        for n in nodes.iter_mut() {
            n.me = myself(&mut n.admin).await?;
        }
    }
    for n in nodes.iter_mut() {
        for (slot, keys) in stranded_counts(n).await? {
            let sample = keys_in_slot(&mut n.admin, slot, STRANDED_SAMPLE_KEYS)
                .await
                .map_err(err(slot, "getkeysinslot"))?;
            recorder.nemesis(
                "repair-step",
                json!({"phase": "stranded", "slot": slot, "node": n.peer.addr,
                       "keys": keys, "sample": sample}),
            );
            report.stranded.push(Stranded {
                slot,
                node: n.peer.addr.clone(),
                keys,
                sample,
            });
        }
    }
    Ok(report)
}

/// Counts of keys this node holds in slots it does not own and does not have open.
async fn stranded_counts(n: &mut Master) -> Result<Vec<(u16, usize)>, MigrateError> {
    let dbsize: usize = n.admin.run(&["DBSIZE"]).await.map_err(err(0, "dbsize"))?;
    if dbsize == 0 {
        return Ok(Vec::new());
    }
    let client = redis::Client::open(format!("redis://{}/", n.peer.addr))
        .map_err(|e| err(0, "connect")(command_error(&n.peer.addr, e)))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(1000)))
        .set_response_timeout(Some(Duration::from_millis(5000)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| err(0, "connect")(command_error(&n.peer.addr, e)))?;
    let others: Vec<u16> = (0..SLOT_COUNT as u16)
        .filter(|&s| !n.me.owns(s) && n.migrating(s).is_none() && n.importing(s).is_none())
        .collect();
    let mut out = Vec::new();
    for chunk in others.chunks(SCAN_PIPELINE_SLOTS as usize) {
        let mut pipe = redis::pipe();
        for slot in chunk {
            pipe.cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(*slot);
        }
        let counts: Vec<usize> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| err(0, "countkeysinslot")(command_error(&n.peer.addr, e)))?;
        out.extend(
            chunk
                .iter()
                .zip(counts)
                .filter(|(_, c)| *c > 0)
                .map(|(s, c)| (*s, c)),
        );
    }
    Ok(out)
}

fn command_error(addr: &str, source: redis::RedisError) -> HarnessError {
    HarnessError::Command {
        addr: addr.to_string(),
        command: "CLUSTER COUNTKEYSINSLOT (pipelined)".to_string(),
        source,
    }
}

/// Masters as `addr -> id`, read from one node's view, for callers that only know addresses.
pub async fn masters_seen_by(addr: &str) -> Result<Vec<Peer>, MigrateError> {
    let mut admin = Admin::connect(addr).await.map_err(err(0, "connect"))?;
    let text = admin
        .text(&["CLUSTER", "NODES"])
        .await
        .map_err(err(0, "cluster-nodes"))?;
    let lines = parse_nodes(&text).ok_or_else(|| MigrateError::Reply {
        addr: addr.to_string(),
        command: "CLUSTER NODES",
        detail: "unparsable".to_string(),
    })?;
    let peers: BTreeMap<String, String> = lines
        .into_iter()
        .filter(|l| !l.is_replica() && !l.troubled())
        .map(|l| (l.addr, l.id))
        .collect();
    Ok(peers
        .into_iter()
        .map(|(addr, id)| Peer { addr, id })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_entries_name_the_peer() {
        let lines = parse_nodes(
            "a 1.2.3.4:1@2 myself,master - 0 0 1 connected 0-99 [5->-bbb] [200-<-ccc]\n",
        )
        .unwrap();
        let me = &lines[0];
        assert_eq!(open_entry(me, 5, "->-"), Some("bbb".to_string()));
        assert_eq!(open_entry(me, 200, "-<-"), Some("ccc".to_string()));
        assert_eq!(open_entry(me, 5, "-<-"), None);
        assert_eq!(open_slots(me), vec![5, 200]);
    }
}
