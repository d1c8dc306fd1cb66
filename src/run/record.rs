//! The record stage: the history the run writes, opened with its header, and the run's state
//! from here on ([`Run`]).

use anyhow::{Context, Result};
use workloads::Recorder;

use super::start::{header, Started};
use super::Run;

/// The history file of a run, in its output directory.
pub const HISTORY_FILE: &str = "history.jsonl";

/// Opens the run's history file with the header of what `started` brought up.
pub fn to_file(started: Started) -> Result<Run> {
    let history_path = started.cfg.output.join(HISTORY_FILE);
    let recorder = Recorder::create(&history_path, header(&started))
        .with_context(|| format!("creating {}", history_path.display()))?;
    let workload = started.cfg.workload_config();
    Ok(Run::new(started, recorder, history_path, workload))
}

/// Closes the run's history file: every event is on disk.
pub fn close(run: &Run) -> Result<()> {
    run.recorder
        .close()
        .with_context(|| format!("writing {}", run.history_path.display()))
}
