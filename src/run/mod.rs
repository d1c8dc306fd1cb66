//! The one run pipeline: a test, a soak and a PikiwiDB run are compositions of the same stages,
//! each a function over one [`Run`] value that carries what flows between them.
//!
//! - [`start`]: the cluster up, the client asked what it is, the history header;
//! - [`record`]: the history opened with that header, giving the [`Run`];
//! - [`drive`]: the workload and the nemesis, concurrently, for the run's duration;
//! - [`heal`]: every fault healed, then the final reads of every key;
//! - [`verify`]: what the healed nodes hold (the one place its findings enter a report);
//! - [`check`]: the history against the workload's model;
//! - [`report`]: `results.json` and `report.html`.
//!
//! [`run_test`] is `slotcheck test`, [`pika::run_pika`] is `slotcheck test --server pikiwidb`
//! (over `Run<PikaCluster, PikaRun>`), and the soak (the `soak` module) drives the same stages
//! with a segmented history and a rolling checker.

pub mod check;
pub mod drive;
pub mod heal;
pub mod pika;
pub mod record;
pub mod report;
pub mod start;
pub mod verify;

use crate::config::RunConfig;
use crate::harness::proxy::bug::P_DEFAULT;
use crate::harness::Cluster;
use crate::nemesis::net;
use crate::nemesis::runner::NemesisSummary;
use crate::nemesis::schedule::Schedule;
use crate::term::warn;
use anyhow::Result;
use checker::{History, Report};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use workloads::{ClientInfo, Recorder, WorkloadConfig};

pub use check::{
    check_history, check_loaded, check_run, model_of, read_unless_large, STREAM_BYTES_MIN,
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

/// Runs one test end to end: start, record, drive, heal, final reads, verify, check, report.
/// Servers are stopped and faults healed when this returns, also on error.
pub async fn run_test(cfg: &RunConfig) -> Result<RunOutcome> {
    let started = start::start(cfg, |cluster| {
        if let Some(bug) = cfg.server_bug {
            start::set_server_bug(cluster, bug, cfg.seed, P_DEFAULT);
        }
    })
    .await?;
    let mut run = record::to_file(started)?;
    drive::announce(&run);
    drive::drive(&mut run).await?;
    drive::end_server_bug(&mut run);
    match heal::heal(&mut run).await {
        Ok(()) if !run.interrupted => heal::read_back(&run).await?,
        Ok(()) => {}
        Err(e) => warn(&format!("the cluster did not settle, no final reads: {e}")),
    }
    record::close(&run)?;
    let history = read_unless_large(&run.history_path)?;
    if run.healed && !run.interrupted {
        verify::verify_test(&mut run, history.as_ref()).await?;
    }
    run.cluster.stop();
    let mut report = check::check(&run, history.as_ref())?;
    verify::merge(&run, &mut report, history.as_ref())?;
    let report_html = report::report(
        &run.cfg.output,
        &report,
        history.as_ref(),
        &run.history_path,
    )?;
    Ok(RunOutcome {
        report,
        history: run.history_path,
        loaded: history,
        bring_up: run.cluster.bring_up,
        nemesis: run.family.nemesis,
        interrupted: run.interrupted,
        server_bug_injected: run.family.server_bug_injected,
        report_html,
    })
}
