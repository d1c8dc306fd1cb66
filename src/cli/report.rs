//! `slotcheck report`: check a saved run's history again and rewrite its results.json and
//! report.html.

use super::render::{render, KEYS_SHOWN_MAX};
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

/// The flags of `slotcheck report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The run directory (e.g. store/latest).
    run_dir: PathBuf,
}

/// Runs `slotcheck report`; the exit code is the verdict's (0 valid, 1 invalid, 2 unknown).
pub fn run(args: ReportArgs) -> Result<ExitCode> {
    let done = slotcheck::report::regenerate(&args.run_dir)?;
    print!("{}", render(done.report.clone(), KEYS_SHOWN_MAX));
    println!("results: {}", done.results.display());
    println!("report: {}", done.html.display());
    Ok(ExitCode::from(done.report.valid.exit_code()))
}
