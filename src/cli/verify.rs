//! `slotcheck verify`: the command-line face of [`slotcheck::verify`].

use anyhow::{bail, Context, Result};
use slotcheck::harness::ClusterState;
use slotcheck::verify::{self, VerifyOptions};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `slotcheck verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Any node of the cluster (`host:port`; more than one if some may be down). The other nodes
    /// are found through `CLUSTER NODES`.
    #[arg(required_unless_present = "dir")]
    addrs: Vec<String>,
    /// A cluster started by `slotcheck cluster up --dir DIR`, instead of addresses.
    #[arg(long, conflicts_with = "addrs")]
    dir: Option<PathBuf>,
    /// Also judge the final value of every key this history (a register workload's) touched, and
    /// name each finding's slot migrations from it.
    #[arg(long)]
    history: Option<PathBuf>,
    /// Compare the values (digests) of every key on every replica and duplicated key, not only
    /// where key counts differ.
    #[arg(long)]
    deep: bool,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Keys named per finding.
    #[arg(long, default_value_t = 20)]
    sample: usize,
    /// Also write the results to this file.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

/// Runs verify; exit 0 when nothing was found, 1 when something was.
pub fn run(args: VerifyArgs) -> Result<ExitCode> {
    let seeds = match (&args.dir, args.addrs.is_empty()) {
        (Some(dir), _) => {
            let path = dir.join("cluster.json");
            let state =
                ClusterState::load(&path).with_context(|| format!("reading {}", path.display()))?;
            state.nodes.iter().map(|n| n.node.addr.clone()).collect()
        }
        (None, false) => args.addrs.clone(),
        (None, true) => bail!("name a node (`slotcheck verify 127.0.0.1:7000`) or --dir DIR"),
    };
    let history = match &args.history {
        Some(path) => Some(
            checker::History::read_file(path)
                .with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    let opts = VerifyOptions {
        deep: args.deep,
        sample_max: args.sample.max(1),
        ..VerifyOptions::default()
    };
    let v = super::runtime()?.block_on(verify::verify(&seeds, history.as_ref(), &opts))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        verify::print(&v);
    }
    if let Some(path) = &args.output {
        std::fs::write(path, serde_json::to_vec_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if v.anomalies.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
