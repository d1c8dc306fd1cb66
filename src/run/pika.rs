//! `slotcheck test --server pikiwidb` as a composition of the run pipeline's stages: PikiwiDB
//! servers up, slotcheck as their Codis proxy, slots migrating under the workload, then the
//! final reads, the placement check (PikiwiDB's verify), the history check and the report.

use crate::config::RunConfig;
use crate::harness::ServerFamily;
use crate::pika::explain;
use crate::pika::placement::check_placement;
use crate::pika::scenario::{fill_slots, slots_of};
use crate::pika::schedule::{self, Plan, Summary};
use crate::pika::{PikaCluster, PikaNemesis, PikaSpec};
use crate::term::{ok, status, warn};
use anyhow::{Context, Result};
use checker::op::Ops;
use checker::{Anomaly, History, Report};
use serde_json::{json, Map};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use workloads::codis::{CodisTable, SharedCodisTable};

use super::{check, drive, heal, record, report, verify, Run};

/// How long one migration may run before it is reported stuck (a run's slots hold few keys:
/// pika moves them in milliseconds).
const MIGRATION_DEADLINE: Duration = Duration::from_secs(5);

/// What a PikiwiDB run carries beyond the common stages: the slot table slotcheck routes by,
/// the migration plan and what the nemesis did.
pub struct PikaRun {
    /// The Codis slot table the workload routes by and the nemesis flips.
    pub table: SharedCodisTable,
    /// Which slots migrate, how and how often.
    pub plan: Plan,
    /// What the nemesis did (after the drive).
    pub nemesis: Summary,
}

/// What a PikiwiDB run produced, for the terminal summary and the exit code.
pub struct PikaRunOutcome {
    /// The verdict: the history check with the placement and type findings merged in.
    pub report: Report,
    /// The recorded history.
    pub history: PathBuf,
    /// Start-up time of the servers.
    pub bring_up: Duration,
    /// What the nemesis did.
    pub nemesis: Summary,
    /// The run's `report.html`, unless it could not be written (a warning says why).
    pub report_html: Option<PathBuf>,
}

/// Runs one PikiwiDB test end to end; servers are stopped when this returns, also on error.
pub async fn run_pika(cfg: &RunConfig) -> Result<PikaRunOutcome> {
    let cluster = start(cfg).await?;
    let result = stages(cfg, &cluster).await;
    cluster.stop();
    result
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

/// Every stage after the start, on the running `cluster`.
async fn stages(cfg: &RunConfig, cluster: &Arc<PikaCluster>) -> Result<PikaRunOutcome> {
    let mut run = record(cfg, cluster)?;
    drive(&mut run).await?;
    if let Err(e) = heal::read_back(&run).await {
        warn(&format!("{e:#}"));
    }
    record::close(&run)?;
    let history = History::read_file(&run.history_path)?;
    let ops = Ops::from_history(&history)
        .with_context(|| format!("pairing the ops of {}", run.history_path.display()))?;
    let mut anomalies = placement(&run, &history, &ops).await;
    anomalies.extend(schedule::anomalies(&run.family.nemesis, &history));
    verify::keep_findings(&mut run, anomalies)?;
    let mut report = check::check(&run, Some(&history))?;
    explain::annotate(&history, &ops, &mut report);
    verify::merge(&run, &mut report, Some(&history))?;
    let output = &run.cfg.output;
    let report_html = report::report(output, &report, Some(&history), &run.history_path)?;
    ok(&format!("history: {}", run.history_path.display()));
    Ok(PikaRunOutcome {
        report,
        history: run.history_path,
        bring_up: cluster.bring_up,
        nemesis: run.family.nemesis,
        report_html,
    })
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
        family: PikaRun {
            table,
            plan,
            nemesis: Summary::default(),
        },
    })
}

/// The drive stage: the scenario's filler keys, then the workload while the migration plan runs,
/// until the run's time is up.
async fn drive(run: &mut Run<PikaCluster, PikaRun>) -> Result<()> {
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
    let stop = CancellationToken::new();
    let workload = drive::spawn_workload(run, &stop);
    let mut nemesis = PikaNemesis::new(
        run.cluster.clone(),
        run.family.table.clone(),
        Some(run.recorder.clone()),
    );
    nemesis.options.deadline = MIGRATION_DEADLINE;
    let deadline = Instant::now() + run.cfg.duration;
    run.family.nemesis = schedule::run(&run.family.plan, &nemesis, deadline).await;
    run.interrupt = crate::interrupt::install();
    let left = deadline.saturating_duration_since(Instant::now());
    run.interrupted = crate::term::wait(left, &run.interrupt, "running").await;
    stop.cancel();
    let stats = workload.await.context("workload task")??;
    tracing::info!(?stats, "workload done");
    schedule::report(&run.family.nemesis);
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

/// PikiwiDB's verify stage: where every key lives against the slot table, each misplaced key
/// explained from the history.
async fn placement(run: &Run<PikaCluster, PikaRun>, history: &History, ops: &Ops) -> Vec<Anomaly> {
    status("Checking where every key lives");
    let addrs = run.cluster.addrs();
    let snapshot = run
        .family
        .table
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    match check_placement(&addrs, &snapshot).await {
        Ok(p) => {
            ok(&format!(
                "{} keys on {} servers, {} misplaced",
                p.keys.len(),
                addrs.len(),
                p.findings.len()
            ));
            p.findings
                .iter()
                .map(|f| explain::placement(f, history, ops))
                .collect()
        }
        Err(e) => {
            warn(&format!("placement check: {e}"));
            Vec::new()
        }
    }
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
