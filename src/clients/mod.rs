//! Clients under test: the names `--client` takes and what each runs. slotcheck's own router is
//! the reference; the others are client libraries whose redirect handling is under test.
//! [`compare`] runs them side by side, configured by a [`builder::CompareBuilder`].

pub mod builder;
pub mod compare;

use std::path::PathBuf;
use workloads::{ClientChoice, ExternalSpec, WorkloadKind};

/// Every named client `--client` takes, for help texts and the comparison.
pub const CLIENT_NAMES: [&str; 4] = ["slotcheck", "redis-rs", "redis-py", "node-redis"];

/// Reads a `--client` value: a name of [`CLIENT_NAMES`], or `exec:PROGRAM ARGS...` for an
/// adapter of your own (split on spaces; see the README's "Adding a client").
pub fn parse_client(text: &str) -> Result<ClientChoice, String> {
    match text {
        "slotcheck" => Ok(ClientChoice::Slotcheck),
        "redis-rs" => Ok(ClientChoice::RedisRs),
        "redis-py" | "node-redis" => adapter(text).map(ClientChoice::External),
        other => match other.strip_prefix("exec:") {
            Some(command) if !command.trim().is_empty() => {
                Ok(ClientChoice::External(ExternalSpec {
                    name: "exec".into(),
                    argv: command.split_whitespace().map(str::to_string).collect(),
                }))
            }
            _ => Err(format!(
                "unknown client {other:?}; expected one of {} or exec:PROGRAM ARGS",
                CLIENT_NAMES.join(", ")
            )),
        },
    }
}

/// The directory of the bundled adapters: `$SLOTCHECK_CLIENTS_DIR`, else `clients/` under the
/// current directory, else the one in the source tree slotcheck was built from.
pub fn clients_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLOTCHECK_CLIENTS_DIR") {
        return PathBuf::from(dir);
    }
    let here = PathBuf::from("clients");
    if here.join("redis-py").is_dir() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// A bundled adapter (`redis-py`, `node-redis`), or why it cannot run here (its library is
/// installed by `scripts/setup.sh`).
pub fn adapter(name: &str) -> Result<ExternalSpec, String> {
    let dir = clients_dir().join(name);
    let (program, script, library) = match name {
        "redis-py" => ("python3", "adapter.py", ".site/redis/__init__.py"),
        "node-redis" => ("node", "adapter.mjs", "node_modules/redis/package.json"),
        other => return Err(format!("no bundled adapter {other}")),
    };
    if !dir.join(library).exists() {
        return Err(format!(
            "{} is missing: run scripts/setup.sh",
            dir.join(library).display()
        ));
    }
    let found = std::process::Command::new(program)
        .arg("--version")
        .output();
    if !found.is_ok_and(|out| out.status.success()) {
        return Err(format!("{program} is not on PATH: run scripts/setup.sh"));
    }
    Ok(ExternalSpec {
        name: name.into(),
        argv: vec![program.into(), dir.join(script).display().to_string()],
    })
}

/// Reads a `--workload` value.
pub fn parse_workload(text: &str) -> Result<WorkloadKind, String> {
    WorkloadKind::parse(text).ok_or_else(|| {
        format!("unknown workload {text:?}; expected register, counter, types, cas-register, list-append or rw-register")
    })
}
