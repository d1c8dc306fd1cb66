//! `slotcheck test --server pikiwidb`: the flags a PikiwiDB run takes, turned into a
//! [`RunConfig`], the run, and its summary on the terminal.

use super::scenario::PikaScenario;
use crate::config::RunConfig;
use crate::harness::ServerKind;
use crate::run::pika::run_pika;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use workloads::codis::MigrationMode;
use workloads::WorkloadKind;

/// What `slotcheck test` was given that a PikiwiDB run uses.
#[derive(Debug, Clone)]
pub struct PikaArgs {
    /// `--server-binary`.
    pub binary: Option<PathBuf>,
    /// `--masters`: servers to start.
    pub servers: usize,
    /// `--workload`.
    pub workload: WorkloadKind,
    /// `--clients`.
    pub clients: usize,
    /// `--keys`.
    pub keys: usize,
    /// `--rate`.
    pub rate_per_s: u64,
    /// `--duration`.
    pub duration: Duration,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--output`.
    pub output: Option<PathBuf>,
    /// `--pika-mode`: sync or semi-async.
    pub mode: Option<String>,
    /// `--migrate-interval`.
    pub migrate_interval: Duration,
    /// `--timeout`.
    pub timeout: Duration,
    /// `--scenario`.
    pub scenario: Option<String>,
}

/// Parses `sync` or `semi-async`.
pub fn parse_mode(text: &str) -> Result<MigrationMode> {
    match text {
        "sync" => Ok(MigrationMode::Sync),
        "semi-async" | "async" => Ok(MigrationMode::SemiAsync),
        other => bail!("unknown --pika-mode {other:?}: sync or semi-async"),
    }
}

/// Validates the flags into a run configuration (`--server pikiwidb`, one run pipeline); the
/// scenario's preset wins over flags.
pub fn config(a: PikaArgs) -> Result<RunConfig> {
    let binary = super::find_binary(a.binary.as_deref())?;
    if a.servers < 2 {
        bail!("--masters must be at least 2 for PikiwiDB: migrations need a target");
    }
    let scenario = match a.scenario.as_deref() {
        None => None,
        Some(name) => Some(PikaScenario::parse(name).with_context(|| {
            format!(
                "unknown PikiwiDB scenario {name:?}\n{}",
                super::scenario::list()
            )
        })?),
    };
    let mode = match (scenario, a.mode.as_deref()) {
        (Some(s), _) => s.mode(),
        (None, Some(m)) => parse_mode(m)?,
        (None, None) => MigrationMode::Sync,
    };
    let workload = scenario.map_or(a.workload, |s| s.workload());
    let seed = a.seed.unwrap_or_else(rand::random);
    let output = a.output.unwrap_or_else(|| {
        let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S%.3f");
        PathBuf::from("store")
            .join(format!("{}-pikiwidb", workload.name()))
            .join(stamp.to_string())
    });
    Ok(RunConfig {
        server: ServerKind::Pikiwidb,
        masters: a.servers,
        replicas: 0,
        workload,
        client: workloads::ClientChoice::Slotcheck,
        clients: a.clients,
        keys: a.keys,
        rate_per_s: a.rate_per_s,
        duration: a.duration,
        seed,
        output,
        nemesis: Vec::new(),
        migrate_interval_ms: a.migrate_interval.as_millis() as u64,
        fault_interval_ms: 0,
        hold_ms_max: 0,
        migrate: Default::default(),
        timeout_ms: a.timeout.as_millis().max(1) as u64,
        persistence: Default::default(),
        failover: Default::default(),
        client_bug: None,
        server_bug: None,
        scenario: None,
        server_binary: Some(binary),
        pika_mode: mode,
        pika_scenario: scenario,
    })
}

/// Runs the test and prints its summary; the exit code is the verdict's (0 valid, 1 invalid,
/// 2 unknown), or 1 when a scenario did not produce its anomaly.
/// `render` prints the report as `slotcheck check` does.
pub fn run_test(
    cfg: &RunConfig,
    runtime: &tokio::runtime::Runtime,
    render: impl Fn(&checker::Report) -> String,
) -> Result<ExitCode> {
    let outcome = runtime.block_on(run_pika(cfg))?;
    let r = &outcome.report;
    print!("{}", render(r));
    println!(
        "bring-up: {:.2} s; migrations: {} done, {} failed, {} stuck",
        outcome.bring_up.as_secs_f64(),
        outcome.nemesis.done,
        outcome.nemesis.failed.len(),
        outcome.nemesis.stuck.len()
    );
    println!("history: {}", outcome.history.display());
    if let Some(html) = &outcome.report_html {
        println!("report: {}", html.display());
    }
    if let Some(s) = cfg.pika_scenario {
        let found: Vec<&str> = s
            .expected()
            .iter()
            .copied()
            .filter(|c| r.anomaly_counts.contains_key(*c))
            .collect();
        let hung = !outcome.nemesis.stuck.is_empty();
        match (s, found.is_empty()) {
            (_, false) => println!("scenario {}: found {}", s.name(), found.join(", ")),
            (PikaScenario::Cancel, true) if !hung => {
                println!(
                    "scenario {}: no migration hung this time (the bug is racy)",
                    s.name()
                );
            }
            (PikaScenario::Kill, true) => {
                println!(
                    "scenario {}: no key was left on two servers this time",
                    s.name()
                );
            }
            (_, true) => {
                println!(
                    "scenario {}: expected {} and found none",
                    s.name(),
                    s.expected().join(" or ")
                );
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::from(r.valid.exit_code()))
}
