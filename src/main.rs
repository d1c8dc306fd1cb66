//! The `slotcheck` command: clap's [`Cli`] and the dispatch to one module of [`cli`] per
//! command, a thin layer over the `slotcheck`, `workloads` and `checker` crates.

mod cli;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit code for bad arguments or unreadable input, as Jepsen's CLI.
const EXIT_BAD_ARGS: u8 = 254;
/// Exit code for an internal error, as Jepsen's CLI.
const EXIT_INTERNAL: u8 = 255;

#[derive(Parser, Debug)]
#[command(
    name = "slotcheck",
    version,
    about = "Jepsen-style tests of Redis Cluster slot migration"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a cluster, run clients while slots migrate, check the history, stop everything.
    Test(Box<cli::test::TestArgs>),
    /// Run the workload and nemesis for hours, check each closed window as it closes and raise
    /// an alarm at the first anomaly; or check (`--check DIR`) a soak's segments afterwards.
    Soak(Box<cli::soak::SoakArgs>),
    /// Check saved histories (slotcheck's, Jepsen's, Knossos's, Porcupine's) and print their
    /// verdicts (exit 0 valid, 1 invalid, 2 unknown, 254 unreadable or malformed input).
    Check(cli::check::CheckArgs),
    /// Start or stop a local cluster that outlives this command.
    Cluster(cli::cluster::ClusterArgs),
    /// Check a saved run directory's history.jsonl again and rewrite its results.json and
    /// report.html (exit 0 valid, 1 invalid, 2 unknown).
    Report(cli::report::ReportArgs),
    /// Write a history as Jepsen's history.edn, for Knossos and Elle.
    Export(cli::export::ExportArgs),
    /// Measure migrations and the client side by side with redis-cli and redis-benchmark;
    /// results go to store/bench-<what>/<time>/ (bench.json, bench.html).
    Bench(cli::bench::BenchArgs),
    /// Run the same workload and nemeses through each client library under test (slotcheck,
    /// redis-rs, redis-py, node-redis) and print what each run found, side by side.
    Clients(cli::clients::ClientsArgs),
    /// Compare what the nodes hold with where it should be (stranded, duplicated keys, replicas,
    /// open or uncovered slots) and, given a history, with what it says (exit 0 clean, 1 findings).
    Verify(cli::verify::VerifyArgs),
}

fn main() -> ExitCode {
    // Die quietly when stdout is a closed pipe (`slotcheck check h | head`), as Unix tools do.
    // SAFETY: resetting a signal disposition before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout and succeed; bad arguments are 254, not clap's 2,
            // which would read as an unknown verdict.
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { EXIT_BAD_ARGS } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("[ERR] {err:#}");
            ExitCode::from(if cli::is_bad_input(&err) {
                EXIT_BAD_ARGS
            } else {
                EXIT_INTERNAL
            })
        }
    }
}

/// Runs the command `cli` names; its exit code, or an error (bad input exits 254, anything
/// else 255).
fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Test(args) => cli::test::run(*args),
        Command::Soak(args) => cli::soak::run(*args),
        Command::Check(args) => cli::check::run(args),
        Command::Cluster(args) => cli::cluster::run(args),
        Command::Report(args) => cli::report::run(args),
        Command::Export(args) => cli::export::run(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Clients(args) => cli::clients::run(args),
        Command::Verify(args) => cli::verify::run(args),
    }
}
