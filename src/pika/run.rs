//! `slotcheck test --server pikiwidb`: PikiwiDB servers, slotcheck as their Codis proxy, slots
//! migrating under the workload, then the history check and the placement and type checks.

use super::explain;
use super::nemesis::PikaNemesis;
use super::placement::check_placement;
use super::scenario::PikaScenario;
use super::schedule::{self, Plan, Summary};
use super::server::{PikaCluster, PikaSpec};
use crate::run::{check_loaded, model_of};
use crate::term::{ok, status, warn};
use anyhow::{Context, Result};
use checker::op::Ops;
use checker::{CheckOptions, History, Report};
use serde_json::{json, Map};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use workloads::codis::{CodisRouting, CodisTable, MigrationMode, SharedCodisTable};
use workloads::{final_reads, run_workload, workload_keys, Recorder, WorkloadConfig, WorkloadKind};

/// How long one migration may run before it is reported stuck (a run's slots hold few keys:
/// pika moves them in milliseconds).
const MIGRATION_DEADLINE: Duration = Duration::from_secs(5);

/// Everything a PikiwiDB run needs, validated before any server starts.
#[derive(Debug, Clone)]
pub struct PikaRunConfig {
    /// The `pika` binary.
    pub binary: PathBuf,
    /// Servers started (slots split evenly over them).
    pub servers: usize,
    /// Which workload the clients run.
    pub workload: WorkloadKind,
    /// Concurrent logical client processes.
    pub clients: usize,
    /// Keys the workload spreads over.
    pub keys: usize,
    /// Target operations per second over all clients; 0 for unpaced.
    pub rate_per_s: u64,
    /// How long the workload and nemesis run.
    pub duration: Duration,
    /// Seeds the workload and the nemesis; recorded in the history header.
    pub seed: u64,
    /// Where the run's files go.
    pub output: PathBuf,
    /// How the proxy crosses a migrating slot, and which migration command the nemesis uses
    /// (sync: `SLOTSMGRTTAGSLOT`; semi-async: `SLOTSMGRTTAGSLOT-ASYNC`).
    pub mode: MigrationMode,
    /// Mean pause between migrations.
    pub migrate_interval: Duration,
    /// Per-request timeout of the workload's clients.
    pub timeout_ms: u64,
    /// The named scenario this run is, if any (its preset is already applied).
    pub scenario: Option<PikaScenario>,
    /// Key names with capitals (the `types` workload).
    pub mixed_case: bool,
}

impl PikaRunConfig {
    /// The workload this run drives: no compare-and-set, since PikiwiDB has no `EVAL`, so the
    /// register workload is plain `SET`/`GET`.
    pub fn workload_config(&self, table: SharedCodisTable) -> WorkloadConfig {
        WorkloadConfig {
            kind: self.workload,
            key_prefix: format!("{}:", self.workload.name()),
            clients: self.clients,
            keys: self.keys,
            rate_per_s: self.rate_per_s,
            seed: self.seed,
            timeout_ms: self.timeout_ms,
            codis: Some(CodisRouting(table)),
            mixed_case: self.mixed_case,
            cas_weight: 0,
            ..WorkloadConfig::default()
        }
    }
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
pub async fn run(cfg: &PikaRunConfig) -> Result<PikaRunOutcome> {
    std::fs::create_dir_all(&cfg.output)
        .with_context(|| format!("creating output directory {}", cfg.output.display()))?;
    status(&format!("Starting {} PikiwiDB servers", cfg.servers));
    let spec = PikaSpec {
        binary: cfg.binary.clone(),
        servers: cfg.servers,
        dir: cfg.output.join("nodes"),
        die_with_parent: true,
    };
    let cluster = Arc::new(
        PikaCluster::start(spec)
            .await
            .context("starting PikiwiDB")?,
    );
    let result = run_on(cfg, &cluster).await;
    cluster.stop();
    result
}

async fn run_on(cfg: &PikaRunConfig, cluster: &Arc<PikaCluster>) -> Result<PikaRunOutcome> {
    let addrs = cluster.addrs();
    let table = CodisTable::new(&addrs, cfg.mode).shared();
    let workload_cfg = cfg.workload_config(table.clone());
    let history_path = cfg.output.join("history.jsonl");
    let recorder = Recorder::create(&history_path, header(cfg, cluster))
        .with_context(|| format!("creating {}", history_path.display()))?;
    let mut nemesis = PikaNemesis::new(cluster.clone(), table.clone(), Some(recorder.clone()));
    nemesis.options.deadline = MIGRATION_DEADLINE;
    let plan = Plan {
        slots: slots_of(&workload_cfg, cfg.scenario),
        mode: cfg.mode,
        interval: cfg.migrate_interval,
        scenario: cfg.scenario,
        seed: cfg.seed,
    };
    status(&format!(
        "Running the {} workload through slotcheck's Codis routing ({}): {} clients, {} keys, {}, \
         seed {}; migrations of {} slots{}",
        cfg.workload.name(),
        cfg.mode.name(),
        cfg.clients,
        cfg.keys,
        humantime::format_duration(cfg.duration),
        cfg.seed,
        plan.slots.len(),
        cfg.scenario
            .map(|s| format!(", scenario {}", s.name()))
            .unwrap_or_default()
    ));
    let fill = cfg.scenario.map_or(0, |s| s.fill_per_slot());
    if fill > 0 {
        let started = Instant::now();
        let keys = fill_slots(&workload_cfg, &table, fill).await?;
        ok(&format!(
            "{keys} filler keys written ({fill} per slot) in {:.2} s",
            started.elapsed().as_secs_f64()
        ));
    }
    let stop = CancellationToken::new();
    let workload = tokio::spawn({
        let (wcfg, rec, stop) = (workload_cfg.clone(), recorder.clone(), stop.clone());
        async move { run_workload(&wcfg, Vec::new(), rec, stop).await }
    });
    let deadline = Instant::now() + cfg.duration;
    let summary = schedule::run(&plan, &nemesis, deadline).await;
    crate::term::wait(
        deadline.saturating_duration_since(Instant::now()),
        &crate::interrupt::install(),
        "running",
    )
    .await;
    stop.cancel();
    let stats = workload.await.context("workload task")??;
    tracing::info!(?stats, "workload done");
    schedule::report(&summary);

    status("Reading every key once more");
    if let Err(e) = final_reads(&workload_cfg, Vec::new(), recorder.clone()).await {
        warn(&format!("final reads: {e}"));
    }
    recorder
        .close()
        .with_context(|| format!("writing {}", history_path.display()))?;
    let history = History::read_file(&history_path)?;
    let ops = Ops::from_history(&history)
        .with_context(|| format!("pairing the ops of {}", history_path.display()))?;

    status("Checking where every key lives");
    let snapshot = table.read().unwrap_or_else(|p| p.into_inner()).clone();
    let mut anomalies = match check_placement(&addrs, &snapshot).await {
        Ok(p) => {
            ok(&format!(
                "{} keys on {} servers, {} misplaced",
                p.keys.len(),
                addrs.len(),
                p.findings.len()
            ));
            p.findings
                .iter()
                .map(|f| explain::placement(f, &history, &ops))
                .collect()
        }
        Err(e) => {
            warn(&format!("placement check: {e}"));
            Vec::new()
        }
    };
    anomalies.extend(schedule::anomalies(&summary, &history));
    std::fs::write(
        cfg.output.join(crate::verify::VERIFY_FILE),
        serde_json::to_vec_pretty(&json!({ "anomalies": anomalies }))?,
    )?;

    status("Checking history");
    let mut report = check_loaded(
        &history,
        &history_path,
        model_of(cfg.workload),
        &CheckOptions::default(),
    )?;
    explain::annotate(&history, &ops, &mut report);
    crate::verify::merge(&mut report, &anomalies, Some(&history))?;
    crate::report::write_results(&cfg.output, &report)?;
    let report_html = crate::report::write(&cfg.output, &history, &report)
        .map_err(|e| warn(&format!("no report.html: {e:#}")))
        .ok();
    ok(&format!("history: {}", history_path.display()));
    Ok(PikaRunOutcome {
        report,
        history: history_path,
        bring_up: cluster.bring_up,
        nemesis: summary,
        report_html,
    })
}

/// Writes `per_slot` keys in the slot of each workload key (`<key>:fill:<j>` when the key has a
/// hash tag, else `{<key>}:fill:<j>`), pipelined to the slot's owner; returns how many.
async fn fill_slots(
    cfg: &WorkloadConfig,
    table: &SharedCodisTable,
    per_slot: usize,
) -> Result<usize> {
    const BATCH: usize = 500;
    let mut written = 0;
    // One link per owner, made on first use.
    let mut links: std::collections::HashMap<String, super::link::Link> = Default::default();
    for key in workload_keys(cfg) {
        let owner = table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .route_key(key.as_bytes())
            .1
            .owner
            .to_string();
        let link = links
            .entry(owner.clone())
            .or_insert_with(|| super::link::Link::new(&owner, Duration::from_secs(10)));
        for start in (0..per_slot).step_by(BATCH) {
            let mut pipe = redis::pipe();
            for j in start..(start + BATCH).min(per_slot) {
                pipe.cmd("SET").arg(filler(&key, j)).arg(j).ignore();
            }
            link.pipe::<()>(&pipe, "SET (filler pipeline)")
                .await
                .with_context(|| format!("writing filler keys for {key} to {owner}"))?;
            written += (start + BATCH).min(per_slot) - start;
        }
    }
    Ok(written)
}

/// Filler key `j` in `key`'s slot.
fn filler(key: &str, j: usize) -> String {
    let tagged = format!("{key}:fill:{j}");
    match checker::codis_slot(tagged.as_bytes()) == checker::codis_slot(key.as_bytes()) {
        true if key.contains('{') => tagged,
        _ => format!("{{{key}}}:fill:{j}"),
    }
}

/// The Codis slots of the workload's keys that the scenario migrates: the ones worth moving.
fn slots_of(cfg: &WorkloadConfig, scenario: Option<PikaScenario>) -> Vec<u16> {
    let keys: Vec<String> = workload_keys(cfg)
        .into_iter()
        .filter(|k| scenario.is_none_or(|s| s.migrates(k)))
        .collect();
    workloads::slots_of(&keys, checker::codis_slot)
}

/// The history header of a PikiwiDB run.
fn header(cfg: &PikaRunConfig, cluster: &PikaCluster) -> checker::Header {
    let mut run = Map::new();
    run.insert("workload".into(), json!(cfg.workload.name()));
    run.insert(
        "client".into(),
        json!({"name": "slotcheck", "version": env!("CARGO_PKG_VERSION"), "redirects": "seen"}),
    );
    run.insert("server".into(), json!("pikiwidb"));
    run.insert("server_version".into(), json!(cluster.version()));
    run.insert(
        "slots".into(),
        json!(checker::SlotFunction::name(&checker::CodisSlots)),
    );
    run.insert(
        "routing".into(),
        json!(format!("codis-{}", cfg.mode.name())),
    );
    run.insert("seed".into(), json!(cfg.seed));
    run.insert("masters".into(), json!(cfg.servers));
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
    if let Some(s) = cfg.scenario {
        run.insert("scenario".into(), json!(s.name()));
    }
    run.insert("mixed_case".into(), json!(cfg.mixed_case));
    let fill = cfg.scenario.map_or(0, |s| s.fill_per_slot());
    run.insert("fill_per_slot".into(), json!(fill));
    run.insert("start".into(), json!(chrono::Utc::now().to_rfc3339()));
    checker::Header::new(run)
}
