//! The command line's way into detection runs: `--scenario`, `--client-bug` and `--server-bug`
//! (each with `list`), applied to a [`RunConfig`], and the detection summary printed after the check.

use crate::config::RunConfig;
use crate::detect::{detect, Detection};
use crate::harness::proxy::bug::ServerBug;
use crate::nemesis::schedule::FaultKind;
use crate::run::RunOutcome;
use crate::scenario::Scenario;
use crate::term::warn;
use anyhow::{bail, Result};
use workloads::ClientBug;

/// The text `--scenario list`, `--client-bug list` or `--server-bug list` asks for, if any does.
pub fn listing(
    scenario: Option<&str>,
    client_bug: Option<&str>,
    server_bug: Option<&str>,
) -> Option<String> {
    let mut out = String::new();
    if scenario == Some("list") {
        for s in Scenario::ALL {
            out.push_str(&format!("{s}\n    {}\n", s.description()));
        }
    }
    if client_bug == Some("list") {
        for b in ClientBug::ALL {
            out.push_str(&format!(
                "{b}\n    {}; expected: {} (verdict invalid, cause client)\n",
                b.description(),
                b.expected()
            ));
        }
    }
    if server_bug == Some("list") {
        for b in ServerBug::ALL {
            out.push_str(&format!(
                "{b}\n    {}; expected: {} (verdict invalid)\n",
                b.description(),
                b.expected()
            ));
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Applies `--scenario` (its preset replaces shape, nemesis, pacing and length),
/// `--client-bug` and `--server-bug` to `cfg`, refusing combinations that cannot work.
pub fn configure(
    cfg: &mut RunConfig,
    scenario: Option<&str>,
    client_bug: Option<&str>,
    server_bug: Option<&str>,
) -> Result<()> {
    if let Some(name) = scenario {
        let s: Scenario = name.parse().map_err(anyhow::Error::msg)?;
        cfg.apply_scenario(s)?;
    }
    if let Some(name) = client_bug {
        let bug: ClientBug = name.parse().map_err(anyhow::Error::msg)?;
        if bug.needs_replicas() && cfg.replicas == 0 {
            bail!("--client-bug {bug} needs --replicas 1 or more");
        }
        let timeouts =
            |k: &FaultKind| matches!(k.name(), "pause" | "kill" | "partition" | "slow" | "strike");
        if bug.needs_timeouts() && !cfg.nemesis.iter().any(timeouts) {
            warn(&format!(
                "--client-bug {bug} only shows when requests time out: add a fault that makes \
                 them (--nemesis pause, kill, partition or slow)"
            ));
        }
        cfg.client_bug = Some(bug);
    }
    if let Some(name) = server_bug {
        let bug: ServerBug = name.parse().map_err(anyhow::Error::msg)?;
        if cfg.nemesis.contains(&FaultKind::Slow) {
            bail!(
                "--server-bug {bug} relays requests one by one: it cannot run with --nemesis slow"
            );
        }
        cfg.server_bug = Some(bug);
    }
    Ok(())
}

/// Writes what the run detected to `detection.json` beside its history, and prints it when
/// `print`; a failure here is a warning, never the run's verdict.
pub fn print_detection(cfg: &RunConfig, outcome: &RunOutcome, print: bool) -> Option<Detection> {
    match detect(
        outcome.loaded.as_ref(),
        &outcome.report,
        cfg.client_bug,
        cfg.server_bug
            .map(|bug| (bug, outcome.server_bug_injected.unwrap_or(0))),
        cfg.scenario,
    ) {
        Ok(d) => {
            if print {
                println!("{d}");
            }
            if let Err(e) = d.write(&cfg.output) {
                warn(&format!("{e:#}"));
            }
            Some(d)
        }
        Err(e) => {
            warn(&format!("no detection summary: {e:#}"));
            None
        }
    }
}
