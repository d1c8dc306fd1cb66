//! The command line's side of detection runs: what `--scenario list`, `--client-bug list` and
//! `--server-bug list` print, and the detection summary printed after the check. (The scenario
//! and bugs themselves are applied by [`slotcheck::config::RunConfigBuilder`].)

use slotcheck::config::RunConfig;
use slotcheck::detect::{detect, Detection};
use slotcheck::nemesis::proxy::bug::ServerBug;
use slotcheck::run::RunOutcome;
use slotcheck::scenario::Scenario;
use slotcheck::term::warn;
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
