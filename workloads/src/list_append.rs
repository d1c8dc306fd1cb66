//! The list-append workload (Elle's): `RPUSH` of values unique in the run and `LRANGE 0 -1` of
//! the whole list, as single commands (`append` and `read` ops on a key) and as transactions of
//! one to [`MICRO_OPS_MAX`] micro-ops on the keys of one slot (`txn` ops, sent as `--txn` says).
//! Elle's analysis recovers each key's version order from the lists read and checks the
//! transactions for lost appends and dependency cycles.
//!
//! As Elle's generator does (`max-writes-per-key`), a key takes at most [`APPENDS_PER_KEY_MAX`]
//! appends; then its processes move on to the key's next generation, a fresh key in the same slot
//! (`…:e1`, `…:e2`, …). Lists stay short, so every read stays cheap and the history grows with
//! the ops, not with their square; the migrating slots stay the same. The final reads read every
//! generation ([`WorkloadStats::extra_keys`]).

use crate::client::{Client, Completion, Operation};
use crate::router::Execution;
use crate::stats::{WorkloadError, WorkloadStats};
use crate::txn::{self, Micro};
use crate::workload::{run_processes, Process, Shared, WorkloadConfig};
use crate::Recorder;
use checker::EventType;
use rand::Rng;
use redis::Value;
use serde_json::{json, Value as Json};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Most micro-ops in one transaction (Elle's default).
pub const MICRO_OPS_MAX: usize = 4;
/// Most appends one key takes before its processes move on to its next generation (Elle's
/// `max-writes-per-key`); concurrent appends may pass it by a few.
pub const APPENDS_PER_KEY_MAX: u32 = 32;
/// Share of ops that are single commands (`append` or `read`), in percent; the rest are
/// transactions.
pub const SINGLE_PERCENT: u32 = 30;

/// `LRANGE key 0 -1` as a `read` op of `key`: `[]` for an absent key.
fn read_op(key: &str) -> Operation<'_> {
    Operation {
        f: "read",
        key,
        value: Json::Null,
        cmd: redis::cmd("LRANGE").arg(key).arg(0).arg(-1).clone(),
    }
}

/// Reads an `LRANGE` reply as the list of integers it holds.
fn complete_read(reply: Value) -> Completion {
    match txn::complete_single(&Micro::ReadList(String::new()), reply) {
        Completion::Ok(v) => Completion::Ok(v[0][2].clone()),
        other => other,
    }
}

/// One read of `key` through `client`, recorded: the final reads' list read.
pub(crate) async fn read(client: &mut Client, key: &str) -> (EventType, Json, Execution) {
    client.perform(read_op(key), complete_read).await
}

/// Runs `cfg.clients` processes of appends, reads and transactions until `stop` fires; the stats
/// name every key generation beyond the first.
pub async fn run_list_append(
    cfg: &WorkloadConfig,
    seeds: Vec<String>,
    recorder: Recorder,
    stop: CancellationToken,
) -> Result<WorkloadStats, WorkloadError> {
    let keys = Arc::new(Generations::new(cfg.keys));
    let next_value = Arc::new(AtomicU64::new(1));
    let body =
        |shared, worker, stop| client_loop(shared, worker, next_value.clone(), keys.clone(), stop);
    let mut stats = run_processes(cfg, seeds, recorder, stop, body).await?;
    stats.extra_keys = keys.beyond_first(cfg);
    Ok(stats)
}

/// Which generation of each key the processes use now, and how many appends it has taken.
struct Generations {
    current: Vec<AtomicU64>,
    appends: Vec<AtomicU32>,
}

impl Generations {
    fn new(keys: usize) -> Generations {
        Generations {
            current: (0..keys).map(|_| AtomicU64::new(0)).collect(),
            appends: (0..keys).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// The name of key `i`'s current generation (the plain name first, then epoch names in the
    /// same slot).
    fn name(&self, cfg: &WorkloadConfig, i: usize) -> String {
        match self.current[i].load(Ordering::Relaxed) {
            0 => cfg.key_names().name(i),
            g => cfg.key_names().epoch_name(i, g),
        }
    }

    /// Counts one append to key `i`; the append that reaches [`APPENDS_PER_KEY_MAX`] moves the
    /// key on to its next generation.
    fn appended(&self, i: usize) {
        if self.appends[i].fetch_add(1, Ordering::Relaxed) + 1 == APPENDS_PER_KEY_MAX {
            self.current[i].fetch_add(1, Ordering::Relaxed);
            self.appends[i].store(0, Ordering::Relaxed);
        }
    }

    /// Every generation's name after the first, of every key: what the final reads add.
    fn beyond_first(&self, cfg: &WorkloadConfig) -> Vec<String> {
        let names = cfg.key_names();
        let mut keys = Vec::new();
        for (i, g) in self.current.iter().enumerate() {
            keys.extend((1..=g.load(Ordering::Relaxed)).map(|g| names.epoch_name(i, g)));
        }
        keys
    }
}

/// The micro-ops of one transaction: 1 to [`MICRO_OPS_MAX`], each an append or a read of a key
/// of `group` (a key may repeat, as in Elle), named by `name`; `appended` is told of each append.
fn transaction(
    rng: &mut impl Rng,
    group: &[usize],
    name: impl Fn(usize) -> String,
    mut appended: impl FnMut(usize),
    next_value: &AtomicU64,
) -> Vec<Micro> {
    let n = rng.random_range(1..=MICRO_OPS_MAX);
    (0..n)
        .map(|_| {
            let k = group[rng.random_range(0..group.len())];
            if rng.random_bool(0.5) {
                appended(k);
                Micro::Append(name(k), next_value.fetch_add(1, Ordering::Relaxed))
            } else {
                Micro::ReadList(name(k))
            }
        })
        .collect()
}

async fn client_loop(
    shared: Arc<Shared>,
    worker: usize,
    next_value: Arc<AtomicU64>,
    keys: Arc<Generations>,
    stop: CancellationToken,
) -> WorkloadStats {
    let cfg = &shared.cfg;
    let mut p = Process::new(&shared, worker);
    while p.next(&stop).await {
        let k = cfg.key_dist.pick(&mut p.rng, shared.keys.len());
        if p.rng.random_range(0..100) < SINGLE_PERCENT {
            let key = keys.name(cfg, k);
            if p.rng.random_bool(0.5) {
                keys.appended(k);
                let v = next_value.fetch_add(1, Ordering::Relaxed);
                let op = Operation {
                    f: "append",
                    key: &key,
                    value: json!(v),
                    cmd: redis::cmd("RPUSH").arg(&key).arg(v).clone(),
                };
                let echo = move |reply: Value| match reply {
                    Value::Int(_) => Completion::Ok(json!(v)),
                    other => Completion::Info(format!("unexpected reply {other:?}")),
                };
                p.client.perform(op, echo).await;
            } else {
                p.client.perform(read_op(&key), complete_read).await;
            }
        } else {
            let group = cfg.key_names().same_slot(k, shared.keys.len());
            let name = |i| keys.name(cfg, i);
            let mops = transaction(&mut p.rng, &group, name, |i| keys.appended(i), &next_value);
            txn::perform(&mut p.client, &mops, cfg.txn).await;
        }
        tokio::task::yield_now().await;
    }
    p.client.stats().clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::key_slot;
    use rand::SeedableRng;

    #[test]
    fn transactions_stay_in_the_group() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let values = AtomicU64::new(1);
        for _ in 0..100 {
            let mut told = 0;
            let name = |i| format!("k{i}");
            let mops = transaction(&mut rng, &[1, 5], name, |_| told += 1, &values);
            assert!((1..=MICRO_OPS_MAX).contains(&mops.len()));
            let mut appends = 0;
            for m in &mops {
                let key = match m {
                    Micro::Append(k, _) => {
                        appends += 1;
                        k
                    }
                    Micro::ReadList(k) => k,
                    other => panic!("{other:?}"),
                };
                assert!(key == "k1" || key == "k5", "{key}");
            }
            assert_eq!(told, appends, "every append is counted");
        }
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        assert_eq!(
            complete_read(Value::Array(vec![bulk("4"), bulk("2")])),
            Completion::Ok(json!([4, 2]))
        );
    }

    #[test]
    fn a_full_key_moves_on_to_a_fresh_key_in_its_slot() {
        let cfg = WorkloadConfig {
            kind: crate::WorkloadKind::ListAppend,
            keys: 6,
            slots: 3,
            ..WorkloadConfig::default()
        };
        let keys = Generations::new(cfg.keys);
        let first = keys.name(&cfg, 4);
        assert_eq!(first, cfg.key_names().name(4));
        for _ in 1..APPENDS_PER_KEY_MAX {
            keys.appended(4);
        }
        assert_eq!(keys.name(&cfg, 4), first, "not full yet");
        assert!(keys.beyond_first(&cfg).is_empty());
        keys.appended(4);
        let second = keys.name(&cfg, 4);
        assert_ne!(second, first);
        assert_eq!(key_slot(second.as_bytes()), key_slot(first.as_bytes()));
        for _ in 0..APPENDS_PER_KEY_MAX {
            keys.appended(4);
        }
        let third = keys.name(&cfg, 4);
        assert_eq!(keys.beyond_first(&cfg), vec![second, third]);
        assert_eq!(
            keys.name(&cfg, 3),
            cfg.key_names().name(3),
            "other keys stay"
        );
    }
}
