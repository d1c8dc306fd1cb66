//! The drive stage: the workload and the nemesis run concurrently until the run's time is up
//! (or Ctrl-C), then both are stopped and what the nemesis did is shown.

use crate::harness::ServerFamily;
use crate::nemesis::runner::NemesisSummary;
use crate::nemesis::schedule::FaultKind;
use crate::nemesis::{ClusterNemesis, Ctx, Nemesis};
use crate::term::{ok, status};
use anyhow::{Context, Result};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use workloads::{run_workload, workload_slots, WorkloadStats};

use super::Run;

/// The workload and nemesis tasks of a run while they run.
pub struct Driving {
    /// Stops both (and whatever else the caller tied to it).
    pub stop: CancellationToken,
    workload: JoinHandle<Result<WorkloadStats, workloads::WorkloadError>>,
    nemesis: JoinHandle<NemesisSummary>,
}

/// Prints what `slotcheck test` is about to run.
pub fn announce(run: &Run) {
    let cfg = &run.cfg;
    status(&format!(
        "Running {} workload through {} {}: {} clients, {} keys, {}, seed {}; nemesis: {}",
        cfg.workload.name(),
        run.family.client.name,
        run.family.client.version,
        cfg.clients,
        cfg.keys,
        humantime::format_duration(cfg.duration),
        cfg.seed,
        nemesis_names(&cfg.nemesis)
    ));
}

/// Starts the workload and the nemesis (with the run's schedule over the workload's slots).
pub fn spawn(run: &Run) -> Driving {
    let stop = CancellationToken::new();
    let workload = spawn_workload(run, &stop);
    let deadline = std::time::Instant::now() + run.cfg.duration;
    let nemesis = tokio::spawn(run.cluster_nemesis().run(stop.clone(), deadline));
    Driving {
        stop,
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

/// Stops the workload and nemesis and waits for both; keeps what the nemesis did in `run`.
pub async fn finish(run: &mut Run, driving: Driving) -> Result<()> {
    driving.stop.cancel();
    run.family.nemesis = driving.nemesis.await.context("nemesis task")?;
    let stats = driving.workload.await.context("workload task")??;
    ClusterNemesis::report(&run.family.nemesis);
    tracing::info!(?stats, "workload done");
    Ok(())
}

/// Drives `run` for its duration (or until Ctrl-C, kept in `run.interrupted`).
pub async fn drive(run: &mut Run) -> Result<()> {
    let driving = spawn(run);
    run.interrupted = crate::term::wait(run.cfg.duration, &run.interrupt, "running").await;
    finish(run, driving).await
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
            failover: self.cfg.failover,
            partitioner: self.family.partitioner.clone(),
        }
    }
}
