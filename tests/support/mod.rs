//! What the integration tests share: a cluster of real servers in a temp dir, a history recorder
//! beside it, readers of what a history holds, and the `slotcheck` binary with the check that a
//! run left no server behind.
//!
//! Every test file that starts a cluster or records a history includes it with `mod support;`.
//! A cluster started here is stopped by pid when the value holding it is dropped (the harness's
//! `Cluster` Drop), also when an assertion fails and the test unwinds; its temp dir is declared
//! after it, so the dir outlives the servers. Servers also die with the test process if it is
//! SIGKILLed (`die_with_parent`).
//!
//! ```ignore
//! let bed = support::start(ServerKind::Redis, 3, 0).await.with_history();
//! nemesis::process::kill(&bed.ctx, &addr).await.unwrap();
//! assert!(bed.nemesis_events().iter().any(|e| e.step() == "kill/end"));
//! ```

// Each test binary includes all of this and uses a part of it.
#![allow(dead_code)]

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::{Map, Value};
use slotcheck::harness::{pid_alive, Cluster, ClusterSpec, ServerKind};
use slotcheck::nemesis::migrate::Peer;
use slotcheck::nemesis::Ctx;
use slotcheck::pika::{PikaCluster, PikaSpec, SERVER_ENV};
use tempfile::TempDir;
use workloads::{key_slot, Recorder};

/// The history file's name in a test's temp dir.
pub const HISTORY: &str = "history.jsonl";

/// A running cluster and the temp dir it lives in; dropping it stops every server by pid, then
/// removes the dir (field order).
pub struct TestCluster {
    /// The servers; `Deref` lends its methods (`masters`, `seeds`, `kill`, `wait_stable`, ...).
    pub cluster: Cluster,
    /// The cluster's nodes are in `dir/cluster`; histories go beside them.
    pub dir: TempDir,
}

impl Deref for TestCluster {
    type Target = Cluster;

    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

/// Starts `masters` masters with `replicas` replicas each in a fresh temp dir.
pub async fn start(kind: ServerKind, masters: usize, replicas: usize) -> TestCluster {
    start_with(kind, masters, replicas, |_| {}).await
}

/// As [`start`], with `edit` applied to the spec first (persistence, proxies, distinct hosts,
/// node timeout).
pub async fn start_with(
    kind: ServerKind,
    masters: usize,
    replicas: usize,
    edit: impl FnOnce(&mut ClusterSpec),
) -> TestCluster {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut spec = ClusterSpec::new(kind, masters, replicas, dir.path().join("cluster"));
    spec.die_with_parent = true;
    edit(&mut spec);
    let cluster = Cluster::start(spec).await.expect("the cluster starts");
    eprintln!(
        "bring-up {kind} {} {masters}x{replicas}: {} ms",
        cluster.version,
        cluster.bring_up.as_millis()
    );
    TestCluster { cluster, dir }
}

impl TestCluster {
    /// The masters, in bring-up order (the first owns slots 0-5460 of three), as migration peers.
    pub fn peers(&self) -> Vec<Peer> {
        peers(&self.cluster)
    }

    /// Where this test's history goes.
    pub fn history_path(&self) -> PathBuf {
        self.dir.path().join(HISTORY)
    }

    /// A recorder writing a fresh history (an empty header) to [`TestCluster::history_path`].
    pub fn recorder(&self) -> Recorder {
        recorder(&self.history_path())
    }

    /// The cluster shared as a nemesis would have it, with a history recorder.
    pub fn with_history(self) -> Recorded {
        let history = self.history_path();
        let recorder = recorder(&history);
        let TestCluster { cluster, dir } = self;
        Recorded {
            ctx: Ctx {
                cluster: Arc::new(cluster),
                recorder,
            },
            history,
            dir,
        }
    }
}

/// A cluster with a history, as the nemesis verbs take them; dropping it stops every server (the
/// last `Arc` of the cluster), then removes the dir (field order).
pub struct Recorded {
    /// The cluster and the recorder every verb writes its events to.
    pub ctx: Ctx,
    /// The history file the recorder writes.
    pub history: PathBuf,
    /// The temp dir holding the cluster and the history.
    pub dir: TempDir,
}

impl Recorded {
    /// The cluster under test.
    pub fn cluster(&self) -> &Cluster {
        &self.ctx.cluster
    }

    /// The masters as migration peers.
    pub fn peers(&self) -> Vec<Peer> {
        peers(&self.ctx.cluster)
    }

    /// Closes the history (flushing it) and returns its nemesis events.
    pub fn nemesis_events(&self) -> Vec<NemesisEvent> {
        self.ctx.recorder.close().expect("the history closes");
        nemesis_events(&self.history)
    }
}

/// The masters of `cluster`, in bring-up order, as migration peers.
pub fn peers(cluster: &Cluster) -> Vec<Peer> {
    cluster
        .masters()
        .map(|n| Peer {
            addr: n.addr.clone(),
            id: n.id.clone(),
        })
        .collect()
}

/// A recorder of a fresh history at `path` with an empty header.
pub fn recorder(path: &Path) -> Recorder {
    Recorder::create(path, checker::Header::new(Map::new())).expect("the history is created")
}

/// One nemesis event of a history: the action, its phase (`begin`, `end`, or empty) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct NemesisEvent {
    /// The action (`kill`, `migrate`, `slow`, ...).
    pub f: String,
    /// `value.phase`, empty when the event has none.
    pub phase: String,
    /// The whole `value`.
    pub value: Value,
}

impl NemesisEvent {
    /// `f/phase`, as the tests compare sequences of steps.
    pub fn step(&self) -> String {
        format!("{}/{}", self.f, self.phase)
    }
}

/// The nemesis events of the history at `path`, in order.
pub fn nemesis_events(path: &Path) -> Vec<NemesisEvent> {
    events(path)
        .into_iter()
        .filter(|e| e["process"] == "nemesis")
        .map(|e| NemesisEvent {
            f: e["f"].as_str().unwrap_or_default().to_string(),
            phase: e["value"]["phase"].as_str().unwrap_or_default().to_string(),
            value: e["value"].clone(),
        })
        .collect()
}

/// Every line of the JSON-lines file at `path`, the header first.
pub fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The header of the history at `path` (its first line; the rest may be cut short by a kill).
pub fn header(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(text.lines().next().unwrap_or_default()).expect("a JSON header")
}

/// The events of the history at `path`, header skipped.
pub fn events(path: &Path) -> Vec<Value> {
    read_lines(path).into_iter().skip(1).collect()
}

/// A hash tag whose keys land in `slot`.
pub fn tag_for(slot: u16) -> String {
    (0u32..)
        .map(|i| format!("t{i}"))
        .find(|t| key_slot(t.as_bytes()) == slot)
        .expect("every slot has a tag")
}

/// `n` keys hashing to `slot` (a shared hash tag).
pub fn keys_for(slot: u16, n: usize) -> Vec<String> {
    let tag = tag_for(slot);
    (0..n).map(|i| format!("{{{tag}}}:{i}")).collect()
}

/// The seeds a client-bug detection test runs per server: 1 to `SLOTCHECK_BUG_SEEDS` (default 1,
/// to keep CI under its time budget; the acceptance runs of issue 19, 3 seeds, set it to 3).
pub fn bug_seeds() -> std::ops::RangeInclusive<u64> {
    let n = std::env::var("SLOTCHECK_BUG_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    1..=n.max(1)
}

/// The `slotcheck` binary of this build.
pub fn slotcheck() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slotcheck"))
}

/// The pids of the servers a run's history names in its header.
pub fn node_pids(history: &Path) -> Vec<u32> {
    let header = header(history);
    header["nodes"]
        .as_array()
        .expect("the header lists nodes")
        .iter()
        .map(|n| n["pid"].as_u64().expect("a pid") as u32)
        .collect()
}

/// Every server the run of `history` started is gone (a zombie counts as gone).
pub fn assert_no_server_left(history: &Path) {
    for pid in node_pids(history) {
        assert!(!pid_alive(pid), "server pid {pid} outlived its run");
    }
}

/// The PikiwiDB binary from the environment; `None` (after saying so) when unset.
pub fn pika_binary() -> Option<PathBuf> {
    match std::env::var_os(SERVER_ENV) {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            eprintln!("skipped: set {SERVER_ENV} to a PikiwiDB 4.0 binary");
            None
        }
    }
}

/// Starts `servers` pika servers in `dir`; dropping the last `Arc` stops them by pid.
pub async fn start_pika(binary: PathBuf, servers: usize, dir: &TempDir) -> Arc<PikaCluster> {
    let spec = PikaSpec {
        binary,
        servers,
        dir: dir.path().to_path_buf(),
        die_with_parent: true,
    };
    let cluster = PikaCluster::start(spec).await.expect("pika servers start");
    eprintln!(
        "pika {} x{servers} up in {:?}",
        cluster.version(),
        cluster.bring_up
    );
    Arc::new(cluster)
}
