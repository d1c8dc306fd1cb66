//! The report stage: `results.json` and `report.html` in the run's output directory.

use crate::term::warn;
use anyhow::Result;
use checker::{History, ModelKind, Report};
use std::path::{Path, PathBuf};

/// Writes `results.json`, then `report.html`: from `history` when the run read it whole for
/// verify (the page is the same either way, and the file is not read again); else, of a
/// register-family history (`streamed`, its model), from the one path's read of the file at
/// `history_path`; else from the file read whole. Returns the page, unless it could not be
/// written (a warning says why).
pub fn report(
    output: &Path,
    report: &Report,
    history: Option<&History>,
    history_path: &Path,
    streamed: Option<ModelKind>,
) -> Result<Option<PathBuf>> {
    crate::report::write_results(output, report)?;
    let drawing = crate::term::spinner("writing report.html");
    let html = match (streamed, history) {
        (_, Some(h)) => crate::report::write(output, h, report),
        (Some(model), None) => crate::report::write_streamed(output, history_path, model, report),
        (None, None) => crate::report::write_for_history(output, history_path, report),
    };
    drawing.finish_and_clear();
    Ok(html
        .map_err(|e| warn(&format!("no report.html: {e:#}")))
        .ok())
}
