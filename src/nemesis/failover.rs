//! Failover: a manual `CLUSTER FAILOVER [FORCE|TAKEOVER]` sent to a replica, and waiting for the
//! automatic promotion of a replica after its master was killed or paused; plus the helpers that pick
//! targets from what the cluster says now (`masters_now`, `replicas_of`).
//!
//! With `cluster-node-timeout` 2000 ms the team measured: a dead master is flagged FAIL after ~3 s,
//! a replica is promoted ~1 s later, and clients get `CLUSTERDOWN` for its slots in between.
//!
//! Both verbs are recorded as `f: "failover"` with `value.mode` one of `default`, `force`,
//! `takeover` (manual) or `auto` (a promotion we waited for), `node` the replica (manual) or the old
//! master (auto), and on `end` the promoted node (`promoted`, `id`) and `took_ms`.

use std::time::{Duration, Instant};

use serde_json::json;

use super::error::NemesisError;
use super::Ctx;
use crate::harness::{parse_nodes, Admin, HarnessError, NodeLine, ProcessState};

/// How long a manual failover may take to be agreed by every reachable node (a default failover
/// gives up by itself after 5 s; the rest is gossip).
const FAILOVER_TIMEOUT_MS: u64 = 20_000;

/// Which `CLUSTER FAILOVER` a replica is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverMode {
    /// Coordinated with the master (which must be reachable): no acknowledged write is lost.
    Default,
    /// Without the master's agreement, but with a vote of the majority of masters.
    Force,
    /// Without any agreement: the replica bumps the epoch on its own.
    Takeover,
}

impl FailoverMode {
    /// The name recorded in the history (`default`, `force`, `takeover`).
    pub fn name(self) -> &'static str {
        match self {
            FailoverMode::Default => "default",
            FailoverMode::Force => "force",
            FailoverMode::Takeover => "takeover",
        }
    }

    fn words(self) -> &'static [&'static str] {
        match self {
            FailoverMode::Default => &["CLUSTER", "FAILOVER"],
            FailoverMode::Force => &["CLUSTER", "FAILOVER", "FORCE"],
            FailoverMode::Takeover => &["CLUSTER", "FAILOVER", "TAKEOVER"],
        }
    }
}

/// Which failovers the `failover` nemesis sends (`--failover`): one kind, or the seeded mix.
/// Only `default` is safe by design; `force` and `takeover` may drop writes the master
/// acknowledged but had not yet replicated, so they are opted into.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverChoice {
    /// Always `CLUSTER FAILOVER` (coordinated with the master).
    #[default]
    Default,
    /// Always `CLUSTER FAILOVER FORCE`.
    Force,
    /// Always `CLUSTER FAILOVER TAKEOVER`.
    Takeover,
    /// Default, FORCE or TAKEOVER, as each planned failover's seeded variant draws.
    Mixed,
}

impl FailoverChoice {
    /// Every choice, in a fixed order.
    pub const ALL: [FailoverChoice; 4] = [
        FailoverChoice::Default,
        FailoverChoice::Force,
        FailoverChoice::Takeover,
        FailoverChoice::Mixed,
    ];

    /// The command-line name, also recorded in the history header (`failover`).
    pub fn name(self) -> &'static str {
        match self {
            FailoverChoice::Default => "default",
            FailoverChoice::Force => "force",
            FailoverChoice::Takeover => "takeover",
            FailoverChoice::Mixed => "mixed",
        }
    }

    /// The mode of a planned failover with this `variant`.
    pub fn mode(self, variant: u32) -> FailoverMode {
        const MODES: [FailoverMode; 3] = [
            FailoverMode::Default,
            FailoverMode::Force,
            FailoverMode::Takeover,
        ];
        match self {
            FailoverChoice::Default => FailoverMode::Default,
            FailoverChoice::Force => FailoverMode::Force,
            FailoverChoice::Takeover => FailoverMode::Takeover,
            FailoverChoice::Mixed => MODES[variant as usize % MODES.len()],
        }
    }
}

impl std::fmt::Display for FailoverChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for FailoverChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FailoverChoice::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                format!("unknown failover `{s}`: expected default, force, takeover or mixed")
            })
    }
}

/// A replica that became master, as every reachable node agrees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// The new master's address.
    pub node: String,
    /// Its node id.
    pub id: String,
    /// From the verb's start until every reachable node agreed and said `cluster_state:ok`.
    pub took_ms: u64,
}

/// Asks the replica at `replica_addr` to fail over its master and waits, with a deadline, until it
/// reports itself master and every reachable node agrees and says `cluster_state:ok`.
pub async fn failover(
    ctx: &Ctx,
    replica_addr: &str,
    mode: FailoverMode,
) -> Result<Promotion, NemesisError> {
    let value = json!({"node": replica_addr, "mode": mode.name()});
    ctx.begin("failover", value.clone());
    let start = Instant::now();
    let result = manual_failover(ctx, replica_addr, mode, start, true).await;
    end_promotion(ctx, value, &result);
    result
}

/// As [`failover`], but waits only until every reachable node lists the replica as a master
/// with slots, whatever `cluster_state` they report: the failover has happened and is known, whether
/// or not the cluster is healthy yet. For
/// a failover in the middle of a migration, where Redis 7.0's importing target can keep
/// `cluster_state:fail` until the slot is repaired (redis/redis#6339). Recorded the same way,
/// with `agreed: false` on the `end`.
pub async fn failover_landed(
    ctx: &Ctx,
    replica_addr: &str,
    mode: FailoverMode,
) -> Result<Promotion, NemesisError> {
    let value = json!({"node": replica_addr, "mode": mode.name(), "agreed": false});
    ctx.begin("failover", value.clone());
    let start = Instant::now();
    let result = manual_failover(ctx, replica_addr, mode, start, false).await;
    end_promotion(ctx, value, &result);
    result
}

/// Sends the failover; waits until every reachable node lists the replica as a master with
/// slots and (`everywhere`) says `cluster_state:ok`.
async fn manual_failover(
    ctx: &Ctx,
    replica_addr: &str,
    mode: FailoverMode,
    start: Instant,
    everywhere: bool,
) -> Result<Promotion, NemesisError> {
    let mut admin = Admin::connect(replica_addr).await?;
    let id: String = admin.run(&["CLUSTER", "MYID"]).await?;
    match admin.run::<String>(mode.words()).await {
        Ok(reply) if reply == "OK" => {}
        Ok(reply) => return Err(refused(replica_addr, format!("replied {reply:?}"))),
        Err(HarnessError::Command { source, .. })
            if matches!(source.kind(), redis::ErrorKind::Server(_)) =>
        {
            return Err(refused(replica_addr, source.to_string()))
        }
        Err(e) => return Err(e.into()),
    }
    let what = if everywhere {
        format!("{replica_addr} to be master on every reachable node")
    } else {
        format!("{replica_addr} to be master with slots in every reachable node's view")
    };
    wait_until(ctx, start, FAILOVER_TIMEOUT_MS, &what, |views| {
        promoted_problem(views, &id, everywhere)
    })
    .await?;
    Ok(Promotion {
        node: replica_addr.to_string(),
        id,
        took_ms: start.elapsed().as_millis() as u64,
    })
}

/// Waits until a replica of the master at `old_master_addr` (killed, paused or cut off) has been
/// promoted by the cluster itself and every reachable node agrees and says `cluster_state:ok`.
/// The clock starts at the call, so call it right after the fault to measure the failover.
pub async fn wait_promoted(
    ctx: &Ctx,
    old_master_addr: &str,
    timeout_ms: u64,
) -> Result<Promotion, NemesisError> {
    let value = json!({"node": old_master_addr, "mode": "auto"});
    ctx.begin("failover", value.clone());
    let start = Instant::now();
    let result = auto_failover(ctx, old_master_addr, timeout_ms, start).await;
    end_promotion(ctx, value, &result);
    result
}

async fn auto_failover(
    ctx: &Ctx,
    old_master_addr: &str,
    timeout_ms: u64,
    start: Instant,
) -> Result<Promotion, NemesisError> {
    let old_id = node_id(ctx, old_master_addr)?;
    let candidates: Vec<String> = replicas_of(ctx, old_master_addr)
        .await?
        .into_iter()
        .map(|l| l.id)
        .collect();
    if candidates.is_empty() {
        return Err(refused(
            old_master_addr,
            "has no replica to promote".to_string(),
        ));
    }
    let what = format!("a replica of {old_master_addr} to be promoted on every reachable node");
    let mut winner = None;
    wait_until(ctx, start, timeout_ms, &what, |views| {
        let (_, _, lines) = views.first()?;
        let Some(new) = candidates.iter().find(|id| {
            lines
                .iter()
                .any(|l| &l.id == *id && l.has_flag("master") && !l.slots.is_empty())
        }) else {
            return Some(format!("no replica of {old_id} owns slots yet"));
        };
        winner = Some(new.clone());
        promoted_problem(views, new, true)
    })
    .await?;
    let id = winner.expect("set when the wait succeeded");
    let node = ctx
        .cluster
        .nodes
        .iter()
        .find(|n| n.id == id)
        .map(|n| n.addr.clone())
        .unwrap_or_default();
    Ok(Promotion {
        node,
        id,
        took_ms: start.elapsed().as_millis() as u64,
    })
}

/// The masters that serve slots now and are not flagged `fail`, as a reachable node sees them.
pub async fn masters_now(ctx: &Ctx) -> Result<Vec<NodeLine>, NemesisError> {
    let lines = view(ctx).await?;
    Ok(lines
        .into_iter()
        .filter(|l| l.has_flag("master") && !l.has_flag("fail") && !l.slots.is_empty())
        .collect())
}

/// The masters migrations and repairs work with: [`masters_now`], and in a cluster started
/// with spare masters also every master that owns no slots and is not troubled (a spare, or one
/// a migration emptied), since those are migration targets there.
pub async fn masters_for_moves(ctx: &Ctx) -> Result<Vec<NodeLine>, NemesisError> {
    if ctx.cluster.spare_masters == 0 {
        return masters_now(ctx).await;
    }
    let lines = view(ctx).await?;
    Ok(lines
        .into_iter()
        .filter(|l| l.has_flag("master") && !l.troubled())
        .collect())
}

/// The replicas of the node at `master_addr` that are not flagged `fail`, as a reachable node sees
/// them (the master itself may be down).
pub async fn replicas_of(ctx: &Ctx, master_addr: &str) -> Result<Vec<NodeLine>, NemesisError> {
    let master_id = node_id(ctx, master_addr)?;
    let lines = view(ctx).await?;
    Ok(lines
        .into_iter()
        .filter(|l| {
            l.is_replica()
                && !l.has_flag("fail")
                && l.master_id.as_deref() == Some(master_id.as_str())
        })
        .collect())
}

/// `CLUSTER NODES` of the first node whose process runs and answers.
pub async fn view(ctx: &Ctx) -> Result<Vec<NodeLine>, NemesisError> {
    let mut last = String::from("no node runs");
    for node in &ctx.cluster.nodes {
        if ctx.cluster.process_state(&node.addr) != Some(ProcessState::Running) {
            continue;
        }
        match look(&node.addr).await {
            Ok((_, lines)) => return Ok(lines),
            Err(e) => last = e.to_string(),
        }
    }
    Err(NemesisError::Refused {
        node: "cluster".to_string(),
        reason: format!("no node answered CLUSTER NODES: {last}"),
    })
}

/// Waits until every reachable node says `cluster_state:ok` and no reachable node flags the node at
/// `addr` as failing; for a restarted or resumed node to count as back in the cluster.
pub async fn wait_rejoined(ctx: &Ctx, addr: &str, timeout_ms: u64) -> Result<(), NemesisError> {
    let id = node_id(ctx, addr)?;
    let what = format!("{addr} to rejoin (not failing anywhere, cluster_state:ok everywhere)");
    wait_until(ctx, Instant::now(), timeout_ms, &what, |views| {
        if !views.iter().any(|(a, _, _)| a == addr) {
            return Some(format!("{addr} does not answer"));
        }
        for (seen_by, state, lines) in views {
            if state != "ok" {
                return Some(format!("{seen_by} says cluster_state:{state}"));
            }
            match lines.iter().find(|l| l.id == id) {
                None => return Some(format!("{seen_by} does not list {addr}")),
                Some(l) if l.troubled() => {
                    return Some(format!("{seen_by} sees {addr} as {}", l.flags.join(",")))
                }
                Some(_) => {}
            }
        }
        None
    })
    .await
}

/// One node's answer: its address, its `cluster_state` and its `CLUSTER NODES`.
pub(crate) type Seen = (String, String, Vec<NodeLine>);

/// Polls the reachable nodes until `problem` finds none, or the deadline passes.
pub(crate) async fn wait_until(
    ctx: &Ctx,
    start: Instant,
    timeout_ms: u64,
    what: &str,
    mut problem: impl FnMut(&[Seen]) -> Option<String>,
) -> Result<(), NemesisError> {
    loop {
        let views = reachable(ctx).await;
        let last = if views.is_empty() {
            "no node answers".to_string()
        } else {
            match problem(&views) {
                None => return Ok(()),
                Some(p) => p,
            }
        };
        let waited_ms = start.elapsed().as_millis() as u64;
        if waited_ms >= timeout_ms {
            return Err(NemesisError::Timeout {
                what: format!("{what}; last: {last}"),
                waited_ms,
            });
        }
        tokio::time::sleep(Duration::from_millis(super::POLL_MS)).await;
    }
}

/// Views of every node whose process runs and that answers within the probe timeout.
async fn reachable(ctx: &Ctx) -> Vec<Seen> {
    let mut views = Vec::with_capacity(ctx.cluster.nodes.len());
    for node in &ctx.cluster.nodes {
        if ctx.cluster.process_state(&node.addr) != Some(ProcessState::Running) {
            continue;
        }
        if let Ok((state, lines)) = look(&node.addr).await {
            views.push((node.addr.clone(), state, lines));
        }
    }
    views
}

/// `cluster_state` and `CLUSTER NODES` of one node.
async fn look(addr: &str) -> Result<(String, Vec<NodeLine>), HarnessError> {
    let mut admin = Admin::probe(addr).await?;
    let info = admin.text(&["CLUSTER", "INFO"]).await?;
    let state = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("cluster_state:"))
        .unwrap_or("?")
        .to_string();
    let text = admin.text(&["CLUSTER", "NODES"]).await?;
    let lines = parse_nodes(&text).ok_or_else(|| HarnessError::Reply {
        addr: addr.to_string(),
        command: "CLUSTER NODES".to_string(),
        detail: format!("malformed: {:?}", text.lines().next().unwrap_or("")),
    })?;
    Ok((state, lines))
}

/// Why the node with `id` is not yet the agreed master with slots everywhere (with every node
/// saying `cluster_state:ok` if `state_ok`), if it is not.
fn promoted_problem(views: &[Seen], id: &str, state_ok: bool) -> Option<String> {
    for (seen_by, state, lines) in views {
        if state_ok && state != "ok" {
            return Some(format!("{seen_by} says cluster_state:{state}"));
        }
        match lines.iter().find(|l| l.id == id) {
            None => return Some(format!("{seen_by} does not list {id}")),
            Some(l) if !l.has_flag("master") || l.slots.is_empty() || l.troubled() => {
                return Some(format!(
                    "{seen_by} sees {id} as {} with {} slot ranges",
                    l.flags.join(","),
                    l.slots.len()
                ))
            }
            Some(_) => {}
        }
    }
    None
}

/// The id of the node at `addr` (stable across restarts: it lives in `nodes.conf`).
fn node_id(ctx: &Ctx, addr: &str) -> Result<String, NemesisError> {
    ctx.cluster
        .node(addr)
        .map(|n| n.id.clone())
        .ok_or_else(|| refused(addr, "not a node of this cluster".to_string()))
}

fn refused(node: &str, reason: String) -> NemesisError {
    NemesisError::Refused {
        node: node.to_string(),
        reason,
    }
}

/// Records the end of a failover with the promoted node or the error.
fn end_promotion(
    ctx: &Ctx,
    mut value: serde_json::Value,
    result: &Result<Promotion, NemesisError>,
) {
    match result {
        Ok(p) => {
            value["promoted"] = json!(p.node);
            value["id"] = json!(p.id);
            value["took_ms"] = json!(p.took_ms);
            ctx.end("failover", value, None);
        }
        Err(e) => ctx.end("failover", value, Some(&e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failover_choices_parse_and_pick_their_modes() {
        for c in FailoverChoice::ALL {
            assert_eq!(c.name().parse::<FailoverChoice>(), Ok(c));
        }
        assert!("forced".parse::<FailoverChoice>().is_err());
        assert_eq!(FailoverChoice::default(), FailoverChoice::Default);
        for v in 0..6 {
            assert_eq!(FailoverChoice::Default.mode(v), FailoverMode::Default);
            assert_eq!(FailoverChoice::Force.mode(v), FailoverMode::Force);
            assert_eq!(FailoverChoice::Takeover.mode(v), FailoverMode::Takeover);
        }
        let mixed: Vec<&str> = (0..3)
            .map(|v| FailoverChoice::Mixed.mode(v).name())
            .collect();
        assert_eq!(mixed, ["default", "force", "takeover"]);
    }
}
