//! `slotcheck report`: check a saved run's history again and rewrite its results.json and
//! report.html.

use super::render::{render, KEYS_SHOWN_MAX};
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

/// The server name of a PikiwiDB run's header, whose saved check reads the whole history.
const PIKA: &str = "pikiwidb";

/// The flags of `slotcheck report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The run directory (e.g. store/latest).
    run_dir: PathBuf,
}

/// Runs `slotcheck report`; the exit code is the verdict's (0 valid, 1 invalid, 2 unknown).
pub fn run(args: ReportArgs) -> Result<ExitCode> {
    use slotcheck::{report, run, verify};
    let run_dir = &args.run_dir;
    let saved = report::SavedRun::open(run_dir)?;
    let model = run::model_of(saved.workload);
    let streamed = run::streams(model).then_some(model);
    let findings = verify::read_findings(run_dir)?;
    // The register family is checked and drawn from the one path's read: the whole history
    // only for what needs it (causes of verify's findings, PikiwiDB's annotations).
    let whole = streamed.is_none() || !findings.is_empty() || saved.server.as_deref() == Some(PIKA);
    let history = match whole {
        true => run::read_unless_large(&saved.history)?,
        false => None,
    };
    let mut checked = run::check_run(&saved.history, history.as_ref(), saved.workload)?;
    if let Some(history) = &history {
        slotcheck::pika::explain::annotate_saved(history, &mut checked)?;
    }
    verify::merge(&mut checked, &findings, history.as_ref())?;
    let done = report::rewrite(&saved, &checked, history.as_ref(), streamed)?;
    let valid = checked.valid;
    print!("{}", render(checked, KEYS_SHOWN_MAX));
    println!("results: {}", done.results.display());
    println!("report: {}", done.html.display());
    Ok(ExitCode::from(valid.exit_code()))
}
