//! The record stage: the history the run writes, opened with its header, and the run's state
//! from here on ([`Run`]).

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use workloads::Recorder;

use super::start::{header, Started};
use super::Run;

/// The history file of a run, in its output directory.
pub const HISTORY_FILE: &str = "history.jsonl";

/// Opens the history file in `output` with `header`; returns its recorder and path.
pub fn open(output: &Path, header: checker::Header) -> Result<(Recorder, PathBuf)> {
    let history_path = output.join(HISTORY_FILE);
    let recorder = Recorder::create(&history_path, header)
        .with_context(|| format!("creating {}", history_path.display()))?;
    Ok((recorder, history_path))
}

/// Opens the run's history file with the header of what `started` brought up.
pub fn to_file(started: Started) -> Result<Run> {
    let (recorder, history_path) = open(&started.cfg.output, header(&started))?;
    let workload = started.cfg.workload_config();
    Ok(Run::new(started, recorder, history_path, workload))
}

/// Closes the run's history file: every event is on disk.
pub fn close<S, F>(run: &Run<S, F>) -> Result<()> {
    run.recorder
        .close()
        .with_context(|| format!("writing {}", run.history_path.display()))
}
