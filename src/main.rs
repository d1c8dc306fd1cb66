//! The `slotcheck` command: a thin layer over the `slotcheck`, `workloads` and `checker` crates.

mod check_cmd;
mod soak_cmd;
mod verify_cmd;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use slotcheck::clients::{parse_client, parse_workload};
use slotcheck::config::RunConfig;
use slotcheck::harness::{Cluster, ClusterSpec, ClusterState, ServerKind};
use slotcheck::input::{self, BadInput};
use slotcheck::nemesis;
use slotcheck::nemesis::migrate::MigrateOptions;
use slotcheck::nemesis::schedule::{parse_kinds, FaultKind};
use slotcheck::run::run_test;
use slotcheck::term::{ok, status, warn};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use workloads::{ClientChoice, WorkloadKind};

/// Exit code for bad arguments or unreadable input, as Jepsen's CLI.
const EXIT_BAD_ARGS: u8 = 254;
/// Exit code for an internal error, as Jepsen's CLI.
const EXIT_INTERNAL: u8 = 255;

/// Refuses a flag: returns [`BadInput::Flag`] with the formatted sentence.
macro_rules! refuse {
    ($($why:tt)*) => {
        return Err(BadInput::flag(format!($($why)*)).into())
    };
}

#[derive(Parser, Debug)]
#[command(
    name = "slotcheck",
    version,
    about = "Jepsen-style tests of Redis Cluster slot migration"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a cluster, run clients while slots migrate, check the history, stop everything.
    Test(Box<TestArgs>),
    /// Run the workload and nemesis for hours, check each closed window as it closes and raise
    /// an alarm at the first anomaly; or check (`--check DIR`) a soak's segments afterwards.
    Soak(Box<soak_cmd::SoakArgs>),
    /// Check saved histories (slotcheck's, Jepsen's, Knossos's, Porcupine's) and print their
    /// verdicts (exit 0 valid, 1 invalid, 2 unknown, 254 unreadable or malformed input).
    Check(check_cmd::CheckArgs),
    /// Start or stop a local cluster that outlives this command.
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
    /// Check a saved run directory's history.jsonl again and rewrite its results.json and
    /// report.html (exit 0 valid, 1 invalid, 2 unknown).
    Report {
        /// The run directory (e.g. store/latest).
        run_dir: PathBuf,
    },
    /// Write a history as Jepsen's history.edn, for Knossos and Elle.
    Export(ExportArgs),
    /// Measure migrations and the client side by side with redis-cli and redis-benchmark;
    /// results go to store/bench-<what>/<time>/ (bench.json, bench.html).
    Bench {
        #[command(subcommand)]
        what: slotcheck::bench::cli::BenchArgs,
    },
    /// Run the same workload and nemeses through each client library under test (slotcheck,
    /// redis-rs, redis-py, node-redis) and print what each run found, side by side.
    Clients(slotcheck::clients::cli::ClientsArgs),
    /// Compare what the nodes hold with where it should be (stranded, duplicated keys, replicas,
    /// open or uncovered slots) and, given a history, with what it says (exit 0 clean, 1 findings).
    Verify(verify_cmd::VerifyArgs),
}

#[derive(clap::Args, Debug)]
struct ExportArgs {
    /// Write Jepsen's EDN (one op map per line, keys as jepsen.independent tuples).
    #[arg(long, required = true)]
    edn: bool,
    /// The slotcheck history (history.jsonl).
    history: PathBuf,
    /// Where to write (default: history.edn beside the history).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct TestArgs {
    /// Server to test: redis, valkey, or pikiwidb (needs --server-binary or
    /// SLOTCHECK_PIKIWIDB_SERVER; slotcheck routes as a Codis proxy).
    #[arg(long, default_value = "redis", value_parser = parse_server)]
    server: ServerKind,
    /// The server binary (PikiwiDB's `pika`).
    #[arg(long)]
    server_binary: Option<PathBuf>,
    /// How slotcheck's Codis routing crosses a migrating PikiwiDB slot, and which migration
    /// command the nemesis uses: sync (SLOTSMGRTTAGONE / SLOTSMGRTTAGSLOT) or semi-async
    /// (SLOTSMGRT-EXEC-WRAPPER / SLOTSMGRTTAGSLOT-ASYNC).
    #[arg(long)]
    pika_mode: Option<String>,
    /// Masters in the cluster.
    #[arg(long, default_value_t = 3)]
    masters: usize,
    /// Replicas per master.
    #[arg(long, default_value_t = 0)]
    replicas: usize,
    /// Workload: register (GET, SET, CAS by EVAL), counter (INCR, GET) or types (every data
    /// type, each key checked with its type's model).
    #[arg(long, default_value = "register", value_parser = parse_workload)]
    workload: WorkloadKind,
    /// Client that carries the workload's commands: slotcheck (its own router, every redirect
    /// recorded).
    #[arg(long, default_value = "slotcheck", value_parser = parse_client)]
    client: ClientChoice,
    /// Concurrent client processes.
    #[arg(long, default_value_t = 20)]
    clients: usize,
    /// Keys the workload spreads over.
    #[arg(long, default_value_t = 100)]
    keys: usize,
    /// Target operations per second over all clients (0: as fast as the servers answer).
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    /// How long clients and migrations run (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Seed for the workload and the nemesis schedule (random when omitted; always recorded).
    #[arg(long)]
    seed: Option<u64>,
    /// Directory for the run's files (default: store/<test>/<start time>/). A directory that
    /// holds an earlier run is refused unless --force.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Replace the earlier run in --output (its directory is emptied first).
    #[arg(long)]
    force: bool,
    /// Nemesis actions: all, none, or a list of migrate, atomic, abort, finalize-early, cancel,
    /// strike, strike-failover, kill, pause, failover, partition, slow (client latency, loss and
    /// resets through a proxy).
    #[arg(long, default_value = "migrate")]
    nemesis: String,
    /// What the nodes keep on disk: aof (appendonly yes, appendfsync always: a killed node keeps
    /// every acknowledged write) or off (save "", appendonly no: a master killed and restarted
    /// within the node timeout comes back empty, a loss by design).
    #[arg(long, default_value = "aof")]
    persistence: slotcheck::harness::Persistence,
    /// Which CLUSTER FAILOVER the failover nemesis sends: default (coordinated, loses nothing),
    /// force or takeover (may drop writes not yet replicated, by design), or mixed (the seeded
    /// mix of the three).
    #[arg(long, default_value = "default")]
    failover: slotcheck::nemesis::failover::FailoverChoice,
    /// Mean time between node faults (kill, pause, failover, partition, slow), e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    nemesis_interval: Duration,
    /// Longest time a fault is held before its inverse (restart, resume, heal, fast), e.g. 4s.
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    fault_hold: Duration,
    /// Mean time between migrations (e.g. 3s).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    migrate_interval: Duration,
    /// Keys per MIGRATE batch.
    #[arg(long, default_value_t = 10)]
    migrate_batch: usize,
    /// Pause after each migration step, to keep half-migrated states alive (e.g. 250ms).
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    migrate_pause: Duration,
    /// Print the validated run configuration and the nemesis schedule as JSON, start nothing.
    #[arg(long)]
    plan_only: bool,
    /// Print `results.json` (verdict, per-key results, redirect statistics, run config) on stdout
    /// instead of the human summary; status lines still go to stderr.
    #[arg(long)]
    json: bool,
    /// Client request timeout; a timed-out operation is recorded as `info` (e.g. 1s).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Run a named scenario that must lose data (its preset sets masters, replicas, nemesis,
    /// pacing and duration), or `list` to print each with the anomaly it must produce.
    #[arg(long)]
    scenario: Option<String>,
    /// Inject a client bug, a test aid: ask-without-asking, ask-as-moved, retry-without-info,
    /// stale-moved, write-to-replica; or `list` to print what each does and should show.
    #[arg(long)]
    client_bug: Option<String>,
    /// Inject a server bug through a proxy in front of every node, a test aid: lost-write,
    /// stale-read, duplicate-write, moved-after-apply; or `list` to print what each does.
    #[arg(long)]
    server_bug: Option<String>,
}

#[derive(Subcommand, Debug)]
enum ClusterAction {
    /// Start a cluster and leave it running; its state is saved in DIR/cluster.json.
    Up {
        /// Server: redis or valkey.
        #[arg(long, default_value = "redis")]
        server: ServerKind,
        /// Masters in the cluster.
        #[arg(long, default_value_t = 3)]
        masters: usize,
        /// Replicas per master.
        #[arg(long, default_value_t = 0)]
        replicas: usize,
        /// Directory for data, logs and cluster.json.
        #[arg(long, default_value = "store/cluster")]
        dir: PathBuf,
    },
    /// Stop the cluster saved in DIR/cluster.json and remove its data.
    Down {
        /// The directory given to `cluster up`.
        #[arg(long, default_value = "store/cluster")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    // Die quietly when stdout is a closed pipe (`slotcheck check h | head`), as Unix tools do.
    // SAFETY: resetting a signal disposition before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout and succeed; bad arguments are 254, not clap's 2,
            // which would read as an unknown verdict.
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { EXIT_BAD_ARGS } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("[ERR] {err:#}");
            ExitCode::from(
                if check_cmd::is_bad_input(&err) || input::is_bad_input(&err) {
                    EXIT_BAD_ARGS
                } else {
                    EXIT_INTERNAL
                },
            )
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Check(args) => check_cmd::run(args),
        Command::Verify(args) => verify_cmd::run(args),
        Command::Soak(args) => soak_cmd::run(*args),
        Command::Test(args) if args.server == ServerKind::Pikiwidb => {
            if args.scenario.as_deref() == Some("list") {
                print!("{}", slotcheck::pika::scenario::list());
                return Ok(ExitCode::SUCCESS);
            }
            // Every error of config is the flags' or the binary's: bad input.
            let cfg = slotcheck::pika::cli::config(pika_args(&args)?)
                .map_err(|e| BadInput::flag(format!("{e:#}")))?;
            input::prepare_output(&cfg.output, args.force)?;
            init_log(&cfg.output)?;
            if args.output.is_none() {
                link_latest(&cfg.output);
            }
            slotcheck::pika::cli::run_test(&cfg, &runtime()?, |r| {
                check_cmd::render(r.clone(), check_cmd::KEYS_SHOWN_MAX)
            })
        }
        Command::Test(args) => {
            let lists = slotcheck::cases::listing(
                args.scenario.as_deref(),
                args.client_bug.as_deref(),
                args.server_bug.as_deref(),
            );
            if let Some(text) = lists {
                print!("{text}");
                return Ok(ExitCode::SUCCESS);
            }
            let default_output = args.output.is_none();
            let (plan_only, json, force) = (args.plan_only, args.json, args.force);
            let cfg = test_config(*args)?;
            if plan_only {
                let plan = serde_json::json!({
                    "seed": cfg.seed,
                    "server": cfg.server.to_string(),
                    "persistence": cfg.persistence.name(),
                    "failover": cfg.failover.name(),
                    "nemesis": cfg.nemesis,
                    "nemesis_schedule": cfg.schedule(),
                });
                println!("{}", serde_json::to_string_pretty(&plan)?);
                return Ok(ExitCode::SUCCESS);
            }
            input::prepare_output(&cfg.output, force)?;
            init_log(&cfg.output)?;
            if default_output {
                link_latest(&cfg.output);
            }
            let outcome = runtime()?.block_on(run_test(&cfg))?;
            let r = &outcome.report;
            if json {
                let results = cfg.output.join(slotcheck::report::RESULTS_FILE);
                let text = std::fs::read_to_string(&results)
                    .with_context(|| format!("reading {}", results.display()))?;
                slotcheck::cases::print_detection(&cfg, &outcome, false);
                println!("{}", text.trim_end());
                return Ok(ExitCode::from(r.valid.exit_code()));
            }
            print!(
                "{}",
                check_cmd::render(r.clone(), check_cmd::KEYS_SHOWN_MAX)
            );
            println!(
                "bring-up: {:.2} s; nemesis actions: {} done, {} failed{}",
                outcome.bring_up.as_secs_f64(),
                outcome.nemesis.total_done(),
                outcome.nemesis.failures.len(),
                if outcome.interrupted {
                    " (interrupted)"
                } else {
                    ""
                }
            );
            slotcheck::cases::print_detection(&cfg, &outcome, true);
            println!("history: {}", outcome.history.display());
            if let Some(html) = &outcome.report_html {
                println!("report: {}", html.display());
            }
            Ok(ExitCode::from(r.valid.exit_code()))
        }
        Command::Cluster { action } => cluster(action),
        Command::Report { run_dir } => {
            let done = slotcheck::report::regenerate(&run_dir)?;
            print!(
                "{}",
                check_cmd::render(done.report.clone(), check_cmd::KEYS_SHOWN_MAX)
            );
            println!("results: {}", done.results.display());
            println!("report: {}", done.html.display());
            Ok(ExitCode::from(done.report.valid.exit_code()))
        }
        Command::Bench { what } => slotcheck::bench::cli::run(what),
        Command::Clients(args) => slotcheck::clients::cli::run(args),
        Command::Export(args) => {
            let output = args.output.unwrap_or_else(|| {
                args.history
                    .parent()
                    .unwrap_or(std::path::Path::new("."))
                    .join("history.edn")
            });
            let ops = slotcheck::export::export_file(&args.history, &output)?;
            ok(&format!("{ops} events written to {}", output.display()));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--server`: a Redis Cluster server, or PikiwiDB behind slotcheck's Codis routing.
fn parse_server(text: &str) -> Result<ServerKind, String> {
    text.parse()
        .map_err(|e: slotcheck::harness::HarnessError| e.to_string())
}

/// The flags a PikiwiDB run takes; the Redis Cluster ones it cannot honour are refused.
fn pika_args(a: &TestArgs) -> Result<slotcheck::pika::cli::PikaArgs, BadInput> {
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
    Ok(slotcheck::pika::cli::PikaArgs {
        binary: a.server_binary.clone(),
        servers: a.masters,
        workload: a.workload,
        clients: a.clients,
        keys: a.keys,
        rate_per_s: a.rate,
        duration: a.duration,
        seed: a.seed,
        output: a.output.clone(),
        mode: a.pika_mode.clone(),
        migrate_interval: a.migrate_interval,
        timeout: a.timeout,
        scenario: a.scenario.clone(),
    })
}

/// Most keys a run may spread over: every key is read once more after the run, verified and
/// checked; at 10M keys the final reads alone took minutes.
const KEYS_MAX: usize = 100_000;

/// Validates `slotcheck test` flags into a [`RunConfig`] before anything is created or started:
/// flag values, the cluster's shape, the nemesis, scenario and bugs, and the server binary.
fn test_config(a: TestArgs) -> Result<RunConfig> {
    let server = a.server;
    if server == ServerKind::Pikiwidb {
        refuse!("--server pikiwidb runs through slotcheck::pika");
    }
    if a.masters == 0 {
        refuse!("--masters must be at least 1");
    }
    if a.clients == 0 {
        refuse!("--clients must be at least 1");
    }
    if a.keys == 0 || a.keys > KEYS_MAX {
        refuse!(
            "--keys must be 1 to {KEYS_MAX}, not {} (every key is read back after the run, \
             verified and checked)",
            a.keys
        );
    }
    if a.migrate_batch == 0 {
        refuse!("--migrate-batch must be at least 1");
    }
    if a.timeout.is_zero() {
        refuse!("--timeout must be longer than 0 (e.g. 1s)");
    }
    ClusterSpec::new(server, a.masters, a.replicas, "store/cluster").validate()?;
    let seed = a.seed.unwrap_or_else(rand::random);
    let (scenario, client_bug) = (a.scenario.clone(), a.client_bug.clone());
    let server_bug = a.server_bug.clone();
    let output = a.output.unwrap_or_else(|| {
        let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S%.3f");
        PathBuf::from("store")
            .join(format!("{}-{}", a.workload.name(), server))
            .join(stamp.to_string())
    });
    let mut cfg = RunConfig {
        server,
        masters: a.masters,
        replicas: a.replicas,
        workload: a.workload,
        client: a.client.clone(),
        clients: a.clients,
        keys: a.keys,
        rate_per_s: a.rate,
        duration: a.duration,
        seed,
        output,
        nemesis: nemesis_kinds(&a.nemesis, server, a.replicas, a.masters)?,
        fault_interval_ms: a.nemesis_interval.as_millis() as u64,
        hold_ms_max: a.fault_hold.as_millis() as u64,
        migrate_interval_ms: a.migrate_interval.as_millis() as u64,
        migrate: MigrateOptions {
            batch_keys: a.migrate_batch,
            step_pause_ms: a.migrate_pause.as_millis() as u64,
            ..MigrateOptions::default()
        },
        timeout_ms: (a.timeout.as_millis() as u64).max(1),
        persistence: a.persistence,
        failover: a.failover,
        client_bug: None,
        server_bug: None,
        scenario: None,
        server_binary: None,
        pika_mode: workloads::codis::MigrationMode::Sync,
        pika_scenario: None,
    };
    slotcheck::cases::configure(
        &mut cfg,
        scenario.as_deref(),
        client_bug.as_deref(),
        server_bug.as_deref(),
    )
    .map_err(|e| BadInput::flag(format!("{e:#}")))?;
    // The scenario may have changed the shape: check it again, then find the server.
    ClusterSpec::new(server, cfg.masters, cfg.replicas, "store/cluster").validate()?;
    slotcheck::harness::find_server(server)?;
    Ok(cfg)
}

/// Parses `--nemesis` and drops what this run cannot do: named explicitly, that is an error;
/// implied by `all`, a warning. Partitions need root and iptables: without them, a warning.
fn nemesis_kinds(
    text: &str,
    server: ServerKind,
    replicas: usize,
    masters: usize,
) -> Result<Vec<FaultKind>> {
    if text.trim().is_empty() {
        refuse!("--nemesis is empty: name the faults, or `none` for a run without any");
    }
    let explicit = !text.split(',').any(|w| w.trim() == "all");
    let mut kinds = parse_kinds(text).map_err(|e| BadInput::flag(format!("--nemesis: {e}")))?;
    let skip = |kind: FaultKind, why: String| -> Result<()> {
        if explicit && kind != FaultKind::Partition {
            refuse!("--nemesis {kind}: {why}");
        }
        warn(&format!("nemesis {kind} skipped: {why}"));
        Ok(())
    };
    let mut keep = Vec::new();
    for kind in kinds.drain(..) {
        if kind.needs_atomic_migration() && server != ServerKind::Valkey {
            skip(
                kind,
                format!("atomic slot migration needs Valkey 9, not {server}"),
            )?;
        } else if kind.needs_replicas() && replicas == 0 {
            skip(kind, "needs --replicas 1 or more".into())?;
        } else if kind.is_migration() && masters < 2 {
            skip(kind, "migrations need --masters 2 or more".into())?;
        } else if kind == FaultKind::Partition && nemesis::net::available().is_err() {
            let why = nemesis::net::available().unwrap_err().to_string();
            skip(kind, why)?;
        } else {
            keep.push(kind);
        }
    }
    Ok(keep)
}

fn cluster(action: ClusterAction) -> Result<ExitCode> {
    match action {
        ClusterAction::Up {
            server,
            masters,
            replicas,
            dir,
        } => {
            let state_path = dir.join("cluster.json");
            if state_path.exists() {
                bail!(
                    "{} exists: a cluster may be running; run `slotcheck cluster down --dir {}` first",
                    state_path.display(),
                    dir.display()
                );
            }
            let spec = ClusterSpec::new(server, masters, replicas, dir.join("nodes"));
            status(&format!(
                "Starting {masters} masters, {replicas} replicas per master ({server})"
            ));
            let cluster = runtime()?.block_on(Cluster::start(spec))?;
            ok(&format!(
                "cluster ready in {:.2} s",
                cluster.bring_up.as_secs_f64()
            ));
            for n in &cluster.nodes {
                println!("{} {} pid {}", n.addr, n.id, n.pid);
            }
            let state = cluster.detach();
            std::fs::create_dir_all(&dir)?;
            state
                .save(&state_path)
                .with_context(|| format!("saving {}", state_path.display()))?;
            println!("state: {}", state_path.display());
            Ok(ExitCode::SUCCESS)
        }
        ClusterAction::Down { dir } => {
            let state_path = dir.join("cluster.json");
            let state = ClusterState::load(&state_path)
                .with_context(|| format!("reading {}", state_path.display()))?;
            state.destroy();
            std::fs::remove_file(&state_path)?;
            ok("cluster stopped");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Points `store/latest` at the newest run directory; failing to do so is not worth an error.
fn link_latest(output: &std::path::Path) {
    let latest = PathBuf::from("store").join("latest");
    let _ = std::fs::remove_file(&latest);
    if let Ok(rel) = output.strip_prefix("store") {
        let _ = std::os::unix::fs::symlink(rel, &latest);
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Sends the run's tracing output to `<output>/run.log`.
fn init_log(output: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(output)
        .with_context(|| format!("creating output directory {}", output.display()))?;
    let file = std::fs::File::create(output.join("run.log"))?;
    tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    Ok(())
}
