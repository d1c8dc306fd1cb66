//! `slotcheck test`: its flags, validated into a [`RunConfig`] by a [`RunConfigBuilder`] (or,
//! for `--server pikiwidb`, by [`super::pika`]), the plan (`--plan-only`) or the run, and its
//! summary on the terminal.

use super::render::{render, KEYS_SHOWN_MAX};
use anyhow::{Context, Result};
use slotcheck::clients::{parse_client, parse_workload};
use slotcheck::config::{listing, Existing, RunConfig, RunConfigBuilder};
use slotcheck::detect::{detect, Detection};
use slotcheck::harness::{HarnessError, Persistence, ServerKind};
use slotcheck::input::BadInput;
use slotcheck::nemesis::failover::FailoverChoice;
use slotcheck::nemesis::schedule::FaultKind;
use slotcheck::nemesis::schedule::MigrateTarget;
use slotcheck::run::{run_test, RunOutcome, NEEDS_HOSTS};
use slotcheck::term::warn;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use workloads::{ClientChoice, KeyDist, WorkloadKind};

/// The flags of `slotcheck test` (and, flattened, of `slotcheck soak`).
#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// Server to test: redis, valkey, or pikiwidb (needs --server-binary or
    /// SLOTCHECK_PIKIWIDB_SERVER; slotcheck routes as a Codis proxy).
    #[arg(long, default_value = "redis", value_parser = parse_server)]
    pub server: ServerKind,
    /// The server binary (PikiwiDB's `pika`).
    #[arg(long)]
    pub server_binary: Option<PathBuf>,
    /// How slotcheck's Codis routing crosses a migrating PikiwiDB slot, and which migration
    /// command the nemesis uses: sync (SLOTSMGRTTAGONE / SLOTSMGRTTAGSLOT) or semi-async
    /// (SLOTSMGRT-EXEC-WRAPPER / SLOTSMGRTTAGSLOT-ASYNC).
    #[arg(long)]
    pub pika_mode: Option<String>,
    /// Masters in the cluster.
    #[arg(long, default_value_t = 3)]
    pub masters: usize,
    /// Replicas per master.
    #[arg(long, default_value_t = 0)]
    pub replicas: usize,
    /// Workload: register (GET, SET, CAS by EVAL, unique values; MSET, MGET, DEL with --slots),
    /// counter (INCR, GET), types (every data type, each key checked with its type's model),
    /// cas-register (as register, values 0 to 4: Jepsen's cas-register), list-append (RPUSH,
    /// LRANGE and transactions of them) or rw-register (transactions of GET and SET); the last
    /// two are checked by Elle's analysis.
    #[arg(long, default_value = "register", value_parser = parse_workload)]
    pub workload: WorkloadKind,
    /// Client that carries the workload's commands: slotcheck (its own router, every redirect
    /// recorded).
    #[arg(long, default_value = "slotcheck", value_parser = parse_client)]
    pub client: ClientChoice,
    /// Concurrent client processes.
    #[arg(long, default_value_t = 20)]
    pub clients: usize,
    /// Keys the workload spreads over.
    #[arg(long, default_value_t = 100)]
    pub keys: usize,
    /// Hash-tag groups the keys fall in, one slot each, so that a migrating slot holds many keys
    /// while clients use them (key i in group i mod N); 0: one slot per key.
    #[arg(long, default_value_t = slotcheck::config::SLOTS_DEFAULT)]
    pub slots: usize,
    /// How an op picks its key: uniform, or hot (90 % of ops on 10 % of the keys).
    #[arg(long, default_value = "uniform", value_parser = parse_key_dist)]
    pub key_dist: KeyDist,
    /// Logical processes per client, whose ops go out together as one pipeline on one
    /// connection per node (register and counter; slotcheck's client and the adapters); 1: none.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// How list-append and rw-register send a transaction: multi (MULTI/EXEC) or lua (one EVAL).
    #[arg(long, default_value = "multi", value_parser = parse_txn)]
    pub txn: workloads::TxnMode,
    /// Target operations per second over all clients (0: as fast as the servers answer).
    #[arg(long, default_value_t = 5000)]
    pub rate: u64,
    /// How long clients and migrations run (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Seed for the workload and the nemesis schedule (random when omitted; always recorded).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Directory for the run's files (default: store/<test>/<start time>/). A directory that
    /// holds an earlier run is refused unless --force.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Replace the earlier run in --output (its directory is emptied first).
    #[arg(long)]
    pub force: bool,
    /// Nemesis actions: all, none, or a list of migrate, atomic, abort, finalize-early, cancel,
    /// strike, strike-failover, kill, pause, failover, partition, slow (client latency, loss and
    /// resets through a proxy).
    #[arg(long, default_value = "migrate")]
    pub nemesis: String,
    /// What the nodes keep on disk: aof (appendonly yes, appendfsync always: a killed node keeps
    /// every acknowledged write) or off (save "", appendonly no: a master killed and restarted
    /// within the node timeout comes back empty, a loss by design).
    #[arg(long, default_value = "aof")]
    pub persistence: Persistence,
    /// Which CLUSTER FAILOVER the failover nemesis sends: default (coordinated, loses nothing),
    /// force or takeover (may drop writes not yet replicated, by design), or mixed (the seeded
    /// mix of the three).
    #[arg(long, default_value = "default")]
    pub failover: FailoverChoice,
    /// Mean time between node faults (kill, pause, failover, partition, slow), e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub nemesis_interval: Duration,
    /// Longest time a fault is held before its inverse (restart, resume, heal, fast), e.g. 4s.
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    pub fault_hold: Duration,
    /// Mean time between migrations (e.g. 3s).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub migrate_interval: Duration,
    /// Keys per MIGRATE batch.
    #[arg(long, default_value_t = 10)]
    pub migrate_batch: usize,
    /// Pause after each migration step, to keep half-migrated states alive (e.g. 250ms).
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    pub migrate_pause: Duration,
    /// Masters beyond --masters that own no slots at start (no replicas), migration targets no
    /// client's slot map has named yet.
    #[arg(long, default_value_t = 0)]
    pub spare_masters: usize,
    /// Where migrations move a slot: any (another master) or empty (a master owning no slots;
    /// needs --spare-masters; when none is empty the next migration empties one).
    #[arg(long, default_value = "any")]
    pub migrate_target: MigrateTarget,
    /// Print the validated run configuration and the nemesis schedule as JSON, start nothing.
    #[arg(long)]
    pub plan_only: bool,
    /// Print `results.json` (verdict, per-key results, redirect statistics, run config) on stdout
    /// instead of the human summary; status lines still go to stderr.
    #[arg(long)]
    pub json: bool,
    /// Client request timeout; a timed-out operation is recorded as `info` (e.g. 1s).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Run a named scenario that must lose data (its preset sets masters, replicas, nemesis,
    /// pacing and duration), or `list` to print each with the anomaly it must produce.
    #[arg(long)]
    pub scenario: Option<String>,
    /// Inject a client bug, a test aid: ask-without-asking, ask-as-moved, retry-without-info,
    /// stale-moved, write-to-replica, no-asking-in-multi, tryagain-as-fail-after-apply; or `list`
    /// to print what each does and should show.
    #[arg(long)]
    pub client_bug: Option<String>,
    /// Inject a server bug through a proxy in front of every node, a test aid: lost-write,
    /// stale-read, duplicate-write, moved-after-apply; or `list` to print what each does.
    #[arg(long)]
    pub server_bug: Option<String>,
    /// Test a running cluster at these addresses (HOST:PORT[,...]) instead of starting one:
    /// cluster commands only, no process faults unless --hosts describes its hosts.
    #[arg(long, value_delimiter = ',')]
    pub attach: Vec<String>,
    /// A hosts file (TOML, one [[host]] per server): the running cluster on those hosts, whose
    /// kill, pause and partition faults run there over SSH (README: "Testing a cluster on other
    /// machines").
    #[arg(long)]
    pub hosts: Option<PathBuf>,
    /// With --attach or --hosts: leave the workload's keys in the cluster at the end.
    #[arg(long)]
    pub keep_keys: bool,
}

/// The cluster `--attach` / `--hosts` name, checked against the run's faults: no process or
/// network fault without hosts, no proxy fault at all (slotcheck runs no proxy there).
fn existing(a: &TestArgs, cfg: &RunConfig) -> Result<Option<Existing>> {
    if a.attach.is_empty() && a.hosts.is_none() {
        if a.keep_keys {
            return Err(BadInput::flag("--keep-keys needs --attach or --hosts").into());
        }
        return Ok(None);
    }
    if cfg.nemesis.contains(&FaultKind::Slow) || cfg.server_bug.is_some() {
        let why =
            "slow and --server-bug need slotcheck's proxies, which an attached cluster has not";
        return Err(BadInput::flag(why).into());
    }
    if a.hosts.is_none() {
        if let Some(kind) = cfg.nemesis.iter().find(|k| NEEDS_HOSTS.contains(k)) {
            let why = format!(
                "--nemesis {} acts on processes or the network: it needs --hosts",
                kind.name()
            );
            return Err(BadInput::flag(&why).into());
        }
    }
    Ok(Some(Existing {
        seeds: a.attach.clone(),
        hosts: a.hosts.clone(),
        keep_keys: a.keep_keys,
    }))
}

/// `--txn`: `multi` or `lua`.
fn parse_txn(text: &str) -> Result<workloads::TxnMode, String> {
    workloads::TxnMode::parse(text)
        .ok_or_else(|| format!("unknown transaction mode {text:?}; expected multi or lua"))
}

/// `--server`: a Redis Cluster server, or PikiwiDB behind slotcheck's Codis routing.
fn parse_server(text: &str) -> Result<ServerKind, String> {
    text.parse().map_err(|e: HarnessError| e.to_string())
}

/// `--key-dist`: uniform or hot.
fn parse_key_dist(text: &str) -> Result<KeyDist, String> {
    KeyDist::parse(text)
        .ok_or_else(|| format!("unknown key distribution {text:?}; expected uniform or hot"))
}

/// Validates the flags into a [`RunConfig`] before anything is created or started: flag
/// values, the cluster's shape, the nemesis, scenario and bugs, and the server binary.
pub fn config(a: &TestArgs) -> Result<RunConfig> {
    let server = a.server;
    if server == ServerKind::Pikiwidb {
        return Err(BadInput::flag("--server pikiwidb runs through slotcheck::pika").into());
    }
    let cfg = RunConfigBuilder::new()
        .server(server)
        .masters(a.masters)
        .replicas(a.replicas)
        .workload(a.workload)
        .client(a.client.clone())
        .clients(a.clients)
        .keys(a.keys)
        .slots(a.slots)
        .key_dist(a.key_dist)
        .spare_masters(a.spare_masters)
        .migrate_target(a.migrate_target)
        .pipeline(a.pipeline)
        .txn(a.txn)
        .rate_per_s(a.rate)
        .duration(a.duration)
        .seed(a.seed)
        .output(a.output.clone())
        .nemesis(&a.nemesis)
        .fault_interval(a.nemesis_interval)
        .fault_hold(a.fault_hold)
        .migrate_interval(a.migrate_interval)
        .migrate_batch(a.migrate_batch)
        .migrate_pause(a.migrate_pause)
        .timeout(a.timeout)
        .persistence(a.persistence)
        .failover(a.failover)
        .scenario(a.scenario.as_deref())
        .client_bug(a.client_bug.as_deref())
        .server_bug(a.server_bug.as_deref())
        .build()?;
    let mut cfg = cfg;
    cfg.existing = existing(a, &cfg)?;
    Ok(cfg)
}

/// Runs `slotcheck test`: a list (`--scenario list`, ...), the plan, or the run; the exit code
/// is the verdict's (0 valid, 1 invalid, 2 unknown).
pub fn run(args: TestArgs) -> Result<ExitCode> {
    if args.server == ServerKind::Pikiwidb {
        return super::pika::run(&args);
    }
    let lists = listing(
        args.scenario.as_deref(),
        args.client_bug.as_deref(),
        args.server_bug.as_deref(),
    );
    if let Some(text) = lists {
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    let cfg = config(&args)?;
    if args.plan_only {
        print_plan(&cfg)?;
        return Ok(ExitCode::SUCCESS);
    }
    super::open_output(&cfg.output, args.force, false, args.output.is_none())?;
    let outcome = super::runtime()?.block_on(run_test(&cfg))?;
    let code = ExitCode::from(outcome.report.valid.exit_code());
    if args.json {
        let results = cfg.output.join(slotcheck::report::RESULTS_FILE);
        let text = std::fs::read_to_string(&results)
            .with_context(|| format!("reading {}", results.display()))?;
        print_detection(&cfg, &outcome, false);
        println!("{}", text.trim_end());
    } else {
        print_summary(&cfg, &outcome);
    }
    Ok(code)
}

/// `--plan-only`: the validated configuration's key settings and the nemesis schedule, as JSON.
fn print_plan(cfg: &RunConfig) -> Result<()> {
    let plan = serde_json::json!({
        "seed": cfg.seed,
        "server": cfg.server.to_string(),
        "workload": cfg.workload.name(),
        "masters": cfg.masters,
        "spare_masters": cfg.spare_masters,
        "keys": cfg.keys,
        "slots": cfg.slots,
        "key_dist": cfg.key_dist.name(),
        "migrate_target": cfg.migrate_target.name(),
        "persistence": cfg.persistence.name(),
        "failover": cfg.failover.name(),
        "nemesis": cfg.nemesis,
        "nemesis_schedule": cfg.schedule(),
    });
    println!("{}", serde_json::to_string_pretty(&plan)?);
    Ok(())
}

/// The human summary: the report, the nemesis's tally, what was detected and where the files
/// went.
fn print_summary(cfg: &RunConfig, outcome: &RunOutcome) {
    print!("{}", render(outcome.report.clone(), KEYS_SHOWN_MAX));
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
    print_detection(cfg, outcome, true);
    println!("history: {}", outcome.history.display());
    if let Some(html) = &outcome.report_html {
        println!("report: {}", html.display());
    }
}

/// Writes what the run detected to `detection.json` beside its history, and prints it when
/// `print`; a failure here is a warning, never the run's verdict.
pub fn print_detection(cfg: &RunConfig, outcome: &RunOutcome, print: bool) -> Option<Detection> {
    match detect(
        outcome.loaded.as_ref(),
        &outcome.report,
        cfg.client_bug,
        cfg.server_bug
            .map(|bug| (bug, outcome.server_bug_injected.unwrap_or(0))),
        cfg.scenario,
    ) {
        Ok(d) => {
            if print {
                println!("{d}");
            }
            if let Err(e) = d.write(&cfg.output) {
                warn(&format!("{e:#}"));
            }
            Some(d)
        }
        Err(e) => {
            warn(&format!("no detection summary: {e:#}"));
            None
        }
    }
}
