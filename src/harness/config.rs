//! Checking a `ClusterSpec` against our limits and turning it into server command-line arguments.

use std::path::Path;

use super::cluster::ClusterSpec;
use super::error::HarnessError;
use super::ports::BUS_PORT_OFFSET;

/// Most nodes in one cluster (masters plus replicas).
const NODES_MAX: usize = 64;
/// Most replicas per master.
const REPLICAS_PER_MASTER_MAX: usize = 8;
/// Node timeouts outside this range make no sense for a local test cluster.
const NODE_TIMEOUT_MS_MIN: u64 = 100;
const NODE_TIMEOUT_MS_MAX: u64 = 600_000;
/// Server options the harness sets itself; `extra_config` may not override them.
const RESERVED_CONFIG: &[&str] = &[
    "port",
    "bind",
    "bind-source-addr",
    "dir",
    "cluster-enabled",
    "cluster-config-file",
    "cluster-node-timeout",
    "cluster-port",
    "cluster-announce-port",
    "cluster-announce-bus-port",
    "daemonize",
    "logfile",
];

/// Every node of `spec`: each master with its replicas, then the spare masters.
pub(crate) fn node_count(spec: &ClusterSpec) -> usize {
    spec.masters
        .saturating_mul(1 + spec.replicas)
        .saturating_add(spec.spare_masters)
}

/// Refuses specs outside our limits before any server starts.
pub(crate) fn validate(spec: &ClusterSpec) -> Result<(), HarnessError> {
    let total = node_count(spec);
    let problem = if spec.masters == 0 {
        Some("need at least one master".to_string())
    } else if spec.replicas > REPLICAS_PER_MASTER_MAX {
        Some(format!(
            "{} replicas per master is more than {REPLICAS_PER_MASTER_MAX}",
            spec.replicas
        ))
    } else if total > NODES_MAX {
        Some(format!("{total} nodes is more than {NODES_MAX}"))
    } else if !(NODE_TIMEOUT_MS_MIN..=NODE_TIMEOUT_MS_MAX).contains(&spec.node_timeout_ms) {
        Some(format!(
            "node_timeout_ms {} is outside {NODE_TIMEOUT_MS_MIN}..={NODE_TIMEOUT_MS_MAX}",
            spec.node_timeout_ms
        ))
    } else if spec.dir.as_os_str().is_empty() {
        Some("dir is empty".to_string())
    } else {
        spec.extra_config.iter().find_map(|(name, _)| {
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid {
                Some(format!(
                    "extra config name {name:?} is not a lowercase option name"
                ))
            } else if RESERVED_CONFIG.contains(&name.as_str()) {
                Some(format!("extra config {name:?} is set by the harness"))
            } else {
                None
            }
        })
    };
    match problem {
        Some(problem) => Err(HarnessError::InvalidSpec(problem)),
        None => Ok(()),
    }
}

/// First host of `distinct_hosts`: node i gets `127.0.0.(DISTINCT_HOST_BASE + i)`, clear of 127.0.0.1.
const DISTINCT_HOST_BASE: usize = 10;

/// The address node `i` binds and connects from: its own `127.0.0.x` with `distinct_hosts`, so that
/// iptables can match node-to-node traffic by address; else `127.0.0.1`.
pub(crate) fn node_host(spec: &ClusterSpec, i: usize) -> String {
    if spec.distinct_hosts {
        assert!(i < NODES_MAX, "node index {i} beyond {NODES_MAX}");
        format!("127.0.0.{}", DISTINCT_HOST_BASE + i)
    } else {
        "127.0.0.1".to_string()
    }
}

/// The server's command line: our settings first, then the caller's `extra_config`. `host` is bound for
/// listening and, via `bind-source-addr` (Redis 7.0+, Valkey), used as the source of the node's own
/// cluster-bus and replication connections, so peers see (and gossip) the node under that address.
/// With a `proxy_port` the node announces that port to clients and its own bus port for the bus.
pub(crate) fn server_args(
    spec: &ClusterSpec,
    host: &str,
    port: u16,
    proxy_port: Option<u16>,
    dir: &Path,
    log: &Path,
) -> Vec<String> {
    let ours = [
        ("port", port.to_string()),
        ("bind", host.to_string()),
        ("bind-source-addr", host.to_string()),
        ("cluster-enabled", "yes".to_string()),
        ("cluster-config-file", "nodes.conf".to_string()),
        ("dir", dir.display().to_string()),
        ("save", String::new()),
        ("appendonly", spec.persistence.appendonly().to_string()),
        ("appendfsync", spec.persistence.appendfsync().to_string()),
        ("cluster-node-timeout", spec.node_timeout_ms.to_string()),
        ("repl-diskless-sync", "yes".to_string()),
        ("repl-diskless-sync-delay", "0".to_string()),
        ("logfile", log.display().to_string()),
        ("daemonize", "no".to_string()),
        ("protected-mode", "no".to_string()),
        // `DEBUG DIGEST-VALUE` from loopback lets `slotcheck verify` compare values on any node,
        // also keys stranded on a node that no longer owns their slot (no redirect applies).
        ("enable-debug-command", "local".to_string()),
    ];
    // A master emptied of slots stays a master (see `ClusterSpec::spare_masters`).
    let keep_empty =
        (spec.spare_masters > 0).then(|| ("cluster-allow-replica-migration", "no".to_string()));
    let announce = proxy_port.into_iter().flat_map(|proxy| {
        [
            ("cluster-announce-port", proxy.to_string()),
            (
                "cluster-announce-bus-port",
                (port + BUS_PORT_OFFSET).to_string(),
            ),
        ]
    });
    ours.into_iter()
        .chain(keep_empty)
        .chain(announce)
        .map(|(name, value)| (name.to_string(), value))
        .chain(spec.extra_config.iter().cloned())
        .flat_map(|(name, value)| [format!("--{name}"), value])
        .collect()
}
