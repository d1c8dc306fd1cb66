//! `slotcheck clients`: the same workload and nemeses against each client under test, a table of
//! what each run found. A client library that mishandles `MOVED`, `ASK` or `TRYAGAIN`, or that
//! resends a request it may already have sent, shows up as anomalies the reference client
//! (slotcheck's own router) does not have under the same scenario.

use crate::bench::page::Table;
use crate::config::RunConfig;
use crate::harness::ServerKind;
use crate::nemesis::migrate::MigrateOptions;
use crate::nemesis::schedule::FaultKind;
use crate::run::run_test;
use anyhow::{Context, Result};
use checker::{Ops, Outcome};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use workloads::{ClientChoice, WorkloadKind, FINAL_READ_PROCESS_BASE};

/// An op slower than this counts as a stall: far past the 1 s request timeout, the time a user
/// would notice.
pub const STALL_MS: u64 = 5_000;

/// A nemesis setting every client is run under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Classic migrations that stay half-migrated for long (1 s between steps): many `ASK`s.
    Migrate,
    /// Migrations aborted half-way (`SETSLOT STABLE`): keys already moved are stranded for every
    /// client, so anomalies here are expected; the comparison is between clients.
    Abort,
    /// Migrations and `CLUSTER FAILOVER` (default, FORCE, TAKEOVER) on replicas.
    Failover,
    /// Migrations and masters paused (SIGSTOP) for up to 1.5 s, below the node timeout.
    Pause,
}

impl Scenario {
    /// Every scenario, in table order.
    pub const ALL: [Scenario; 4] = [
        Scenario::Migrate,
        Scenario::Abort,
        Scenario::Failover,
        Scenario::Pause,
    ];

    /// The name on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Migrate => "migrate",
            Scenario::Abort => "abort",
            Scenario::Failover => "failover",
            Scenario::Pause => "pause",
        }
    }

    /// Reads a scenario name.
    pub fn parse(text: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == text)
    }

    fn nemesis(self) -> Vec<FaultKind> {
        match self {
            Scenario::Migrate => vec![FaultKind::Migrate],
            Scenario::Abort => vec![FaultKind::Migrate, FaultKind::Abort],
            Scenario::Failover => vec![FaultKind::Migrate, FaultKind::Failover],
            Scenario::Pause => vec![FaultKind::Migrate, FaultKind::Pause],
        }
    }
}

/// What `slotcheck clients` runs.
#[derive(Debug, Clone, Serialize)]
pub struct CompareConfig {
    /// Servers, each a cluster of its own per run.
    pub servers: Vec<ServerKind>,
    /// Clients under test.
    pub clients: Vec<ClientChoice>,
    /// Scenarios.
    pub scenarios: Vec<Scenario>,
    /// Runs per server, client and scenario (seeds `seed`, `seed + 1`, ...).
    pub runs: usize,
    /// Length of each run.
    pub duration: Duration,
    /// The workload.
    #[serde(skip)]
    pub workload: WorkloadKind,
    /// First seed: run `i` of every cell uses `seed + i`, so every client meets the same schedule.
    pub seed: u64,
    /// Where the runs and `clients.json` go.
    pub output: PathBuf,
    /// What the nodes keep on disk (`--persistence`, as `slotcheck test`'s).
    pub persistence: crate::harness::Persistence,
    /// Which failovers the `failover` scenario sends (`--failover`, as `slotcheck test`'s).
    pub failover: crate::nemesis::failover::FailoverChoice,
    /// Logical processes per client worker whose ops go out as one pipeline (`--pipeline`).
    pub pipeline: usize,
}

/// One cell of the table: one client under one scenario on one server, over its runs.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Server name.
    pub server: String,
    /// Client name and version.
    pub client: String,
    /// Whether the client's redirects are in its histories.
    pub redirects_visible: bool,
    /// Scenario name.
    pub scenario: String,
    /// Runs done.
    pub runs: usize,
    /// Runs whose verdict was `invalid`.
    pub invalid_runs: usize,
    /// Workload ops (final reads excluded).
    pub ops: u64,
    /// Ops that ended `info` (indeterminate).
    pub info: u64,
    /// Redirects recorded (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN` hops).
    pub redirects: u64,
    /// Anomalies by class, over all runs.
    pub classes: BTreeMap<String, usize>,
    /// 99th percentile latency of every workload op, ms.
    pub p99_ms: f64,
    /// Ops slower than [`STALL_MS`].
    pub stalls: u64,
    /// The run directories.
    pub dirs: Vec<PathBuf>,
}

/// Runs every cell; each run is a `slotcheck test` with its own directory under `cfg.output`.
pub async fn run(cfg: &CompareConfig) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &server in &cfg.servers {
        for scenario in &cfg.scenarios {
            for client in &cfg.clients {
                rows.push(cell(cfg, server, *scenario, client).await?);
            }
        }
    }
    std::fs::write(
        cfg.output.join("clients.json"),
        serde_json::to_vec_pretty(&serde_json::json!({"config": cfg, "rows": rows}))?,
    )?;
    Ok(rows)
}

async fn cell(
    cfg: &CompareConfig,
    server: ServerKind,
    scenario: Scenario,
    client: &ClientChoice,
) -> Result<Row> {
    let mut row = Row {
        server: server.to_string(),
        client: client.name().to_string(),
        redirects_visible: true,
        scenario: scenario.name().to_string(),
        runs: 0,
        invalid_runs: 0,
        ops: 0,
        info: 0,
        redirects: 0,
        classes: BTreeMap::new(),
        p99_ms: 0.0,
        stalls: 0,
        dirs: Vec::new(),
    };
    let mut latency = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    for i in 0..cfg.runs {
        let run = run_config(cfg, server, scenario, client, i);
        crate::term::status(&format!(
            "clients: {server} / {} / {} / run {}",
            scenario.name(),
            client.name(),
            i + 1
        ));
        let outcome = run_test(&run)
            .await
            .with_context(|| format!("run in {}", run.output.display()))?;
        let read;
        let history = match &outcome.loaded {
            Some(h) => h,
            None => {
                read = checker::History::read_file(&outcome.history)?;
                &read
            }
        };
        if let Some(c) = history.header.as_ref().and_then(|h| h.run.get("client")) {
            row.client = format!(
                "{} {}",
                c["name"].as_str().unwrap_or("?"),
                c["version"].as_str().unwrap_or("")
            );
            row.redirects_visible = c["redirects"] != "hidden";
        }
        let ops = Ops::from_history(history)?.ops;
        for op in ops.iter().filter(|op| op.process < FINAL_READ_PROCESS_BASE) {
            row.ops += 1;
            row.info += u64::from(op.outcome == Outcome::Info);
            row.redirects += op.redirects.len() as u64;
            // An `info` op's complete_ns is "never" (it may take effect any time): time its
            // completion event instead; an op never completed is left out.
            let Some(done) = op.complete_event.and_then(|i| history.events.get(i)) else {
                continue;
            };
            let us = done.time.saturating_sub(op.invoke_ns) / 1_000;
            latency.record(us.clamp(1, 3_600_000_000))?;
            row.stalls += u64::from(us >= STALL_MS * 1_000);
        }
        for (class, n) in outcome.report.classes() {
            *row.classes.entry(class).or_default() += n;
        }
        row.invalid_runs += usize::from(outcome.report.valid == checker::Validity::Invalid);
        row.runs += 1;
        row.dirs.push(run.output.clone());
    }
    row.p99_ms = latency.value_at_quantile(0.99) as f64 / 1e3;
    Ok(row)
}

/// The `slotcheck test` configuration of run `i` of one cell.
fn run_config(
    cfg: &CompareConfig,
    server: ServerKind,
    scenario: Scenario,
    client: &ClientChoice,
    i: usize,
) -> RunConfig {
    RunConfig {
        server,
        masters: 3,
        replicas: usize::from(scenario == Scenario::Failover),
        workload: cfg.workload,
        client: client.clone(),
        clients: 10,
        keys: 20,
        slots: crate::config::SLOTS_DEFAULT,
        key_dist: Default::default(),
        spare_masters: 0,
        migrate_target: Default::default(),
        pipeline: cfg.pipeline,
        txn: workloads::TxnMode::Multi,
        rate_per_s: 1000,
        duration: cfg.duration,
        seed: cfg.seed + i as u64,
        output: cfg
            .output
            .join(server.to_string())
            .join(scenario.name())
            .join(client.name())
            .join(format!("run-{}", i + 1)),
        nemesis: scenario.nemesis(),
        migrate_interval_ms: 2_000,
        fault_interval_ms: 4_000,
        hold_ms_max: 1_500,
        migrate: MigrateOptions {
            batch_keys: 5,
            step_pause_ms: 1_000,
            ..MigrateOptions::default()
        },
        timeout_ms: 1_000,
        persistence: cfg.persistence,
        failover: cfg.failover,
        client_bug: None,
        server_bug: None,
        scenario: None,
        server_binary: None,
        pika_mode: workloads::codis::MigrationMode::Sync,
        pika_scenario: None,
        existing: None,
    }
}

/// The comparison as a table: one row per server, scenario and client.
pub fn table(rows: &[Row], cfg: &CompareConfig) -> Table {
    let mut t = Table::new(
        &format!(
            "Clients under test ({} workload, {} run(s) of {} per cell; stall = op over {} s)",
            cfg.workload.name(),
            cfg.runs,
            humantime::format_duration(cfg.duration),
            STALL_MS / 1000
        ),
        &[
            "server",
            "scenario",
            "client",
            "ops",
            "info",
            "redirects",
            "invalid runs",
            "anomalies",
            "p99 ms",
            "stalls",
        ],
    );
    for r in rows {
        let anomalies = match r.classes.is_empty() {
            true => "none".to_string(),
            false => r
                .classes
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        t.rows.push(vec![
            r.server.clone(),
            r.scenario.clone(),
            r.client.clone(),
            r.ops.to_string(),
            r.info.to_string(),
            match r.redirects_visible {
                true => r.redirects.to_string(),
                false => "hidden".to_string(),
            },
            format!("{}/{}", r.invalid_runs, r.runs),
            anomalies,
            format!("{:.1}", r.p99_ms),
            r.stalls.to_string(),
        ]);
    }
    t
}
