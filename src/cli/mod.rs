//! The command line, one file per command: each turns its clap arguments into a validated
//! config (through the config's builder where it has one), runs it and prints what it found.
//!
//! - [`test`] (with [`pika`] for `--server pikiwidb`), [`soak`], [`check`], [`cluster`],
//!   [`report`], [`export`], [`bench`], [`clients`] and [`verify`];
//! - [`render`] prints a checker report on a terminal, as `check`, `test` and `report` do;
//! - this file holds what several commands share: the async runtime, the run log,
//!   `store/latest`, and which errors are bad input (exit 254).

pub mod bench;
pub mod check;
pub mod clients;
pub mod cluster;
pub mod export;
pub mod pika;
pub mod render;
pub mod report;
pub mod soak;
pub mod test;
pub mod verify;

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Whether `err` means bad input (exit 254) rather than an internal error (exit 255): the
/// library's bad input, or a history `check` cannot read.
pub fn is_bad_input(err: &anyhow::Error) -> bool {
    check::is_bad_input(err) || slotcheck::input::is_bad_input(err)
}

/// The multi-threaded async runtime every command that talks to servers runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Points `store/latest` at the newest run directory; failing to do so is not worth an error.
pub fn link_latest(output: &Path) {
    let latest = PathBuf::from("store").join("latest");
    let _ = std::fs::remove_file(&latest);
    if let Ok(rel) = output.strip_prefix("store") {
        let _ = std::os::unix::fs::symlink(rel, &latest);
    }
}

/// Sends the run's tracing output to `<output>/run.log`.
pub fn init_log(output: &Path) -> Result<()> {
    std::fs::create_dir_all(output)
        .with_context(|| format!("creating output directory {}", output.display()))?;
    let file = std::fs::File::create(output.join("run.log"))?;
    tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    Ok(())
}

/// Makes `output` a new run's directory (with `resume`, reuses a soak's), sends the run log
/// there and, when `latest` (no `--output` was given), points `store/latest` at it.
pub fn open_output(output: &Path, force: bool, resume: bool, latest: bool) -> Result<()> {
    if resume {
        slotcheck::input::reuse_output(output)?;
    } else {
        slotcheck::input::prepare_output(output, force)?;
    }
    init_log(output)?;
    if latest {
        link_latest(output);
    }
    Ok(())
}
