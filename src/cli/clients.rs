//! `slotcheck clients`: its flags, validated into a comparison's configuration by a [`CompareBuilder`], the comparison, and its
//! table.

use anyhow::{bail, Context, Result};
use slotcheck::clients::builder::{default_output, CompareBuilder};
use slotcheck::clients::compare::{self, Scenario};
use slotcheck::clients::{parse_client, parse_workload, CLIENT_NAMES};
use slotcheck::harness::{Persistence, ServerKind};
use slotcheck::nemesis::failover::FailoverChoice;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Flags of `slotcheck clients`.
#[derive(clap::Args, Debug)]
pub struct ClientsArgs {
    /// Servers: redis, valkey, or both as a list.
    #[arg(long, default_value = "redis,valkey")]
    server: String,
    /// Clients under test, a list (default: every one).
    #[arg(long)]
    client: Option<String>,
    /// Scenarios: migrate, abort, failover, pause, as a list (default: every one).
    #[arg(long)]
    scenario: Option<String>,
    /// Runs per server, scenario and client.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Length of each run.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Workload: register, counter, cas-register, list-append or rw-register (the last two
    /// leave redis-rs out of the default client list: it runs no MULTI/EXEC).
    #[arg(long, default_value = "register", value_parser = parse_workload)]
    workload: workloads::WorkloadKind,
    /// First seed; run i of every cell uses seed + i.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory for the runs and clients.json (default: store/clients/<start time>/).
    #[arg(long)]
    output: Option<PathBuf>,
    /// What the nodes keep on disk: aof (appendonly, fsync always: a killed node keeps its
    /// acknowledged writes) or off (a killed node comes back empty).
    #[arg(long, default_value = "aof")]
    persistence: Persistence,
    /// Which CLUSTER FAILOVER the failover scenario sends: default (safe), force, takeover,
    /// or mixed (the seeded mix of the three).
    #[arg(long, default_value = "default")]
    failover: FailoverChoice,
    /// Logical processes per client whose ops go out together as one pipeline (1: none); the
    /// default client list then leaves out redis-rs, whose pipelines are not under test (as it
    /// leaves out any client the workload cannot run through).
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
}

fn list<T>(text: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>> {
    let items: Result<Vec<T>, String> = text.split(',').map(str::trim).map(parse).collect();
    let items = items.map_err(anyhow::Error::msg)?;
    if items.is_empty() {
        bail!("an empty list");
    }
    Ok(items)
}

/// Runs the comparison `args` describes; prints its table; exit 1 if any run was invalid.
pub fn run(args: ClientsArgs) -> Result<ExitCode> {
    // The directory is made before the lists are read, as it always was.
    let output = args.output.unwrap_or_else(default_output);
    std::fs::create_dir_all(&output).with_context(|| format!("creating {}", output.display()))?;
    let servers = list(&args.server, |s| {
        s.parse::<ServerKind>().map_err(|e| e.to_string())
    })
    .context("--server")?;
    let named = args.client.is_some();
    let clients = list(
        &args.client.unwrap_or_else(|| CLIENT_NAMES.join(",")),
        parse_client,
    )
    .context("--client")?;
    // A client the workload cannot run through (redis-rs and pipelines or MULTI/EXEC) is an
    // error when named, and left out of the default list.
    let mut refused = Vec::new();
    let mut kept = Vec::new();
    for client in clients {
        let cfg = workloads::WorkloadConfig {
            kind: args.workload,
            client: client.clone(),
            pipeline: args.pipeline,
            ..Default::default()
        };
        let why = match cfg.pipeline_refused() {
            Some(why) => Some(format!("--pipeline {}: {why}", args.pipeline)),
            None => cfg.validate().err().map(|e| e.to_string()),
        };
        match why {
            Some(why) if named => return Err(slotcheck::input::BadInput::flag(why).into()),
            Some(_) => refused.push(client.name().to_string()),
            None => kept.push(client),
        }
    }
    if !refused.is_empty() {
        slotcheck::term::status(&format!(
            "Leaving out {}: the {} workload cannot run through {}",
            refused.join(", "),
            args.workload.name(),
            if refused.len() == 1 { "it" } else { "them" }
        ));
    }
    let clients = kept;
    let scenarios = list(
        &args
            .scenario
            .unwrap_or_else(|| Scenario::ALL.map(Scenario::name).join(",")),
        |s| Scenario::parse(s).ok_or_else(|| format!("unknown scenario {s:?}")),
    )
    .context("--scenario")?;
    let cfg = CompareBuilder::new()
        .servers(servers)
        .clients(clients)
        .scenarios(scenarios)
        .runs(args.runs)
        .duration(args.duration)
        .workload(args.workload)
        .seed(args.seed)
        .output(Some(output))
        .persistence(args.persistence)
        .failover(args.failover)
        .pipeline(args.pipeline)
        .build();
    let rows = super::runtime()?.block_on(compare::run(&cfg))?;
    println!("{}", compare::table(&rows, &cfg).text());
    slotcheck::term::ok(&format!(
        "results: {}",
        cfg.output.join("clients.json").display()
    ));
    let invalid = rows.iter().any(|r| r.invalid_runs > 0);
    Ok(ExitCode::from(u8::from(invalid)))
}
