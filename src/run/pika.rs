//! The PikiwiDB family in the run pipeline: `slotcheck test --server pikiwidb`'s [`Family`]
//! hooks over [`PikaRun`]: PikiwiDB servers up, slotcheck as their Codis proxy, slots migrating
//! under the workload (the nemesis [`Scheduled`]), the final reads, the placement check
//! ([`PikaPlacement`]) and PikiwiDB's own findings explained in the checked report.

use crate::config::RunConfig;
use crate::harness::ServerFamily;
use crate::pika::explain;
use crate::pika::scenario::{fill_slots, slots_of};
use crate::pika::schedule::{Plan, Scheduled, Summary};
use crate::pika::{PikaCluster, PikaNemesis, PikaPlacement, PikaSpec};
use crate::term::{ok, status, warn};
use anyhow::{Context, Result};
use checker::op::Ops;
use checker::{History, Report};
use serde_json::{json, Map};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use workloads::codis::{CodisTable, SharedCodisTable};

use super::family::{run_family, Family, RunOutcome};
use super::{heal, record, Run};

/// How long one migration may run before it is reported stuck (a run's slots hold few keys:
/// pika moves them in milliseconds).
const MIGRATION_DEADLINE: Duration = Duration::from_secs(5);

/// What a PikiwiDB run carries beyond the common stages: the slot table slotcheck routes by,
/// the migration plan, what the nemesis did and the history's ops.
pub struct PikaRun {
    /// The Codis slot table the workload routes by and the nemesis flips.
    pub table: SharedCodisTable,
    /// Which slots migrate, how and how often.
    pub plan: Plan,
    /// What the nemesis did (after the drive).
    pub nemesis: Summary,
    /// The history's operations (after the verify stage paired them).
    pub ops: Option<Ops>,
    /// Fires when the migration schedule has ended.
    pub scheduled: CancellationToken,
}

/// What a PikiwiDB run produced, for the terminal summary and the exit code.
pub type PikaRunOutcome = RunOutcome<Summary>;

/// Runs one PikiwiDB test end to end; servers are stopped when this returns, also on error.
pub async fn run_pika(cfg: &RunConfig) -> Result<PikaRunOutcome> {
    run_family::<PikaRun>(cfg).await
}

impl Family for PikaRun {
    type Servers = PikaCluster;
    type Nemesis = Scheduled;
    type Placement<'a> = PikaPlacement<'a>;

    async fn open(cfg: &RunConfig) -> Result<Run<PikaCluster, PikaRun>> {
        let cluster = start(cfg).await?;
        record(cfg, &cluster)
    }

    fn nemesis(run: &Run<PikaCluster, PikaRun>) -> Scheduled {
        let mut nemesis = PikaNemesis::new(
            run.cluster.clone(),
            run.family.table.clone(),
            Some(run.recorder.clone()),
        );
        nemesis.options.deadline = MIGRATION_DEADLINE;
        Scheduled {
            plan: run.family.plan.clone(),
            nemesis,
            done: run.family.scheduled.clone(),
        }
    }

    fn prepare(run: &mut Run<PikaCluster, PikaRun>) -> impl Future<Output = Result<()>> {
        prepare(run)
    }

    /// The migrations (which do not watch Ctrl-C) run to the deadline first; Ctrl-C is taken
    /// over for the rest of the run's time.
    async fn hold(run: &mut Run<PikaCluster, PikaRun>, deadline: Instant) -> bool {
        run.family.scheduled.cancelled().await;
        run.interrupt = crate::interrupt::install();
        let left = deadline.saturating_duration_since(Instant::now());
        crate::term::wait(left, &run.interrupt, "running").await
    }

    async fn heal(run: &mut Run<PikaCluster, PikaRun>) -> Result<()> {
        // Nothing to heal (a struck server is restarted within its strike): the final reads.
        if let Err(e) = heal::read_back(run).await {
            warn(&format!("{e:#}"));
        }
        Ok(())
    }

    fn read(run: &Run<PikaCluster, PikaRun>) -> Result<Option<History>> {
        Ok(Some(History::read_file(&run.history_path)?))
    }

    fn placement<'a>(
        run: &'a mut Run<PikaCluster, PikaRun>,
        history: Option<&History>,
    ) -> Result<Option<PikaPlacement<'a>>> {
        let Some(history) = history else {
            return Ok(None);
        };
        let ops = Ops::from_history(history)
            .with_context(|| format!("pairing the ops of {}", run.history_path.display()))?;
        let table = (run.family.table.read())
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok(Some(PikaPlacement {
            addrs: run.cluster.addrs(),
            table,
            ops: run.family.ops.insert(ops),
            nemesis: &run.family.nemesis,
            output: run.cfg.output.clone(),
        }))
    }

    fn annotate(run: &Run<PikaCluster, PikaRun>, history: Option<&History>, report: &mut Report) {
        if let (Some(history), Some(ops)) = (history, &run.family.ops) {
            explain::annotate(history, ops, report);
        }
    }

    fn reported(run: &Run<PikaCluster, PikaRun>) {
        ok(&format!("history: {}", run.history_path.display()));
    }

    fn summary(&mut self) -> &mut Summary {
        &mut self.nemesis
    }
}

/// The start stage: the output directory and the PikiwiDB servers.
async fn start(cfg: &RunConfig) -> Result<Arc<PikaCluster>> {
    std::fs::create_dir_all(&cfg.output)
        .with_context(|| format!("creating output directory {}", cfg.output.display()))?;
    status(&format!("Starting {} PikiwiDB servers", cfg.masters));
    let binary = cfg
        .server_binary
        .clone()
        .context("--server pikiwidb needs its binary")?;
    let spec = PikaSpec {
        binary,
        servers: cfg.masters,
        dir: cfg.output.join("nodes"),
        die_with_parent: true,
    };
    Ok(Arc::new(
        PikaCluster::start(spec)
            .await
            .context("starting PikiwiDB")?,
    ))
}

/// The record stage: the slot table, the workload routed by it, the history with its header,
/// and the migration plan.
fn record(cfg: &RunConfig, cluster: &Arc<PikaCluster>) -> Result<Run<PikaCluster, PikaRun>> {
    let table = CodisTable::new(&cluster.addrs(), cfg.pika_mode).shared();
    let workload = cfg.codis_workload_config(table.clone());
    let (recorder, history_path) = record::open(&cfg.output, header(cfg, cluster))?;
    let plan = Plan {
        slots: slots_of(&workload, cfg.pika_scenario),
        mode: cfg.pika_mode,
        interval: Duration::from_millis(cfg.migrate_interval_ms),
        scenario: cfg.pika_scenario,
        seed: cfg.seed,
    };
    Ok(Run {
        cfg: cfg.clone(),
        // Ctrl-C is taken over once the migrations are done (they do not watch it).
        interrupt: CancellationToken::new(),
        cluster: cluster.clone(),
        workload,
        recorder,
        history_path,
        interrupted: false,
        healed: true,
        verified: None,
        extra_keys: Vec::new(),
        family: PikaRun {
            table,
            plan,
            nemesis: Summary::default(),
            ops: None,
            scheduled: CancellationToken::new(),
        },
    })
}

/// The drive stage's start: what the run is about to do, then the scenario's filler keys.
async fn prepare(run: &mut Run<PikaCluster, PikaRun>) -> Result<()> {
    announce(run);
    let fill = run.cfg.pika_scenario.map_or(0, |s| s.fill_per_slot());
    if fill > 0 {
        let started = Instant::now();
        let keys = fill_slots(&run.workload, &run.family.table, fill).await?;
        ok(&format!(
            "{keys} filler keys written ({fill} per slot) in {:.2} s",
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(())
}

/// Prints what the PikiwiDB run is about to run.
fn announce(run: &Run<PikaCluster, PikaRun>) {
    let cfg = &run.cfg;
    status(&format!(
        "Running the {} workload through slotcheck's Codis routing ({}): {} clients, {} keys, {}, \
         seed {}; migrations of {} slots{}",
        cfg.workload.name(),
        cfg.pika_mode.name(),
        cfg.clients,
        cfg.keys,
        humantime::format_duration(cfg.duration),
        cfg.seed,
        run.family.plan.slots.len(),
        cfg.pika_scenario
            .map(|s| format!(", scenario {}", s.name()))
            .unwrap_or_default()
    ));
}

/// The history header of a PikiwiDB run.
fn header(cfg: &RunConfig, cluster: &PikaCluster) -> checker::Header {
    let mut run = Map::new();
    run.insert("workload".into(), json!(cfg.workload.name()));
    run.insert(
        "client".into(),
        json!({"name": "slotcheck", "version": env!("CARGO_PKG_VERSION"), "redirects": "seen"}),
    );
    run.insert("server".into(), json!(cluster.kind().to_string()));
    run.insert("server_version".into(), json!(cluster.version()));
    run.insert("slots".into(), json!(cluster.slot_function().name()));
    run.insert(
        "routing".into(),
        json!(format!("codis-{}", cfg.pika_mode.name())),
    );
    run.insert("seed".into(), json!(cfg.seed));
    run.insert("masters".into(), json!(cfg.masters));
    run.insert("clients".into(), json!(cfg.clients));
    run.insert("keys".into(), json!(cfg.keys));
    run.insert("rate_per_s".into(), json!(cfg.rate_per_s));
    run.insert("duration_ms".into(), json!(cfg.duration.as_millis() as u64));
    let nodes: Vec<_> = cluster
        .addrs()
        .iter()
        .map(|a| json!({"addr": a, "pid": cluster.pid(a)}))
        .collect();
    run.insert("nodes".into(), json!(nodes));
    if let Some(s) = cfg.pika_scenario {
        run.insert("scenario".into(), json!(s.name()));
    }
    run.insert("mixed_case".into(), json!(cfg.mixed_case()));
    let fill = cfg.pika_scenario.map_or(0, |s| s.fill_per_slot());
    run.insert("fill_per_slot".into(), json!(fill));
    run.insert("start".into(), json!(chrono::Utc::now().to_rfc3339()));
    checker::Header::new(run)
}
