//! `slotcheck test --server pikiwidb`: the flags of `test` a PikiwiDB run takes (the Redis
//! Cluster ones it cannot honour are refused), turned into a [`RunConfig`], the run, and its
//! summary on the terminal.

use super::render::{render, KEYS_SHOWN_MAX};
use super::test::TestArgs;
use anyhow::{bail, Context, Result};
use slotcheck::config::RunConfig;
use slotcheck::config::KEYS_MAX;
use slotcheck::harness::ServerKind;
use slotcheck::input::BadInput;
use slotcheck::pika::scenario::{self, PikaScenario};
use slotcheck::run::pika::run_pika;
use std::path::PathBuf;
use std::process::ExitCode;
use workloads::codis::MigrationMode;
use workloads::ClientChoice;

/// Refuses a flag: returns [`BadInput::Flag`] with the formatted sentence.
macro_rules! refuse {
    ($($why:tt)*) => {
        return Err(BadInput::flag(format!($($why)*)).into())
    };
}

/// Runs `slotcheck test --server pikiwidb`: `--scenario list`, or the validated run.
pub fn run(args: &TestArgs) -> Result<ExitCode> {
    if args.scenario.as_deref() == Some("list") {
        print!("{}", scenario::list());
        return Ok(ExitCode::SUCCESS);
    }
    refuse_cluster_flags(args)?;
    // Every error of config is the flags' or the binary's: bad input.
    let cfg = config(args).map_err(|e| BadInput::flag(format!("{e:#}")))?;
    super::open_output(&cfg.output, args.force, false, args.output.is_none())?;
    run_test(&cfg, &super::runtime()?)
}

/// Refuses the flags a PikiwiDB run cannot honour.
fn refuse_cluster_flags(a: &TestArgs) -> Result<()> {
    if a.replicas != 0 {
        refuse!("--replicas is not supported with --server pikiwidb (no replication is set up)");
    }
    if a.nemesis != "migrate" {
        refuse!(
            "--nemesis {} is not supported with --server pikiwidb: its nemesis is PikiwiDB's own \
             slot migration, with kills and cancels from --scenario",
            a.nemesis
        );
    }
    if a.clients == 0 {
        refuse!("--clients must be at least 1");
    }
    if a.keys == 0 || a.keys > KEYS_MAX {
        refuse!("--keys must be 1 to {KEYS_MAX}, not {}", a.keys);
    }
    if a.timeout.is_zero() {
        refuse!("--timeout must be longer than 0 (e.g. 1s)");
    }
    if a.client != ClientChoice::Slotcheck {
        refuse!(
            "--client {} cannot route as a Codis proxy; only slotcheck's client can",
            a.client.name()
        );
    }
    Ok(())
}

/// Parses `sync` or `semi-async`.
fn parse_mode(text: &str) -> Result<MigrationMode> {
    match text {
        "sync" => Ok(MigrationMode::Sync),
        "semi-async" | "async" => Ok(MigrationMode::SemiAsync),
        other => bail!("unknown --pika-mode {other:?}: sync or semi-async"),
    }
}

/// Validates the flags into a run configuration (`--server pikiwidb`, one run pipeline); the
/// scenario's preset wins over flags.
fn config(a: &TestArgs) -> Result<RunConfig> {
    let binary = slotcheck::pika::server::find_binary(a.server_binary.as_deref())?;
    if a.masters < 2 {
        bail!("--masters must be at least 2 for PikiwiDB: migrations need a target");
    }
    let scenario = match a.scenario.as_deref() {
        None => None,
        Some(name) => Some(PikaScenario::parse(name).with_context(|| {
            format!("unknown PikiwiDB scenario {name:?}\n{}", scenario::list())
        })?),
    };
    let mode = match (scenario, a.pika_mode.as_deref()) {
        (Some(s), _) => s.mode(),
        (None, Some(m)) => parse_mode(m)?,
        (None, None) => MigrationMode::Sync,
    };
    let workload = scenario.map_or(a.workload, |s| s.workload());
    let seed = a.seed.unwrap_or_else(rand::random);
    let output = a.output.clone().unwrap_or_else(|| {
        let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S%.3f");
        PathBuf::from("store")
            .join(format!("{}-pikiwidb", workload.name()))
            .join(stamp.to_string())
    });
    Ok(RunConfig {
        server: ServerKind::Pikiwidb,
        masters: a.masters,
        replicas: 0,
        workload,
        client: workloads::ClientChoice::Slotcheck,
        clients: a.clients,
        keys: a.keys,
        slots: 0,
        key_dist: Default::default(),
        spare_masters: 0,
        migrate_target: Default::default(),
        pipeline: 1,
        txn: workloads::TxnMode::Multi,
        rate_per_s: a.rate,
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
        existing: None,
    })
}

/// Runs the test and prints its summary; the exit code is the verdict's (0 valid, 1 invalid,
/// 2 unknown), or 1 when a scenario did not produce its anomaly.
fn run_test(cfg: &RunConfig, runtime: &tokio::runtime::Runtime) -> Result<ExitCode> {
    let outcome = runtime.block_on(run_pika(cfg))?;
    let r = &outcome.report;
    print!("{}", render(r.clone(), KEYS_SHOWN_MAX));
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
        if let Some(needs) = s.precondition() {
            println!("scenario {}: {needs}", s.name());
        }
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
                    "scenario {}: no key was left on two servers this time (no kill landed \
                     while the target held keys of the slot)",
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
