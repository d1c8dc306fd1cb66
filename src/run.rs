//! One test run: start a cluster, run the workload under the nemesis, heal, read back, check.

use crate::config::RunConfig;
use crate::harness::proxy::bug::{BugConfig, ServerBug, P_DEFAULT};
use crate::harness::{Cluster, ClusterSpec};
use crate::nemesis::runner::{self, NemesisSummary};
use crate::nemesis::schedule::{FaultKind, Schedule};
use crate::nemesis::{net, Ctx};
use crate::term::{error, ok, status, warn};
use anyhow::{Context, Result};
use checker::{analyze_redirects, CheckOptions, History, ModelKind, Report};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use workloads::{
    final_reads, run_workload, workload_slots, ClientInfo, Recorder, SlotMap, WorkloadKind,
};

/// What a run produced, for the terminal summary and the exit code.
pub struct RunOutcome {
    /// The checker's verdict and statistics.
    pub report: Report,
    /// The recorded history.
    pub history: PathBuf,
    /// The history as read for verify, the check and the report (`None` past
    /// [`STREAM_BYTES_MIN`], where it was checked streaming).
    pub loaded: Option<History>,
    /// Fresh-process bring-up time of the cluster.
    pub bring_up: Duration,
    /// What the nemesis did.
    pub nemesis: NemesisSummary,
    /// Whether the user interrupted the run with Ctrl-C.
    pub interrupted: bool,
    /// With a server bug, how many requests it hit during the workload.
    pub server_bug_injected: Option<u64>,
    /// The run's `report.html`, unless it could not be written (a warning says why).
    pub report_html: Option<PathBuf>,
}

/// Runs one test end to end. Servers are stopped and faults healed when this returns, also on
/// error.
pub async fn run_test(cfg: &RunConfig) -> Result<RunOutcome> {
    let interrupt = crate::interrupt::install();
    std::fs::create_dir_all(&cfg.output)
        .with_context(|| format!("creating output directory {}", cfg.output.display()))?;
    let (cluster, partitioner) = start_cluster(cfg).await?;

    if let Some(bug) = cfg.server_bug {
        set_server_bug(&cluster, bug, cfg.seed, P_DEFAULT);
    }
    let schedule = cfg.schedule();
    let history_path = cfg.output.join("history.jsonl");
    let client = client_info(cfg, &cluster).await?;
    let recorder = Recorder::create(&history_path, header(cfg, &cluster, &schedule, &client))
        .with_context(|| format!("creating {}", history_path.display()))?;
    let workload_cfg = cfg.workload_config();
    let seeds = cluster.seeds();
    let slots = workload_slots(&workload_cfg);

    status(&format!(
        "Running {} workload through {} {}: {} clients, {} keys, {}, seed {}; nemesis: {}",
        cfg.workload.name(),
        client.name,
        client.version,
        cfg.clients,
        cfg.keys,
        humantime::format_duration(cfg.duration),
        cfg.seed,
        nemesis_names(&cfg.nemesis)
    ));
    let stop = CancellationToken::new();
    let workload = tokio::spawn({
        let (cfg, seeds, rec, stop) = (
            workload_cfg.clone(),
            seeds.clone(),
            recorder.clone(),
            stop.clone(),
        );
        async move { run_workload(&cfg, seeds, rec, stop).await }
    });
    let (ctx, nemesis) = spawn_nemesis(
        cfg,
        &cluster,
        &recorder,
        schedule,
        slots,
        &partitioner,
        &stop,
    );

    let interrupted = crate::term::wait(cfg.duration, &interrupt, "running").await;
    stop.cancel();
    let nemesis = nemesis.await.context("nemesis task")?;
    let stats = workload.await.context("workload task")??;
    report_nemesis(&nemesis);
    let server_bug_injected = cfg.server_bug.map(|bug| {
        let n: u64 = cluster.proxies.iter().map(|p| p.take_injected()).sum();
        for proxy in &cluster.proxies {
            proxy.set_bug(None);
        }
        ok(&format!("server bug {bug}: injected {n} times"));
        n
    });
    tracing::info!(?stats, "workload done");

    status("Healing every fault and waiting for the cluster to settle");
    let healed = runner::heal_all(&ctx, partitioner.as_deref()).await;
    drop(partitioner);
    match &healed {
        Ok(()) if !interrupted => {
            status(&format!("Reading every key once more ({} keys)", cfg.keys));
            let reading = crate::term::spinner(&format!("final reads of {} keys", cfg.keys));
            let read = final_reads(&workload_cfg, seeds, recorder.clone()).await;
            reading.finish_and_clear();
            read.context("final reads")?;
        }
        Ok(()) => {}
        Err(e) => warn(&format!("the cluster did not settle, no final reads: {e}")),
    }
    recorder
        .close()
        .with_context(|| format!("writing {}", history_path.display()))?;
    let history = read_unless_large(&history_path)?;
    let mut findings = Vec::new();
    if healed.is_ok() && !interrupted {
        findings = verify_nodes(&cluster, history.as_ref(), &cfg.output).await?;
    }
    let bring_up = cluster.bring_up;
    cluster.stop();

    status("Checking history");
    let checking = crate::term::spinner("checking the history");
    let report = check_run(&history_path, history.as_ref(), model_of(cfg.workload));
    checking.finish_and_clear();
    let mut report = report?;
    crate::verify::merge(&mut report, &findings, history.as_ref())?;
    crate::report::write_results(&cfg.output, &report)?;
    let drawing = crate::term::spinner("writing report.html");
    let report_html = match &history {
        Some(h) => crate::report::write(&cfg.output, h, &report),
        None => crate::report::write_for_history(&cfg.output, &history_path, &report),
    };
    drawing.finish_and_clear();
    let report_html = report_html
        .map_err(|e| warn(&format!("no report.html: {e:#}")))
        .ok();
    Ok(RunOutcome {
        report,
        history: history_path,
        loaded: history,
        bring_up,
        nemesis,
        interrupted,
        server_bug_injected,
        report_html,
    })
}

/// Runs `slotcheck verify` on the healed cluster (by the nodes' own addresses, past any proxy),
/// with the history when it was small enough to read whole; writes `verify.json` into `output`.
/// A verify that cannot finish is a warning: the run's history is still checked. Returns the
/// findings, to merge into the check's report.
async fn verify_nodes(
    cluster: &Cluster,
    history: Option<&History>,
    output: &Path,
) -> Result<Vec<checker::Anomaly>> {
    status("Verifying what the nodes hold against the slot map and the history");
    if history.is_none() {
        warn("history too large to read whole: final values not judged by verify");
    }
    let seeds: Vec<String> = cluster.nodes.iter().map(|n| n.addr.clone()).collect();
    let opts = crate::verify::VerifyOptions::default();
    match crate::verify::verify(&seeds, history, &opts).await {
        Ok(v) => {
            crate::verify::print(&v);
            crate::verify::write(output, &v)?;
            Ok(v.anomalies)
        }
        Err(e) => {
            warn(&format!("verify did not finish: {e}"));
            Ok(Vec::new())
        }
    }
}

/// Starts the cluster `cfg` asks for (with distinct hosts and an iptables chain when it
/// partitions, with proxies when it slows nodes or injects a server bug), dying with slotcheck.
pub(crate) async fn start_cluster(
    cfg: &RunConfig,
) -> Result<(Arc<Cluster>, Option<Arc<net::Partitioner>>)> {
    let partitions = cfg.nemesis.contains(&FaultKind::Partition);
    // Chains of runs that died (SIGKILL, a second signal) go first, on any machine that can
    // partition, whether or not this run does.
    if net::available().is_ok() {
        match net::cleanup_stale() {
            Ok(0) => {}
            Ok(n) => warn(&format!(
                "removed {n} iptables chains left by dead slotcheck runs"
            )),
            Err(e) if partitions => {
                return Err(e).context("removing iptables chains of dead runs");
            }
            Err(e) => warn(&format!(
                "could not remove iptables chains of dead runs: {e}"
            )),
        }
    }
    let partitioner = if partitions {
        Some(Arc::new(
            net::Partitioner::new().context("creating the iptables chain")?,
        ))
    } else {
        None
    };
    let mut spec = ClusterSpec::new(
        cfg.server,
        cfg.masters,
        cfg.replicas,
        cfg.output.join("cluster"),
    );
    spec.die_with_parent = true;
    spec.persistence = cfg.persistence;
    spec.distinct_hosts = partitions;
    spec.proxy = cfg.nemesis.contains(&FaultKind::Slow) || cfg.server_bug.is_some();
    status(&format!(
        "Starting {} masters, {} replicas per master ({}, persistence {})",
        cfg.masters, cfg.replicas, cfg.server, cfg.persistence
    ));
    let starting = crate::term::spinner("starting the cluster");
    let cluster = Cluster::start(spec).await.context("starting the cluster");
    starting.finish_and_clear();
    let cluster = Arc::new(cluster?);
    ok(&format!(
        "{} {} cluster ready in {:.2} s",
        cluster.kind,
        cluster.version,
        cluster.bring_up.as_secs_f64()
    ));
    tracing::info!(
        bring_up_ms = cluster.bring_up.as_millis() as u64,
        "cluster ready"
    );
    Ok((cluster, partitioner))
}

/// Starts the nemesis on `cluster` with `schedule` over the workload's `slots`; returns its
/// context (to heal with afterwards) and its task, which ends when `stop` fires.
pub(crate) fn spawn_nemesis(
    cfg: &RunConfig,
    cluster: &Arc<Cluster>,
    recorder: &Recorder,
    schedule: Schedule,
    slots: Vec<u16>,
    partitioner: &Option<Arc<net::Partitioner>>,
    stop: &CancellationToken,
) -> (Ctx, tokio::task::JoinHandle<NemesisSummary>) {
    let ctx = Ctx {
        cluster: cluster.clone(),
        recorder: recorder.clone(),
    };
    let task = tokio::spawn(runner::run(
        ctx.clone(),
        schedule,
        slots,
        cfg.migrate.clone(),
        cfg.failover,
        partitioner.clone(),
        stop.clone(),
    ));
    (ctx, task)
}

/// Puts `bug` on every node's proxy, hitting a request with probability `p` (0: requests are
/// relayed RESP-aware and none is hit yet), each seeded by `seed` and its index, with the other
/// nodes' announced addresses as `MOVED` targets.
pub(crate) fn set_server_bug(cluster: &Cluster, bug: ServerBug, seed: u64, p: f64) {
    let addrs: Vec<String> = cluster
        .proxies
        .iter()
        .map(|p| p.addr().to_string())
        .collect();
    for (i, proxy) in cluster.proxies.iter().enumerate() {
        proxy.set_bug(Some(BugConfig {
            bug,
            p,
            seed: seed ^ ((i as u64) << 48),
            peers: addrs
                .iter()
                .filter(|a| *a != proxy.addr())
                .cloned()
                .collect(),
        }));
    }
}

pub(crate) fn nemesis_names(kinds: &[FaultKind]) -> String {
    if kinds.is_empty() {
        return "none".to_string();
    }
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    names.join(",")
}

pub(crate) fn report_nemesis(summary: &NemesisSummary) {
    let done: Vec<String> = summary
        .done
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    ok(&format!(
        "nemesis: {} ({} keys moved by migrations)",
        if done.is_empty() {
            "nothing".to_string()
        } else {
            done.join(", ")
        },
        summary.keys_moved
    ));
    for (kind, n) in &summary.skipped {
        warn(&format!(
            "{kind}: {n} skipped (no fitting target at the time)"
        ));
    }
    for failure in &summary.failures {
        warn(failure);
    }
    for crash in &summary.crashes {
        error(&format!("server crash: {crash}"));
    }
}

/// Histories at least this large are checked streaming, so that memory grows with the ops rather
/// than with the text; their reports then lack the redirect-aware context.
pub const STREAM_BYTES_MIN: u64 = 256 << 20;

/// Checks the slotcheck history at `path` against `model`. Below `stream_bytes_min` bytes (or for
/// models other than the register) the whole history is read and the report gets redirect-aware
/// context: slot, migration phase, faults and hops of each explained op (`analyze_redirects`).
pub fn check_history(
    path: &Path,
    model: ModelKind,
    opts: &CheckOptions,
    stream_bytes_min: u64,
) -> Result<Report> {
    let name = path.display().to_string();
    let bytes = std::fs::metadata(path)
        .map_err(|source| checker::HistoryError::Io {
            path: name.clone(),
            source,
        })?
        .len();
    if bytes >= stream_bytes_min && model == ModelKind::Register {
        return Ok(checker::check_file(path, model, opts)?);
    }
    let history = History::read_file(path)?;
    check_loaded(&history, path, model, opts)
}

/// Checks a history already read from `path` against `model`, with the redirect-aware context.
pub fn check_loaded(
    history: &History,
    path: &Path,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<Report> {
    let name = path.display();
    let mut report = checker::check(history, model, opts)
        .with_context(|| format!("checking {name} as {model}"))?;
    analyze_redirects(history, model, opts, &mut report)
        .with_context(|| format!("analysing the redirects of {name}"))?;
    Ok(report)
}

/// The model a workload's history is checked against.
pub fn model_of(workload: WorkloadKind) -> ModelKind {
    match workload {
        WorkloadKind::Register => ModelKind::Register,
        WorkloadKind::Counter => ModelKind::Counter,
        WorkloadKind::Types => ModelKind::Types,
    }
}

/// Asks the run's client what it is (an external adapter names its library's version), with
/// the nodes to open it against.
pub(crate) async fn client_info(cfg: &RunConfig, cluster: &Cluster) -> Result<ClientInfo> {
    let factory = cfg
        .workload_config()
        .factory(cluster.seeds(), SlotMap::new().shared());
    factory
        .info()
        .await
        .map_err(|e| anyhow::anyhow!("opening client {}: {e}", cfg.client.name()))
}

/// Reads a run's history at `path` whole, once, for verify, the check and the report; `None`
/// when it is [`STREAM_BYTES_MIN`] or more, to be checked streaming.
pub fn read_unless_large(path: &Path) -> Result<Option<History>> {
    let small = std::fs::metadata(path).is_ok_and(|m| m.len() < STREAM_BYTES_MIN);
    Ok(if small {
        Some(History::read_file(path)?)
    } else {
        None
    })
}

/// `slotcheck test`'s (and `report`'s) check of a run's history at `path` with `model`: the
/// `history` [`read_unless_large`] read, else the file, streaming; warnings are shown.
pub fn check_run(path: &Path, history: Option<&History>, model: ModelKind) -> Result<Report> {
    let opts = CheckOptions::default();
    let report = match history {
        Some(h) => check_loaded(h, path, model, &opts)?,
        None => check_history(path, model, &opts, STREAM_BYTES_MIN)?,
    };
    for w in &report.warnings {
        warn(w);
    }
    Ok(report)
}

/// The history header: what produced this run, with its seed.
pub(crate) fn header(
    cfg: &RunConfig,
    cluster: &Cluster,
    schedule: &Schedule,
    client: &ClientInfo,
) -> checker::Header {
    let mut run = Map::new();
    run.insert("workload".into(), json!(cfg.workload.name()));
    run.insert("client".into(), json!(client));
    run.insert("server".into(), json!(cfg.server.to_string()));
    run.insert("server_version".into(), json!(cluster.version));
    run.insert("seed".into(), json!(cfg.seed));
    run.insert("masters".into(), json!(cfg.masters));
    run.insert("replicas".into(), json!(cfg.replicas));
    run.insert("clients".into(), json!(cfg.clients));
    run.insert("keys".into(), json!(cfg.keys));
    run.insert("rate_per_s".into(), json!(cfg.rate_per_s));
    run.insert("duration_ms".into(), json!(cfg.duration.as_millis() as u64));
    let nodes: Vec<Value> = cluster
        .nodes
        .iter()
        .map(|n| {
            let mut node = json!({"addr": n.addr, "id": n.id, "pid": n.pid});
            if let Some(proxy) = cluster.proxy(&n.addr) {
                node["proxy"] = json!(proxy.addr());
            }
            node
        })
        .collect();
    run.insert("nodes".into(), Value::Array(nodes));
    run.insert("nemesis".into(), json!(cfg.nemesis));
    run.insert("persistence".into(), json!(cfg.persistence.name()));
    run.insert("failover".into(), json!(cfg.failover.name()));
    run.insert(
        "node_timeout_ms".into(),
        json!(crate::harness::NODE_TIMEOUT_MS_DEFAULT),
    );
    run.insert("nemesis_schedule".into(), json!(schedule));
    if let Some(bug) = cfg.client_bug {
        run.insert("client_bug".into(), json!(bug));
    }
    if let Some(bug) = cfg.server_bug {
        run.insert("server_bug".into(), json!(bug));
    }
    if let Some(scenario) = cfg.scenario {
        run.insert("scenario".into(), json!(scenario));
    }
    run.insert("start".into(), json!(chrono::Utc::now().to_rfc3339()));
    checker::Header::new(run)
}
