//! The drive stage of any server family: the workload and the family's nemesis run
//! concurrently until the run's time is up (as the family holds it, or Ctrl-C), then both are
//! stopped and what the nemesis did is shown.

use crate::harness::ServerFamily;
use crate::nemesis::schedule::FaultKind;
use crate::nemesis::{ClusterNemesis, Ctx, Nemesis};
use crate::term::{ok, status};
use anyhow::{Context, Result};
use std::time::Instant;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use workloads::{run_workload, workload_slots, WorkloadStats};

use super::family::Family;
use super::Run;

/// The workload and nemesis tasks of a run while they run, `N` its family's nemesis.
pub struct Driving<N: Nemesis> {
    /// Stops both (and whatever else the caller tied to it).
    pub stop: CancellationToken,
    /// When the run's time is up.
    pub deadline: Instant,
    workload: JoinHandle<Result<WorkloadStats, workloads::WorkloadError>>,
    nemesis: JoinHandle<N::Summary>,
}

/// Prints what `slotcheck test` is about to run.
pub fn announce(run: &Run) {
    let cfg = &run.cfg;
    status(&format!(
        "Running {} workload through {} {}: {} clients{}, {} keys, {}, seed {}; nemesis: {}",
        cfg.workload.name(),
        run.family.client.name,
        run.family.client.version,
        cfg.clients,
        match cfg.pipeline {
            0 | 1 => String::new(),
            k => format!(" (pipelines of {k} processes each)"),
        },
        cfg.keys,
        humantime::format_duration(cfg.duration),
        cfg.seed,
        nemesis_names(&cfg.nemesis)
    ));
}

/// Starts the workload and the family's nemesis (its schedule, to the run's deadline).
pub fn spawn<F: Family>(run: &Run<F::Servers, F>) -> Driving<F::Nemesis> {
    let stop = CancellationToken::new();
    let workload = spawn_workload(run, &stop);
    let deadline = Instant::now() + run.cfg.duration;
    let nemesis = tokio::spawn(F::nemesis(run).run(stop.clone(), deadline));
    Driving {
        stop,
        deadline,
        workload,
        nemesis,
    }
}

/// The workload task of `run`, routed as its server family routes, until `stop` fires.
pub fn spawn_workload<S: ServerFamily, F>(
    run: &Run<S, F>,
    stop: &CancellationToken,
) -> JoinHandle<Result<WorkloadStats, workloads::WorkloadError>> {
    let (cfg, seeds, rec, stop) = (
        run.workload.clone(),
        ServerFamily::seeds(&*run.cluster),
        run.recorder.clone(),
        stop.clone(),
    );
    tokio::spawn(async move { run_workload(&cfg, seeds, rec, stop).await })
}

/// Stops the workload and nemesis and waits for both; shows what the nemesis did and keeps it
/// in `run`.
pub async fn finish<F: Family>(
    run: &mut Run<F::Servers, F>,
    driving: Driving<F::Nemesis>,
) -> Result<()> {
    driving.stop.cancel();
    let summary = driving.nemesis.await.context("nemesis task")?;
    let stats = driving.workload.await.context("workload task")??;
    F::Nemesis::report(&summary);
    tracing::info!(?stats, "workload done");
    run.extra_keys = stats.extra_keys;
    *run.family.summary() = summary;
    Ok(())
}

/// The drive stage of any family: what it prepares, then the workload and its nemesis for the
/// run's time as the family holds it (or until Ctrl-C, kept in `run.interrupted`).
pub async fn drive<F: Family>(run: &mut Run<F::Servers, F>) -> Result<()> {
    F::prepare(run).await?;
    let driving = spawn(run);
    run.interrupted = F::hold(run, driving.deadline).await;
    finish(run, driving).await?;
    F::driven(run);
    Ok(())
}

/// Takes the server bug off every proxy and keeps how many requests it hit.
pub fn end_server_bug(run: &mut Run) {
    run.family.server_bug_injected = run.cfg.server_bug.map(|bug| {
        let n: u64 = run.cluster.proxies.iter().map(|p| p.take_injected()).sum();
        for proxy in &run.cluster.proxies {
            proxy.set_bug(None);
        }
        ok(&format!("server bug {bug}: injected {n} times"));
        n
    });
}

/// The nemesis kinds as `--nemesis` spells them, or `none`.
pub(crate) fn nemesis_names(kinds: &[FaultKind]) -> String {
    if kinds.is_empty() {
        return "none".to_string();
    }
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    names.join(",")
}

impl Run {
    /// What the nemesis verbs act on: this run's cluster and recorder.
    pub fn nemesis_ctx(&self) -> Ctx {
        Ctx {
            cluster: self.cluster.clone(),
            recorder: self.recorder.clone(),
        }
    }

    /// The Redis Cluster family's nemesis over this run: its schedule over the workload's slots.
    pub fn cluster_nemesis(&self) -> ClusterNemesis {
        ClusterNemesis {
            ctx: self.nemesis_ctx(),
            schedule: self.family.schedule.clone(),
            slots: workload_slots(&self.workload),
            migrate: self.cfg.migrate.clone(),
            target: self.cfg.migrate_target,
            failover: self.cfg.failover,
            partitioner: self.family.partitioner.clone(),
        }
    }
}
