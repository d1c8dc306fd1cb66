//! What a run detected, in the terms of a detection matrix: the anomaly classes it found (as the
//! checker counts them, [`Report::classes`]), the class its injected client or server bug or
//! scenario must produce, whether it did, and whether the scenario's precondition occurred. Written as `detection.json` beside the
//! history, so `scripts/matrix.sh` can tabulate runs.

use crate::harness::proxy::bug::ServerBug;
use crate::scenario::{Precondition, Scenario};
use anyhow::{Context, Result};
use checker::{History, Ops, Report};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use workloads::ClientBug;

/// One run's detection summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    /// The checker's verdict: `valid`, `invalid` or `unknown`.
    pub verdict: String,
    /// Anomalies found, by class (invalid keys count one each).
    pub classes: BTreeMap<String, usize>,
    /// The same anomalies by cause, then by class (see `checker::cause`).
    pub causes: BTreeMap<checker::CauseKind, BTreeMap<String, usize>>,
    /// The injected client bug, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_bug: Option<ClientBug>,
    /// The injected server bug, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_bug: Option<ServerBug>,
    /// How many requests the server bug hit: 0 means it never fired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_bug_injected: Option<u64>,
    /// The scenario, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<Scenario>,
    /// The class the bug or scenario must produce; `None` for a clean run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<&'static str>,
    /// Whether `expected` is among `classes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected: Option<bool>,
    /// Whether the scenario's fault happened, and how much it exposed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precondition: Option<Precondition>,
}

impl Detection {
    /// Writes `detection.json` into `dir`; returns its path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join("detection.json");
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

/// Renders as a few lines: classes, precondition, expectation.
impl fmt::Display for Detection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "anomaly classes: {}",
            checker::counts_text(&self.classes)
        )?;
        if !self.causes.is_empty() {
            write!(f, "\nby cause: {}", checker::causes_line(&self.causes))?;
        }
        if let Some(s) = self.scenario {
            write!(f, "\nscenario {s}: ")?;
            match &self.precondition {
                Some(p) if p.occurred => write!(f, "precondition occurred: {}", p.text)?,
                Some(p) => write!(f, "precondition did NOT occur: {}", p.text)?,
                None => write!(f, "precondition not computed (history too large)")?,
            }
        }
        if let Some(bug) = self.client_bug {
            write!(f, "\nclient bug {bug} injected: {}", bug.description())?;
        }
        if let Some(bug) = self.server_bug {
            let n = self.server_bug_injected.unwrap_or(0);
            write!(
                f,
                "\nserver bug {bug} injected {n} times: {}",
                bug.description()
            )?;
        }
        match (self.expected, self.detected) {
            (Some(class), Some(true)) => write!(f, "\nexpected {class}: detected"),
            (Some(class), _) => write!(f, "\nexpected {class}: NOT detected"),
            (None, _) => Ok(()),
        }
    }
}

/// Builds the detection summary of the run whose check gave `report`: `loaded` is its history
/// as the run read it (`None` when it was too large to read whole, and then the scenario's
/// precondition is not computed); `server_bug` comes with the number of requests it hit.
pub fn detect(
    loaded: Option<&History>,
    report: &Report,
    client_bug: Option<ClientBug>,
    server_bug: Option<(ServerBug, u64)>,
    scenario: Option<Scenario>,
) -> Result<Detection> {
    let parsed = match loaded {
        Some(h) => Some((h, Ops::from_history(h)?.ops)),
        None => None,
    };
    let classes = report.classes();
    let expected = match (scenario, client_bug) {
        (Some(s), _) => Some(s.expected()),
        (None, Some(bug)) => Some(bug.expected()),
        (None, None) => server_bug.map(|(bug, _)| bug.expected()),
    };
    let precondition = match (scenario, &parsed) {
        (Some(s), Some((h, ops))) => Some(s.precondition(h, ops)),
        _ => None,
    };
    Ok(Detection {
        verdict: report.valid.name().to_string(),
        detected: expected.map(|c| classes.contains_key(c)),
        classes,
        causes: report.causes.clone(),
        client_bug,
        server_bug: server_bug.map(|(bug, _)| bug),
        server_bug_injected: server_bug.map(|(_, n)| n),
        scenario,
        expected,
        precondition,
    })
}
