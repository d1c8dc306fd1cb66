//! Benchmark data sets: N keys of a fixed value size, either hash-tagged into a few chosen slots
//! (`Dense`) or plain keys spread over every slot (`Spread`), loaded fast with pipelined `SET`s,
//! several pipelines in flight per master and every master loaded at once.
//!
//! Keys and values are pure functions of the spec and the key's index ([`key`], [`value`]), so
//! a benchmark or a verifier can regenerate and check any key without keeping a list.
//!
//! ```no_run
//! # async fn demo(cluster: &slotcheck::harness::Cluster) -> anyhow::Result<()> {
//! use slotcheck::bench::dataset::{load, DatasetSpec, Layout};
//! let spec = DatasetSpec {
//!     keys: 1_000_000,
//!     value_bytes: 100,
//!     layout: Layout::Spread,
//!     prefix: "bench:".into(),
//! };
//! let stats = load(cluster, &spec).await?;
//! eprintln!("{} keys in {:?}", stats.keys, stats.duration);
//! # Ok(()) }
//! ```

use crate::harness::{Admin, Cluster};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use workloads::slot::SLOT_COUNT as SLOTS;
use workloads::{key_slot, SlotMap};

/// `SET`s per pipeline: large enough to amortize round trips, small enough to stream.
const PIPELINE_KEYS: usize = 1000;
/// Pipelines in flight per master: keeps the server busy while the next one is built.
const INFLIGHT_PER_MASTER: usize = 4;
/// Batches queued per master before the key generator waits.
const QUEUED_BATCHES_MAX: usize = 16;
/// Response timeout of a loading connection (a 1000 x 10 KB pipeline is 10 MB).
const LOAD_TIMEOUT_MS: u64 = 30_000;

/// Where a data set's keys live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Keys hash-tagged into these slots, round-robin (key `i` goes to `slots[i % len]`).
    Dense {
        /// The slots; must not be empty.
        slots: Vec<u16>,
    },
    /// Plain keys (`{prefix}{i}`), spread over all slots by their CRC16.
    Spread,
}

/// What to load: how many keys, how large, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSpec {
    /// Number of keys.
    pub keys: u64,
    /// Bytes per value.
    pub value_bytes: usize,
    /// Which slots the keys fall into.
    pub layout: Layout,
    /// Every key starts with this; must not contain `{` or `}` (it would change the slot).
    pub prefix: String,
}

/// What a load did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LoadStats {
    /// Keys written.
    pub keys: u64,
    /// Key and value bytes written.
    pub bytes: u64,
    /// From the first `SET` to the last reply.
    pub duration: Duration,
    /// Keys written per master address.
    pub keys_by_master: BTreeMap<String, u64>,
}

impl LoadStats {
    /// Keys per second of the load.
    pub fn keys_per_s(&self) -> f64 {
        self.keys as f64 / self.duration.as_secs_f64().max(1e-9)
    }
}

impl DatasetSpec {
    /// Checks that the spec describes a loadable data set.
    pub fn validate(&self) -> Result<()> {
        if self.prefix.contains(['{', '}']) {
            bail!("dataset prefix {:?} must not contain braces", self.prefix);
        }
        if let Layout::Dense { slots } = &self.layout {
            if slots.is_empty() {
                bail!("a dense dataset needs at least one slot");
            }
            if let Some(s) = slots.iter().find(|&&s| s as usize >= SLOTS) {
                bail!("slot {s} is out of range");
            }
        }
        Ok(())
    }

    /// The slots this data set puts keys into (dense: its slots; spread: every slot), sorted.
    pub fn slots(&self) -> Vec<u16> {
        match &self.layout {
            Layout::Dense { slots } => {
                let mut s = slots.clone();
                s.sort_unstable();
                s.dedup();
                s
            }
            Layout::Spread => (0..SLOTS as u16).collect(),
        }
    }
}

/// For every slot, a short hash tag (the decimal text of the smallest number) that hashes to it.
pub fn slot_tags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        let mut tags: Vec<Option<String>> = vec![None; SLOTS];
        let mut missing = SLOTS;
        let mut n: u64 = 0;
        while missing > 0 {
            let tag = n.to_string();
            let slot = key_slot(tag.as_bytes()) as usize;
            if tags[slot].is_none() {
                tags[slot] = Some(tag);
                missing -= 1;
            }
            n += 1;
        }
        tags.into_iter()
            .map(|t| t.expect("every slot found"))
            .collect()
    })
}

/// The name of key `i` of `spec`: `{prefix}{{tag}}:{i}` (dense) or `{prefix}{i}` (spread).
pub fn key(spec: &DatasetSpec, i: u64) -> String {
    match &spec.layout {
        Layout::Dense { slots } => {
            let slot = slots[(i % slots.len() as u64) as usize];
            format!("{}{{{}}}:{i}", spec.prefix, slot_tags()[slot as usize])
        }
        Layout::Spread => format!("{}{i}", spec.prefix),
    }
}

/// The value of key `i`: its index, a colon, then `v`s, `value_bytes` long (cut if shorter).
pub fn value(spec: &DatasetSpec, i: u64) -> Vec<u8> {
    let mut v = format!("{i}:").into_bytes();
    v.resize(spec.value_bytes, b'v');
    v
}

/// The cluster's current slot map, asked of `seed` (`host:port`).
pub async fn slot_map(seed: &str) -> Result<SlotMap> {
    let mut admin = Admin::connect(seed).await?;
    let reply: redis::Value = admin.run(&["CLUSTER", "SLOTS"]).await?;
    Ok(SlotMap::from_cluster_slots(&reply, seed)?)
}

/// Writes every key of `spec` into `cluster` (overwriting keys of the same name) and returns
/// what it did. Keys are batched per owning master and sent as pipelines of [`PIPELINE_KEYS`]
/// `SET`s, [`INFLIGHT_PER_MASTER`] in flight per master, all masters at once.
pub async fn load(cluster: &Cluster, spec: &DatasetSpec) -> Result<LoadStats> {
    let first = cluster
        .masters()
        .next()
        .context("the cluster has no master")?;
    load_via(&first.addr, spec).await
}

/// [`load`] into the cluster that `seed` (`host:port`) belongs to.
pub async fn load_via(seed: &str, spec: &DatasetSpec) -> Result<LoadStats> {
    spec.validate()?;
    let map = slot_map(seed).await?;
    let masters = map.masters();
    if masters.is_empty() {
        bail!("no master owns a slot");
    }
    let index: BTreeMap<&str, usize> = masters
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let owner_of: Vec<usize> = (0..SLOTS as u16)
        .map(|s| map.owner(s).map_or(usize::MAX, |o| index[o]))
        .collect();
    let started = Instant::now();
    let mut workers = JoinSet::new();
    let mut senders = Vec::new();
    for addr in &masters {
        let (tx, rx) = mpsc::channel::<redis::Pipeline>(QUEUED_BATCHES_MAX);
        senders.push(tx);
        let addr = addr.clone();
        workers.spawn(async move {
            let keys = write_master(&addr, rx).await?;
            Ok::<_, anyhow::Error>((addr, keys))
        });
    }
    let generated = generate(spec, &owner_of, &senders).await;
    drop(senders);
    let bytes = *generated.as_ref().unwrap_or(&0);
    let mut keys_by_master = BTreeMap::new();
    let mut first_error = generated.err();
    while let Some(joined) = workers.join_next().await {
        match joined.context("a loading task panicked")? {
            Ok((addr, keys)) => {
                keys_by_master.insert(addr, keys);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e.context("loading the dataset"));
    }
    let keys: u64 = keys_by_master.values().sum();
    debug_assert_eq!(keys, spec.keys);
    Ok(LoadStats {
        keys,
        bytes,
        duration: started.elapsed(),
        keys_by_master,
    })
}

/// Builds the pipelines and hands each to its master's writer; returns the key and value bytes.
async fn generate(
    spec: &DatasetSpec,
    owner_of: &[usize],
    senders: &[mpsc::Sender<redis::Pipeline>],
) -> Result<u64> {
    let mut bytes = 0u64;
    let mut pending: Vec<(redis::Pipeline, usize)> =
        senders.iter().map(|_| (redis::pipe(), 0)).collect();
    for i in 0..spec.keys {
        let k = key(spec, i);
        let owner = owner_of[key_slot(k.as_bytes()) as usize];
        if owner == usize::MAX {
            bail!("no master owns the slot of key {k}");
        }
        bytes += (k.len() + spec.value_bytes) as u64;
        let (pipe, n) = &mut pending[owner];
        pipe.cmd("SET").arg(k).arg(value(spec, i)).ignore();
        *n += 1;
        if *n == PIPELINE_KEYS {
            let full = std::mem::replace(pipe, redis::pipe());
            *n = 0;
            senders[owner]
                .send(full)
                .await
                .context("a loading task stopped early")?;
        }
    }
    for ((pipe, n), tx) in pending.into_iter().zip(senders) {
        if n > 0 {
            tx.send(pipe)
                .await
                .context("a loading task stopped early")?;
        }
    }
    Ok(bytes)
}

/// Sends every pipeline from `rx` to `addr`, a few at a time; returns how many keys it wrote.
async fn write_master(addr: &str, mut rx: mpsc::Receiver<redis::Pipeline>) -> Result<u64> {
    let conn = super::connect(addr, LOAD_TIMEOUT_MS).await?;
    let mut inflight = JoinSet::new();
    let mut keys = 0u64;
    while let Some(pipe) = rx.recv().await {
        if inflight.len() >= INFLIGHT_PER_MASTER {
            keys += join_one(&mut inflight).await?;
        }
        let mut conn = conn.clone();
        let addr = addr.to_string();
        inflight.spawn(async move {
            let n = pipe.cmd_iter().count() as u64;
            pipe.query_async::<()>(&mut conn)
                .await
                .with_context(|| format!("SET pipeline to {addr}"))?;
            Ok::<u64, anyhow::Error>(n)
        });
    }
    while !inflight.is_empty() {
        keys += join_one(&mut inflight).await?;
    }
    Ok(keys)
}

async fn join_one(set: &mut JoinSet<Result<u64>>) -> Result<u64> {
    set.join_next()
        .await
        .expect("not empty")
        .context("a pipeline task panicked")?
}

/// Keys held by every master (`DBSIZE` summed), e.g. to check that a migration lost none.
pub async fn keys_total(cluster: &Cluster) -> Result<u64> {
    let mut total = 0;
    for m in cluster.masters() {
        let mut admin = Admin::connect(&m.addr).await?;
        let n: u64 = admin.run(&["DBSIZE"]).await?;
        total += n;
    }
    Ok(total)
}

/// Keys `addr` holds in `slots` (`CLUSTER COUNTKEYSINSLOT` summed, pipelined).
pub async fn keys_in_slots(addr: &str, slots: &[u16]) -> Result<u64> {
    let mut conn = super::connect(addr, LOAD_TIMEOUT_MS).await?;
    let mut total = 0;
    for chunk in slots.chunks(PIPELINE_KEYS) {
        let mut pipe = redis::pipe();
        for s in chunk {
            pipe.cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(*s);
        }
        let counts: Vec<u64> = pipe
            .query_async(&mut conn)
            .await
            .with_context(|| format!("CLUSTER COUNTKEYSINSLOT on {addr}"))?;
        total += counts.iter().sum::<u64>();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_has_a_tag_that_hashes_to_it() {
        let tags = slot_tags();
        assert_eq!(tags.len(), SLOTS);
        for (slot, tag) in tags.iter().enumerate() {
            assert_eq!(key_slot(tag.as_bytes()) as usize, slot, "{tag}");
        }
    }

    #[test]
    fn keys_land_in_their_layouts_slots() {
        let dense = DatasetSpec {
            keys: 10,
            value_bytes: 8,
            layout: Layout::Dense {
                slots: vec![7, 9000],
            },
            prefix: "b:".into(),
        };
        let slots: Vec<u16> = (0..4)
            .map(|i| key_slot(key(&dense, i).as_bytes()))
            .collect();
        assert_eq!(slots, vec![7, 9000, 7, 9000]);
        assert_eq!(value(&dense, 12), b"12:vvvvv".to_vec());
        let spread = DatasetSpec {
            layout: Layout::Spread,
            ..dense.clone()
        };
        assert_eq!(key(&spread, 3), "b:3");
        assert_eq!(spread.slots().len(), SLOTS);
        let braces = DatasetSpec {
            prefix: "{x}".into(),
            ..dense
        };
        assert!(braces.validate().is_err());
    }
}
