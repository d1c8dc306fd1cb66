//! One migration benchmark case: a fresh cluster, a loaded data set, one method moving one set of
//! slots from the first master to the second (optionally under client traffic), and what it cost.
//!
//! Every case starts its own cluster and loads the same data set, so every method moves exactly
//! the same keys out of the same slots of an identical, freshly loaded source, and one method's
//! leftovers (memory, fragmentation, slot ownership) cannot bias the next. The slots moved are
//! the first N slots of the first master in ascending order (`0..N`), which is exactly the set
//! `redis-cli --cluster reshard --cluster-slots N` picks from that source (it takes a source's
//! slots in ascending order), so the `redis-cli` baseline moves the same slots as our drivers.

use super::dataset::{self, DatasetSpec, Layout};
use super::traffic::{Phase, Traffic, TrafficConfig, TrafficReport};
use super::usage::{self, Usage};
use crate::harness::{find_cli, Cluster, ClusterSpec, Node, ServerKind};
use crate::nemesis::migrate::atomic::{migrate_atomic, AtomicOptions};
use crate::nemesis::migrate::window::migrate_slots;
use crate::nemesis::migrate::{MigrateOptions, Peer};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use workloads::Recorder;

/// Longest wait for moved keys to be gone from the source and all present on the target.
const SETTLE_TIMEOUT_MS: u64 = 120_000;
/// Longest wait for the cluster to agree on the new owners.
const STABLE_TIMEOUT_MS: u64 = 20_000;
/// How often the settle check asks again.
const SETTLE_POLL_MS: u64 = 10;
/// `MIGRATE` timeout for our driver and `redis-cli` alike (`redis-cli`'s default).
const MIGRATE_TIMEOUT_MS: u64 = 60_000;

/// How slots are moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Method {
    /// slotcheck's classic driver (`nemesis::migrate::window`), `batch` keys per `MIGRATE`,
    /// `window` slots per pipelined step (1: one slot after another, as `redis-cli`).
    Classic {
        /// Keys per `MIGRATE`.
        batch: usize,
        /// Slots moved together.
        window: usize,
    },
    /// `redis-cli --cluster reshard` with `--cluster-pipeline batch` (keys per `MIGRATE`).
    Cli {
        /// Keys per `MIGRATE`.
        batch: usize,
    },
    /// Valkey 9's `CLUSTER MIGRATESLOTS` (`nemesis::migrate::atomic`).
    Atomic,
}

impl Method {
    /// A short name for tables: `slotcheck/100`, `slotcheck/100 w16`, `redis-cli/100`, `atomic`.
    pub fn label(&self) -> String {
        match self {
            Method::Classic { batch, window: 1 } => format!("slotcheck/{batch}"),
            Method::Classic { batch, window } => format!("slotcheck/{batch} w{window}"),
            Method::Cli { batch } => format!("redis-cli/{batch}"),
            Method::Atomic => "atomic".to_string(),
        }
    }

    /// Whether `kind` can run this method.
    pub fn runs_on(&self, kind: ServerKind) -> bool {
        !matches!(self, Method::Atomic) || kind == ServerKind::Valkey
    }
}

/// One case to run.
#[derive(Debug, Clone)]
pub struct Case {
    /// Which table it belongs to (`matrix` or `sweep`).
    pub group: &'static str,
    /// Server to run.
    pub server: ServerKind,
    /// Masters in the fresh cluster (at least 2).
    pub masters: usize,
    /// The data set loaded before the migration.
    pub dataset: DatasetSpec,
    /// How many of the first master's slots move (from slot 0 up).
    pub slots: u16,
    /// How they move.
    pub method: Method,
    /// Client traffic during the case, if any, and how long it runs before and after.
    pub traffic: Option<(TrafficConfig, Duration)>,
}

/// What one case measured.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// `matrix` or `sweep`.
    pub group: String,
    /// `redis` or `valkey`.
    pub server: String,
    /// Server version.
    pub version: String,
    /// `dense` (keys hash-tagged into the moved slots) or `sparse` (spread over all slots).
    pub layout: String,
    /// Keys in the data set.
    pub keys_total: u64,
    /// Bytes per value.
    pub value_bytes: usize,
    /// Method label.
    pub method: String,
    /// The method.
    pub method_spec: Method,
    /// Whether client traffic ran.
    pub loaded: bool,
    /// Slots moved.
    pub slots: u16,
    /// Keys the moved slots held.
    pub keys_moved: u64,
    /// Key and value bytes moved.
    pub bytes_moved: u64,
    /// From the first command to the method's end (for `redis-cli`, the process's lifetime).
    pub duration_s: f64,
    /// Keys moved per second of `duration_s`.
    pub keys_per_s: f64,
    /// Megabytes (10^6) of keys and values moved per second.
    pub mb_per_s: f64,
    /// Milliseconds per slot.
    pub ms_per_slot: f64,
    /// After the method's end, until the source held none of the keys and the target all of
    /// them (Valkey's atomic migration deletes moved keys after it reports success).
    pub settle_s: f64,
    /// The source's CPU and peak memory over the migration.
    pub source: Usage,
    /// The target's.
    pub target: Usage,
    /// CPU seconds of the tool: `redis-cli`, or this process for our drivers (which includes the
    /// traffic's clients when traffic runs).
    pub tool_cpu_s: f64,
    /// Loading the data set, s.
    pub load_s: f64,
    /// What the clients saw, if traffic ran.
    pub traffic: Option<TrafficReport>,
    /// Why the case failed, if it did (the numbers above are then partial).
    pub error: Option<String>,
    /// With repeats: every repeat's `duration_s`, in run order (this row is the median's).
    pub repeats_s: Vec<f64>,
}

/// Runs `case` in a fresh cluster under `dir` (removed afterwards unless the case failed).
pub async fn run_case(case: &Case, dir: &Path) -> CaseResult {
    let mut result = CaseResult {
        group: case.group.to_string(),
        server: case.server.to_string(),
        version: String::new(),
        layout: match case.dataset.layout {
            Layout::Dense { .. } => "dense",
            Layout::Spread => "sparse",
        }
        .to_string(),
        keys_total: case.dataset.keys,
        value_bytes: case.dataset.value_bytes,
        method: case.method.label(),
        method_spec: case.method,
        loaded: case.traffic.is_some(),
        slots: case.slots,
        keys_moved: 0,
        bytes_moved: 0,
        duration_s: 0.0,
        keys_per_s: 0.0,
        mb_per_s: 0.0,
        ms_per_slot: 0.0,
        settle_s: 0.0,
        source: Usage::default(),
        target: Usage::default(),
        tool_cpu_s: 0.0,
        load_s: 0.0,
        traffic: None,
        error: None,
        repeats_s: Vec::new(),
    };
    match measure(case, dir, &mut result).await {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(dir);
        }
        Err(e) => result.error = Some(format!("{e:#}")),
    }
    result
}

async fn measure(case: &Case, dir: &Path, r: &mut CaseResult) -> Result<()> {
    anyhow::ensure!(case.masters >= 2, "a migration needs two masters");
    std::fs::create_dir_all(dir)?;
    let mut spec = ClusterSpec::new(case.server, case.masters, 0, dir.join("cluster"));
    spec.die_with_parent = true;
    let cluster = Cluster::start(spec).await.context("starting the cluster")?;
    r.version = cluster.version.clone();
    let masters: Vec<&Node> = cluster.masters().collect();
    let peer = |n: &Node| Peer {
        addr: n.addr.clone(),
        id: n.id.clone(),
    };
    let (source, target) = (peer(masters[0]), peer(masters[1]));
    let others: Vec<Peer> = masters[2..].iter().map(|n| peer(n)).collect();
    let slots: Vec<u16> = (0..case.slots).collect();
    let map = dataset::slot_map(&source.addr).await?;
    if let Some(s) = slots.iter().find(|&&s| map.owner(s) != Some(&source.addr)) {
        bail!("slot {s} is not on the first master {}", source.addr);
    }
    let loaded = dataset::load(&cluster, &case.dataset).await?;
    r.load_s = loaded.duration.as_secs_f64();
    r.keys_moved = dataset::keys_in_slots(&source.addr, &slots).await?;
    r.bytes_moved = (loaded.bytes as f64 * r.keys_moved as f64 / loaded.keys.max(1) as f64) as u64;

    let mut traffic = match &case.traffic {
        Some((cfg, _)) => Some(Traffic::start(cluster.seeds(), &case.dataset, cfg).await?),
        None => None,
    };
    let phase = case.traffic.as_ref().map_or(Duration::ZERO, |t| t.1);
    tokio::time::sleep(phase).await;

    let pids = (masters[0].pid, masters[1].pid);
    usage::reset_peak(pids.0);
    usage::reset_peak(pids.1);
    let before = (usage::sample(pids.0), usage::sample(pids.1));
    let cpu_before = (usage::self_cpu_s(), usage::children_cpu_s());
    if let Some(t) = traffic.as_mut() {
        t.set_phase(Phase::During);
    }
    let started = Instant::now();
    let moved = on_own_thread(case.method, &slots, &source, &target, &others, dir).await;
    let duration = started.elapsed();
    let settled = match &moved {
        Ok(()) => settle(&source.addr, &target.addr, &slots, r.keys_moved).await,
        Err(_) => Ok(()),
    };
    let settle = started.elapsed() - duration;
    if let Some(t) = traffic.as_mut() {
        t.set_phase(Phase::After);
    }
    let after = (usage::sample(pids.0), usage::sample(pids.1));
    r.tool_cpu_s = match case.method {
        Method::Cli { .. } => usage::children_cpu_s() - cpu_before.1,
        _ => usage::self_cpu_s() - cpu_before.0,
    };
    if let (Some(b), Some(a)) = (before.0, after.0) {
        r.source = usage::between(b, a);
    }
    if let (Some(b), Some(a)) = (before.1, after.1) {
        r.target = usage::between(b, a);
    }
    tokio::time::sleep(phase).await;
    if let Some(t) = traffic {
        r.traffic = Some(t.stop().await);
    }
    let secs = duration.as_secs_f64().max(1e-9);
    r.duration_s = duration.as_secs_f64();
    r.settle_s = settle.as_secs_f64();
    r.keys_per_s = r.keys_moved as f64 / secs;
    r.mb_per_s = r.bytes_moved as f64 / 1e6 / secs;
    r.ms_per_slot = duration.as_secs_f64() * 1e3 / f64::from(case.slots.max(1));
    moved?;
    settled?;
    check_moved(&cluster, &target.addr, &slots, case.dataset.keys).await
}

/// [`run_method`] on a thread of its own with a single-threaded runtime, as a command-line tool
/// runs: the driver is one sequential control loop, and on a small machine a multi-threaded
/// runtime would add a cross-thread wake-up to every round trip (the traffic's clients keep the
/// caller's runtime).
async fn on_own_thread(
    method: Method,
    slots: &[u16],
    source: &Peer,
    target: &Peer,
    others: &[Peer],
    dir: &Path,
) -> Result<()> {
    let (slots, source, target) = (slots.to_vec(), source.clone(), target.clone());
    let (others, dir) = (others.to_vec(), dir.to_path_buf());
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-migrate".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let result = match runtime {
                Ok(rt) => rt.block_on(run_method(method, &slots, &source, &target, &others, &dir)),
                Err(e) => Err(e.into()),
            };
            let _ = tx.send(result);
        })?;
    rx.await.context("the migration thread died")?
}

/// Moves `slots` from `source` to `target` with `method`.
async fn run_method(
    method: Method,
    slots: &[u16],
    source: &Peer,
    target: &Peer,
    others: &[Peer],
    dir: &Path,
) -> Result<()> {
    match method {
        Method::Classic { batch, window } => {
            let recorder = recorder(dir)?;
            let opts = MigrateOptions {
                batch_keys: batch,
                step_pause_ms: 0,
                migrate_timeout_ms: MIGRATE_TIMEOUT_MS,
                batches_max: usize::MAX,
            };
            migrate_slots(&recorder, slots, source, target, others, &opts, window).await?;
            recorder.close()?;
            Ok(())
        }
        Method::Atomic => {
            let recorder = recorder(dir)?;
            let opts = AtomicOptions {
                poll_ms: 2,
                progress_every_ms: 1000,
                timeout_ms: SETTLE_TIMEOUT_MS,
            };
            for (start, end) in ranges(slots) {
                let done = migrate_atomic(&recorder, start, end, source, target, &opts).await?;
                anyhow::ensure!(
                    done.state == "success",
                    "atomic migration of {start}-{end} ended {}: {}",
                    done.state,
                    done.message
                );
            }
            recorder.close()?;
            Ok(())
        }
        Method::Cli { batch } => reshard(slots.len(), batch, source, target, dir).await,
    }
}

/// A throwaway history for the drivers' step events.
fn recorder(dir: &Path) -> Result<Recorder> {
    let path = dir.join("migration-history.jsonl");
    Ok(Recorder::create(
        &path,
        checker::Header::new(Default::default()),
    )?)
}

/// Runs `redis-cli --cluster reshard` moving `slots` slots from `source` to `target`.
async fn reshard(
    slots: usize,
    batch: usize,
    source: &Peer,
    target: &Peer,
    dir: &Path,
) -> Result<()> {
    let cli = find_cli()?;
    let log_path: PathBuf = dir.join("reshard.log");
    let log = std::fs::File::create(&log_path)?;
    let status = tokio::process::Command::new(&cli)
        .args(["--cluster", "reshard", &source.addr])
        .args(["--cluster-from", &source.id, "--cluster-to", &target.id])
        .args(["--cluster-slots", &slots.to_string(), "--cluster-yes"])
        .args(["--cluster-pipeline", &batch.to_string()])
        .args(["--cluster-timeout", &MIGRATE_TIMEOUT_MS.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .await
        .with_context(|| format!("running {}", cli.display()))?;
    if !status.success() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: String = text
            .chars()
            .rev()
            .take(400)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        bail!("redis-cli --cluster reshard exited with {status}: {tail}");
    }
    Ok(())
}

/// `slots` as inclusive ranges of consecutive slots.
fn ranges(slots: &[u16]) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for &s in slots {
        match out.last_mut() {
            Some((_, end)) if *end + 1 == s => *end = s,
            _ => out.push((s, s)),
        }
    }
    out
}

/// Waits until the source holds none of `slots`' keys and the target holds `keys`.
async fn settle(source: &str, target: &str, slots: &[u16], keys: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_millis(SETTLE_TIMEOUT_MS);
    loop {
        let left = dataset::keys_in_slots(source, slots).await?;
        let arrived = dataset::keys_in_slots(target, slots).await?;
        if left == 0 && arrived == keys {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("after the migration the source still holds {left} keys of the moved slots and the target {arrived} of {keys}");
        }
        tokio::time::sleep(Duration::from_millis(SETTLE_POLL_MS)).await;
    }
}

/// Checks that every node agrees `target` owns `slots` and that no key of the data set was lost.
async fn check_moved(cluster: &Cluster, target: &str, slots: &[u16], keys: u64) -> Result<()> {
    cluster.wait_stable(STABLE_TIMEOUT_MS).await?;
    let map = dataset::slot_map(target).await?;
    if let Some(s) = slots.iter().find(|&&s| map.owner(s) != Some(target)) {
        bail!(
            "slot {s} is owned by {:?}, not the target {target}",
            map.owner(*s)
        );
    }
    let total = dataset::keys_total(cluster).await?;
    anyhow::ensure!(
        total == keys,
        "the cluster holds {total} keys, the data set {keys}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_slots_make_ranges() {
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), vec![(0, 2), (5, 5), (7, 8)]);
        assert!(ranges(&[]).is_empty());
        assert_eq!(Method::Cli { batch: 10 }.label(), "redis-cli/10");
        assert!(!Method::Atomic.runs_on(ServerKind::Redis));
    }
}
