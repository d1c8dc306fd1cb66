//! One run over any server family: [`Family`] is what a family adds to the run pipeline (how
//! its run starts and records, drives its [`Nemesis`], heals, which [`Placement`] check it runs
//! and what it explains), and [`run_family`] is the one sequence of stages over it: start and
//! record → drive → heal and final reads → verify → check → merge → report.
//!
//! The Redis Cluster family ([`super::ClusterRun`], `slotcheck test`) is in `cluster.rs`,
//! PikiwiDB's ([`super::pika::PikaRun`], `slotcheck test --server pikiwidb`) in `pika.rs`.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use checker::{History, Report};

use super::{check, drive, record, report, verify, Run};
use crate::config::RunConfig;
use crate::harness::ServerFamily;
use crate::nemesis::Nemesis;
use crate::verify::Placement;

/// What the nemesis of family `F` reports it did.
pub type SummaryOf<F> = <<F as Family>::Nemesis as Nemesis>::Summary;

/// A server family as the run pipeline drives it, implemented on what only its runs carry (the
/// `F` of [`Run<S, F>`](Run)); each hook is one stage, or the family's part of one.
pub trait Family: Sized {
    /// The family's servers: processes and routing.
    type Servers: ServerFamily;
    /// The family's migration verbs and faults.
    type Nemesis: Nemesis;
    /// The family's placement check, borrowing what it needs from the run.
    type Placement<'a>: Placement
    where
        Self: 'a;

    /// The start and record stages: the servers up and the history opened with its header.
    fn open(cfg: &RunConfig) -> impl Future<Output = Result<Run<Self::Servers, Self>>>;
    /// The family's nemesis over `run`'s servers, recording to its history.
    fn nemesis(run: &Run<Self::Servers, Self>) -> Self::Nemesis;
    /// The drive stage's start: what the run is about to do, and anything written before the
    /// workload and the nemesis start.
    fn prepare(run: &mut Run<Self::Servers, Self>) -> impl Future<Output = Result<()>>;
    /// Holds the run's time while the workload and [`Self::nemesis`] run, until `deadline` or
    /// Ctrl-C; returns whether Ctrl-C ended it.
    fn hold(run: &mut Run<Self::Servers, Self>, _deadline: Instant) -> impl Future<Output = bool> {
        crate::term::wait(run.cfg.duration, &run.interrupt, "running")
    }
    /// The drive stage's end, once the workload and the nemesis stopped (nothing by default).
    fn driven(_run: &mut Run<Self::Servers, Self>) {}
    /// The heal and final-reads stages, as the family heals.
    fn heal(run: &mut Run<Self::Servers, Self>) -> impl Future<Output = Result<()>>;
    /// The history as the later stages read it: whole, unless too large to (then `None`).
    fn read(run: &Run<Self::Servers, Self>) -> Result<Option<History>> {
        check::read_unless_large(&run.history_path)
    }
    /// The family's placement check of the healed run, or `None` when it is not to run (the run
    /// was interrupted or did not settle).
    fn placement<'a>(
        run: &'a mut Run<Self::Servers, Self>,
        history: Option<&History>,
    ) -> Result<Option<Self::Placement<'a>>>;
    /// What the family explains in the checked `report` beyond the check (nothing by default).
    fn annotate(_run: &Run<Self::Servers, Self>, _history: Option<&History>, _report: &mut Report) {
    }
    /// What the family says once the report is written (nothing by default).
    fn reported(_run: &Run<Self::Servers, Self>) {}
    /// The last stage, also after a failed one, before the servers stop: what the family
    /// leaves tidy (an attached cluster's keys and logs; nothing by default).
    fn finish(_run: &mut Run<Self::Servers, Self>) -> impl Future<Output = ()> {
        std::future::ready(())
    }
    /// What the nemesis did (kept by the drive, taken out for the run's outcome).
    fn summary(&mut self) -> &mut SummaryOf<Self>;
    /// With a server bug, how many requests it hit during the workload.
    fn server_bug_injected(&self) -> Option<u64> {
        None
    }
}

/// What a run produced, for the terminal summary and the exit code; `N` is what its family's
/// nemesis did.
pub struct RunOutcome<N> {
    /// The checker's verdict and statistics, with verify's and the family's findings merged.
    pub report: Report,
    /// The recorded history.
    pub history: PathBuf,
    /// The history as read for verify, the other models' check and the report (`None` past
    /// [`check::STREAM_BYTES_MIN`]; a register-family check never needs it).
    pub loaded: Option<History>,
    /// Fresh-process bring-up time of the servers.
    pub bring_up: Duration,
    /// What the nemesis did.
    pub nemesis: N,
    /// Whether the user interrupted the run with Ctrl-C.
    pub interrupted: bool,
    /// With a server bug, how many requests it hit during the workload.
    pub server_bug_injected: Option<u64>,
    /// The run's `report.html`, unless it could not be written (a warning says why).
    pub report_html: Option<PathBuf>,
}

/// Runs one test of family `F` end to end: start, record, drive, heal, final reads, verify,
/// check, report. Servers are stopped and faults healed when this returns, also on error.
pub async fn run_family<F: Family>(cfg: &RunConfig) -> Result<RunOutcome<SummaryOf<F>>> {
    let mut run = F::open(cfg).await?;
    let staged = stages(&mut run).await;
    F::finish(&mut run).await;
    run.cluster.stop();
    let (report, loaded, report_html) = staged?;
    Ok(RunOutcome {
        report,
        loaded,
        report_html,
        bring_up: run.cluster.bring_up(),
        nemesis: std::mem::take(run.family.summary()),
        interrupted: run.interrupted,
        server_bug_injected: run.family.server_bug_injected(),
        history: run.history_path,
    })
}

/// The checked report, the history as read and the report page.
type Staged = (Report, Option<History>, Option<PathBuf>);

/// Every stage after the start, on the running servers of `run`.
async fn stages<F: Family>(run: &mut Run<F::Servers, F>) -> Result<Staged> {
    drive::drive(run).await?;
    F::heal(run).await?;
    record::close(run)?;
    let history = F::read(run)?;
    verify::verify(run, history.as_ref()).await?;
    run.cluster.stop();
    let mut report = check::check(run, history.as_ref())?;
    F::annotate(run, history.as_ref(), &mut report);
    verify::merge(run, &mut report, history.as_ref())?;
    let output = &run.cfg.output;
    let model = check::model_of(run.cfg.workload);
    let streamed = check::streams(model).then_some(model);
    let html = report::report(
        output,
        &report,
        history.as_ref(),
        &run.history_path,
        streamed,
    )?;
    F::reported(run);
    Ok((report, history, html))
}
