//! Clients under test: the names `--client` takes and what each runs. slotcheck's own router is
//! the reference; the others are client libraries whose redirect handling is under test.

pub mod cli;
pub mod compare;

use workloads::{ClientChoice, WorkloadKind};

/// Every client `--client` names, for help texts and the comparison.
pub const CLIENT_NAMES: [&str; 2] = ["slotcheck", "redis-rs"];

/// Reads a `--client` value.
pub fn parse_client(text: &str) -> Result<ClientChoice, String> {
    match text {
        "slotcheck" => Ok(ClientChoice::Slotcheck),
        "redis-rs" => Ok(ClientChoice::RedisRs),
        other => Err(format!(
            "unknown client {other:?}; expected one of {}",
            CLIENT_NAMES.join(", ")
        )),
    }
}

/// Reads a `--workload` value.
pub fn parse_workload(text: &str) -> Result<WorkloadKind, String> {
    WorkloadKind::parse(text)
        .ok_or_else(|| format!("unknown workload {text:?}; expected register or counter"))
}
