//! `slotcheck cluster up|down`: a local cluster that outlives the command, its state saved in
//! `DIR/cluster.json`.

use anyhow::{bail, Context, Result};
use slotcheck::harness::remote::{quote, remove_stale_chains, HostsFile, Remote};
use slotcheck::harness::{form_on_hosts, Cluster, ClusterSpec, ClusterState, ServerKind};
use slotcheck::term::{ok, status};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The subcommand of `slotcheck cluster`.
#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    action: ClusterAction,
}

#[derive(clap::Subcommand, Debug)]
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
        /// Masters beyond --masters that own no slots (no replicas), as `slotcheck test` has them.
        #[arg(long, default_value_t = 0)]
        spare_masters: usize,
        /// Directory for data, logs and cluster.json.
        #[arg(long, default_value = "store/cluster")]
        dir: PathBuf,
        /// Start the servers on the hosts of this hosts file over SSH and form the cluster
        /// there (the first --masters hosts own the slots, the next --replicas per master
        /// replicate, the rest are masters without slots); --server and --dir are not used.
        #[arg(long)]
        hosts: Option<PathBuf>,
    },
    /// Stop the cluster saved in DIR/cluster.json and remove its data.
    Down {
        /// The directory given to `cluster up`.
        #[arg(long, default_value = "store/cluster")]
        dir: PathBuf,
        /// Stop the servers on the hosts of this hosts file over SSH instead.
        #[arg(long)]
        hosts: Option<PathBuf>,
        /// With --hosts: also empty each host's data directory (nodes.conf, AOF), so that the
        /// next `cluster up --hosts` forms a new cluster.
        #[arg(long)]
        wipe: bool,
    },
}

/// Runs `slotcheck cluster up` or `down`.
pub fn run(args: ClusterArgs) -> Result<ExitCode> {
    match args.action {
        ClusterAction::Up {
            server,
            masters,
            replicas,
            spare_masters,
            dir,
            hosts,
        } => {
            if let Some(hosts) = hosts {
                return up_on_hosts(&hosts, masters, replicas);
            }
            let mut spec = ClusterSpec::new(server, masters, replicas, dir.join("nodes"));
            spec.spare_masters = spare_masters;
            up(spec, &dir)
        }
        ClusterAction::Down {
            hosts: Some(hosts),
            wipe,
            ..
        } => down_on_hosts(&hosts, wipe),
        ClusterAction::Down { dir, .. } => down(&dir),
    }
}

/// Starts the cluster `spec` describes, detaches it and saves its state in `dir`.
fn up(spec: ClusterSpec, dir: &Path) -> Result<ExitCode> {
    let state_path = dir.join("cluster.json");
    if state_path.exists() {
        bail!(
            "{} exists: a cluster may be running; run `slotcheck cluster down --dir {}` first",
            state_path.display(),
            dir.display()
        );
    }
    let spare = match spec.spare_masters {
        0 => String::new(),
        n => format!(", {n} spare masters without slots"),
    };
    status(&format!(
        "Starting {} masters, {} replicas per master{spare} ({})",
        spec.masters, spec.replicas, spec.kind
    ));
    let cluster = super::runtime()?.block_on(Cluster::start(spec))?;
    ok(&format!(
        "cluster ready in {:.2} s",
        cluster.bring_up.as_secs_f64()
    ));
    for n in &cluster.nodes {
        println!("{} {} pid {}", n.addr, n.id, n.pid);
    }
    let state = cluster.detach();
    std::fs::create_dir_all(dir)?;
    state
        .save(&state_path)
        .with_context(|| format!("saving {}", state_path.display()))?;
    println!("state: {}", state_path.display());
    Ok(ExitCode::SUCCESS)
}

/// Stops the cluster saved in `dir` and removes its data.
fn down(dir: &Path) -> Result<ExitCode> {
    let state_path = dir.join("cluster.json");
    let state = ClusterState::load(&state_path)
        .with_context(|| format!("reading {}", state_path.display()))?;
    state.destroy();
    std::fs::remove_file(&state_path)?;
    ok("cluster stopped");
    Ok(ExitCode::SUCCESS)
}

/// Starts the servers of the hosts file over SSH and forms the cluster on them.
fn up_on_hosts(path: &Path, masters: usize, replicas: usize) -> Result<ExitCode> {
    let file = HostsFile::load(path)?;
    status(&format!(
        "Starting {} servers over SSH ({masters} masters, {replicas} replicas per master)",
        file.host.len()
    ));
    let remote = Remote::connect(file).context("reaching the hosts")?;
    let started = std::time::Instant::now();
    let runtime = super::runtime()?;
    runtime.block_on(form_on_hosts(&remote, masters, replicas))?;
    ok(&format!(
        "cluster ready in {:.2} s",
        started.elapsed().as_secs_f64()
    ));
    let seeds = remote.file.addrs();
    let cluster = runtime.block_on(Cluster::attach(&seeds, None))?;
    for (n, (_, version)) in cluster.nodes.iter().zip(&cluster.node_versions) {
        println!("{} {} {} ({version})", n.addr, n.id, n.pid);
    }
    Ok(ExitCode::SUCCESS)
}

/// Stops the servers of the hosts file over SSH (and, with `wipe`, empties their data dirs).
fn down_on_hosts(path: &Path, wipe: bool) -> Result<ExitCode> {
    let file = HostsFile::load(path)?;
    let remote = Remote::connect(file).context("reaching the hosts")?;
    remove_stale_chains(&remote).context("removing iptables chains of dead runs")?;
    let failed = remote.stop_all();
    for e in &failed {
        slotcheck::term::error(&e.to_string());
    }
    if wipe {
        for spec in remote.specs() {
            let script = format!("rm -rf {}/* 2>/dev/null; true", quote(&spec.data_dir));
            remote.ssh(&spec.addr)?.run(&script)?;
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("{} servers did not stop", failed.len());
    }
    ok("servers stopped");
    Ok(ExitCode::SUCCESS)
}
