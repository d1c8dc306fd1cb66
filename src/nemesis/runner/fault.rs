//! The fault stream's actions: one node fault per planned fault (kill, pause, failover,
//! partition, slow), held for its `hold_ms` and undone by its inverse.

use super::super::error::NemesisError;
use super::super::failover::{self, FailoverChoice};
use super::super::link;
use super::super::net::{Partition, Partitioner};
use super::super::process;
use super::super::schedule::{FaultKind, Planned};
use super::super::Ctx;
use super::lock;
use crate::harness::NodeLine;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One fault of the fault stream, held for `p.hold_ms` (cut short by `stop`) and undone.
/// `Ok(false)` when no target fits right now.
pub(super) async fn fault(
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
    let began = Instant::now();
    let target = match p.kind {
        FaultKind::Kill => Some(kill(ctx, p, &node, killing, stop).await?),
        FaultKind::Pause => {
            process::pause(ctx, &node).await?;
            hold(p, stop).await;
            process::resume(ctx, &node).await?;
            Some(node)
        }
        FaultKind::Failover => fail_over(ctx, p, choice).await?,
        FaultKind::Partition => match partitioner {
            Some(partitioner) => {
                partitioner.partition(ctx, shape(p, &node, &nodes))?;
                hold(p, stop).await;
                partitioner.heal(ctx)?;
                Some(node)
            }
            None => None,
        },
        FaultKind::Slow => slow(ctx, p, stop).await?,
        other => unreachable!("{other} is not a node fault"),
    };
    let Some(target) = target else {
        return Ok(false);
    };
    tracing::info!(
        kind = %p.kind,
        target = %target,
        variant = p.variant,
        duration_ms = began.elapsed().as_millis() as u64,
        "fault done and undone"
    );
    Ok(true)
}

/// Waits `p.hold_ms`, or until `stop` fires.
async fn hold(p: &Planned, stop: &CancellationToken) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(Duration::from_millis(p.hold_ms)) => {}
    }
}

/// Kills `node` (odd variants stop it gracefully: SIGTERM, AOF flushed), holds, restarts it;
/// returns the target as the run log names it. The crash watcher leaves it alone meanwhile.
async fn kill(
    ctx: &Ctx,
    p: &Planned,
    node: &str,
    killing: &Mutex<BTreeSet<String>>,
    stop: &CancellationToken,
) -> Result<String, NemesisError> {
    lock(killing).insert(node.to_string());
    let graceful = p.variant % 2 == 1;
    let killed = if graceful {
        process::shutdown(ctx, node).await
    } else {
        process::kill(ctx, node).await
    };
    if killed.is_ok() {
        hold(p, stop).await;
    }
    let restarted = process::restart(ctx, node).await;
    lock(killing).remove(node);
    killed?;
    restarted?;
    Ok(if graceful {
        format!("{node} (graceful)")
    } else {
        node.to_string()
    })
}

/// Fails over a healthy replica chosen by `p.target`, in the mode `choice` gives `p.variant`;
/// `None` if there is no healthy replica.
async fn fail_over(
    ctx: &Ctx,
    p: &Planned,
    choice: FailoverChoice,
) -> Result<Option<String>, NemesisError> {
    let mut replicas: Vec<NodeLine> = failover::view(ctx)
        .await?
        .into_iter()
        .filter(|l| l.is_replica() && !l.troubled())
        .collect();
    if replicas.is_empty() {
        return Ok(None);
    }
    replicas.sort_by(|a, b| a.addr.cmp(&b.addr));
    let replica = &replicas[p.target as usize % replicas.len()];
    let mode = choice.mode(p.variant);
    failover::failover(ctx, &replica.addr, mode).await?;
    Ok(Some(format!("{} ({})", replica.addr, mode.name())))
}

/// The partition `p.variant` asks for around `node`: isolated, cut from clients, or with the
/// next node as a minority against the rest; one way for some variants.
fn shape(p: &Planned, node: &str, nodes: &[String]) -> Partition {
    let one_way = (p.variant / 3) % 2 == 1;
    match p.variant % 3 {
        0 => Partition::Isolate {
            node: node.to_string(),
            one_way,
        },
        1 => Partition::ClientsFrom {
            node: node.to_string(),
            one_way,
        },
        _ => {
            // A minority (this node and the next) against the rest.
            let i = p.target as usize % nodes.len();
            let a = vec![nodes[i].clone(), nodes[(i + 1) % nodes.len()].clone()];
            let b = nodes.iter().filter(|n| !a.contains(n)).cloned().collect();
            Partition::Nodes { a, b, one_way }
        }
    }
}

/// Slows a master's proxy with the faults planned for `p`, holds, and takes them off; `None` if
/// there is no master. A master's proxy carries clients (a replica's carries no one's traffic).
async fn slow(
    ctx: &Ctx,
    p: &Planned,
    stop: &CancellationToken,
) -> Result<Option<String>, NemesisError> {
    let mut masters = failover::masters_now(ctx).await?;
    if masters.is_empty() {
        return Ok(None);
    }
    masters.sort_by(|a, b| a.addr.cmp(&b.addr));
    let master = masters[p.target as usize % masters.len()].addr.clone();
    let faults = link::planned(p);
    link::slow(ctx, &master, &faults)?;
    hold(p, stop).await;
    link::fast(ctx, &master)?;
    Ok(Some(format!("{master} ({faults})")))
}
