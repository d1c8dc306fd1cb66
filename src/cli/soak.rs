//! `slotcheck soak`: the command-line face of [`slotcheck::soak`].

use super::test::TestArgs;
use anyhow::Result;
use slotcheck::input::BadInput;
use slotcheck::soak::{self, SoakConfig, SoakOutcome};
use slotcheck::term::{ok, status};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Window length when `--window` is not given.
const WINDOW_MS_DEFAULT: u64 = 30_000;
/// The shortest window: segments are a third of a window, at least a second.
const WINDOW_MS_MIN: u64 = 1000;

/// Arguments of `slotcheck soak`: those of `slotcheck test`, plus the rolling check's.
#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    #[command(flatten)]
    test: TestArgs,
    /// Window length: each key lives this long, and each window is checked as soon as it has
    /// closed (e.g. 30s; default 30s). With --check: the windows to check the segments in
    /// (default: the soak's own, from its header).
    #[arg(long, value_parser = humantime::parse_duration)]
    window: Option<Duration>,
    /// Stop at the first alarm.
    #[arg(long)]
    until_anomaly: bool,
    /// Continue the soak in --output (after a crash, a kill or an earlier end): a new cluster,
    /// with segment numbers, time line and process numbers continuing.
    #[arg(long)]
    resume: bool,
    /// With --server-bug: inject it only this long after the start (e.g. 5m).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    bug_after: Duration,
    /// Check a soak's segments afterwards (one that finished, was interrupted or was killed),
    /// window by window, and start nothing.
    #[arg(long, value_name = "DIR")]
    check: Option<PathBuf>,
}

/// Runs a soak (or checks one); exit 0 when no window raised an alarm, 1 when one did, 2 when a
/// verdict was unknown.
pub fn run(args: SoakArgs) -> Result<ExitCode> {
    let window_ms = args.window.map(|w| w.as_millis() as u64);
    if window_ms.is_some_and(|w| w < WINDOW_MS_MIN) {
        return Err(BadInput::flag("--window must be at least 1s").into());
    }
    if let Some(dir) = &args.check {
        return check(dir, window_ms, &args.test);
    }
    let cfg = config(&args, window_ms.unwrap_or(WINDOW_MS_DEFAULT))?;
    let output = &cfg.run.output;
    super::open_output(
        output,
        args.test.force,
        args.resume,
        args.test.output.is_none(),
    )?;
    let outcome = super::runtime()?.block_on(soak::run_soak(&cfg))?;
    print_outcome(&cfg, &outcome);
    Ok(code(outcome.totals.alarms, outcome.totals.unknown))
}

/// `--check DIR`: checks a soak's segments afterwards, window by window.
fn check(dir: &Path, window_ms: Option<u64>, test: &TestArgs) -> Result<ExitCode> {
    let timeout_ms = test.timeout.as_millis() as u64;
    let (totals, alarms) = soak::check_segments(dir, window_ms, 3 * timeout_ms + 2000)?;
    for a in &alarms {
        soak::alarm(a);
    }
    ok(&format!(
        "{} windows checked, {} ops, {} alarms, {} unknown",
        totals.windows, totals.ops, totals.alarms, totals.unknown
    ));
    Ok(code(totals.alarms, totals.unknown))
}

/// Validates the flags into a [`SoakConfig`]: those of `test` (by its builder), then the soak's.
fn config(args: &SoakArgs, window_ms: u64) -> Result<SoakConfig> {
    if args.test.scenario.is_some() {
        return Err(BadInput::flag(
            "--scenario fixes a short run's schedule; a soak takes --nemesis instead",
        )
        .into());
    }
    if args.resume && args.test.output.is_none() {
        return Err(BadInput::flag("--resume needs --output DIR, the soak to continue").into());
    }
    let run = super::test::config(&args.test)?;
    if run.workload != workloads::WorkloadKind::Register {
        return Err(BadInput::flag(
            "a soak runs the register workload only (its keys live one window each)",
        )
        .into());
    }
    Ok(SoakConfig {
        run,
        window_ms,
        until_anomaly: args.until_anomaly,
        resume: args.resume,
        bug_after_ms: args.bug_after.as_millis() as u64,
    })
}

/// The soak's summary: totals, the first alarm, and where its segments and windows went.
fn print_outcome(cfg: &SoakConfig, outcome: &SoakOutcome) {
    let t = &outcome.totals;
    status(&format!(
        "Soaked {}{}: {} ops in {} windows, {} migrations, {} faults, {} alarms",
        humantime::format_duration(Duration::from_secs(outcome.elapsed.as_secs())),
        if outcome.interrupted {
            " (interrupted)"
        } else {
            ""
        },
        t.ops,
        t.windows,
        t.migrations,
        t.faults,
        t.alarms
    ));
    if let Some(first) = &outcome.first_alarm {
        println!(
            "first alarm: window {} ({} ms)",
            first.window, first.from_ms
        );
    }
    println!(
        "segments: {}",
        cfg.run.output.join(soak::segments::SEGMENTS_DIR).display()
    );
    println!(
        "windows: {}",
        cfg.run.output.join(soak::WINDOWS_FILE).display()
    );
}

/// The exit code of a soak: 1 on an alarm, else 2 on an unknown verdict, else 0.
fn code(alarms: u64, unknown: u64) -> ExitCode {
    ExitCode::from(if alarms > 0 {
        1
    } else if unknown > 0 {
        2
    } else {
        0
    })
}
