//! The one run pipeline: a test, a soak and a PikiwiDB run are compositions of the same stages,
//! each a function over one [`Run`] value that carries what flows between them. A server family
//! plugs in through [`family::Family`], and [`family::run_family`] is the one sequence of stages
//! over any family (its nemesis and placement check behind `nemesis::Nemesis` and
//! `verify::Placement`).
//!
//! - [`start`]: the cluster up, the client asked what it is, the history header;
//! - [`record`]: the history opened with that header, giving the [`Run`];
//! - [`drive`]: the workload and the nemesis, concurrently, for the run's duration;
//! - [`heal`]: every fault healed, then the final reads of every key;
//! - [`verify`]: what the healed nodes hold (the one place its findings enter a report);
//! - [`check`]: the history against the workload's model;
//! - [`report`]: `results.json` and `report.html`.
//!
//! [`run_test`] is `slotcheck test` (the Redis Cluster family, [`ClusterRun`], in `cluster.rs`),
//! [`pika::run_pika`] is `slotcheck test --server pikiwidb` (over `Run<PikaCluster, PikaRun>`),
//! both `run_family`; the soak (the `soak` module) drives the same stages with a segmented
//! history and a rolling checker.

mod attach;
pub mod check;
mod cluster;
pub mod drive;
pub mod family;
pub mod heal;
pub mod pika;
pub mod record;
pub mod report;
pub mod start;
pub mod verify;

use crate::config::RunConfig;
use crate::harness::Cluster;
use crate::nemesis::net;
use crate::nemesis::runner::NemesisSummary;
use crate::nemesis::schedule::Schedule;
use anyhow::Result;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use workloads::{ClientInfo, Recorder, WorkloadConfig};

pub use attach::NEEDS_HOSTS;
pub use check::{
    analyze, assumptions_of, check_history, check_loaded, check_run, model_of, options_of,
    read_unless_large, search_memory, streams, unanalyzed_warning, with_search_memory,
    STREAM_BYTES_MIN,
};

/// The state that flows between the stages of one run, over any server family `S` (a Redis
/// Cluster by default), with what only that family's runs carry in `family` (`F`).
pub struct Run<S = Cluster, F = ClusterRun> {
    /// The run's configuration.
    pub cfg: RunConfig,
    /// Fires on Ctrl-C.
    pub interrupt: CancellationToken,
    /// The servers under test; stopped when the last handle is dropped.
    pub cluster: Arc<S>,
    /// The workload the clients drive.
    pub workload: WorkloadConfig,
    /// Where every event goes.
    pub recorder: Recorder,
    /// The history file (a soak: its segments directory).
    pub history_path: PathBuf,
    /// Whether Ctrl-C ended the drive.
    pub interrupted: bool,
    /// Whether every fault was healed and the cluster settled (after [`heal`]).
    pub healed: bool,
    /// What verify found on the healed servers (after [`verify`]; `None` when it did not run).
    pub verified: Option<Vec<checker::Anomaly>>,
    /// Keys the workload used beyond its named keys (after [`drive`]), for the final reads.
    pub extra_keys: Vec<String>,
    /// What only this family's runs carry.
    pub family: F,
}

/// What a Redis Cluster run carries beyond the common stages: its faults.
pub struct ClusterRun {
    /// The iptables chain while the run partitions (dropped once healed).
    pub partitioner: Option<Arc<net::Partitioner>>,
    /// The seeded plan of every nemesis action.
    pub schedule: Schedule,
    /// What the client under test says it is.
    pub client: ClientInfo,
    /// What the nemesis did (after [`drive`]).
    pub nemesis: NemesisSummary,
    /// With a server bug, how many requests it hit during the workload.
    pub server_bug_injected: Option<u64>,
}

impl Run {
    /// The run from what [`start`] brought up, recording to `recorder` at `history_path`.
    pub fn new(
        started: start::Started,
        recorder: Recorder,
        history_path: PathBuf,
        workload: WorkloadConfig,
    ) -> Run {
        Run {
            cfg: started.cfg,
            interrupt: started.interrupt,
            cluster: started.cluster,
            workload,
            recorder,
            history_path,
            interrupted: false,
            healed: false,
            verified: None,
            extra_keys: Vec::new(),
            family: ClusterRun {
                partitioner: started.partitioner,
                schedule: started.schedule,
                client: started.client,
                nemesis: NemesisSummary::default(),
                server_bug_injected: None,
            },
        }
    }
}

/// What a `slotcheck test` run produced, for the terminal summary and the exit code.
pub type RunOutcome = family::RunOutcome<NemesisSummary>;

/// Runs one Redis Cluster test end to end: start, record, drive, heal, final reads, verify,
/// check, report. Servers are stopped and faults healed when this returns, also on error.
pub async fn run_test(cfg: &RunConfig) -> Result<RunOutcome> {
    family::run_family::<ClusterRun>(cfg).await
}
