//! `slotcheck export --edn`: a slotcheck history written as Jepsen's history.edn.

use anyhow::Result;
use slotcheck::term::ok;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The flags of `slotcheck export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Write Jepsen's EDN (one op map per line, keys as jepsen.independent tuples).
    #[arg(long, required = true)]
    edn: bool,
    /// The slotcheck history (history.jsonl).
    history: PathBuf,
    /// Where to write (default: history.edn beside the history).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

/// Runs `slotcheck export`.
pub fn run(args: ExportArgs) -> Result<ExitCode> {
    let output = args.output.unwrap_or_else(|| {
        args.history
            .parent()
            .unwrap_or(Path::new("."))
            .join("history.edn")
    });
    let ops = slotcheck::export::export_file(&args.history, &output)?;
    ok(&format!("{ops} events written to {}", output.display()));
    Ok(ExitCode::SUCCESS)
}
