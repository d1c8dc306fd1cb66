//! The list-append workload (Elle's): `RPUSH` of values unique in the run and `LRANGE 0 -1` of
//! the whole list, as single commands (`append` and `read` ops on a key) and as transactions of
//! one to [`MICRO_OPS_MAX`] micro-ops on the keys of one slot (`txn` ops, sent as `--txn` says).
//! Elle's analysis recovers each key's version order from the lists read and checks the
//! transactions for lost appends and dependency cycles.

use crate::client::{Client, Completion, Operation};
use crate::router::Execution;
use crate::stats::{WorkloadError, WorkloadStats};
use crate::txn::{self, Micro};
use crate::workload::{run_processes_with_values, Process, Shared, WorkloadConfig};
use crate::Recorder;
use checker::EventType;
use rand::Rng;
use redis::Value;
use serde_json::{json, Value as Json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Most micro-ops in one transaction (Elle's default).
pub const MICRO_OPS_MAX: usize = 4;
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

/// Runs `cfg.clients` processes of appends, reads and transactions until `stop` fires.
pub async fn run_list_append(
    cfg: &WorkloadConfig,
    seeds: Vec<String>,
    recorder: Recorder,
    stop: CancellationToken,
) -> Result<WorkloadStats, WorkloadError> {
    run_processes_with_values(cfg, seeds, recorder, stop, client_loop).await
}

/// The micro-ops of one transaction: 1 to [`MICRO_OPS_MAX`], each an append or a read of a key
/// of `group` (a key may repeat, as in Elle).
fn transaction(
    rng: &mut impl Rng,
    keys: &[String],
    group: &[usize],
    next_value: &AtomicU64,
) -> Vec<Micro> {
    let n = rng.random_range(1..=MICRO_OPS_MAX);
    (0..n)
        .map(|_| {
            let key = keys[group[rng.random_range(0..group.len())]].clone();
            if rng.random_bool(0.5) {
                Micro::Append(key, next_value.fetch_add(1, Ordering::Relaxed))
            } else {
                Micro::ReadList(key)
            }
        })
        .collect()
}

async fn client_loop(
    shared: Arc<Shared>,
    worker: usize,
    next_value: Arc<AtomicU64>,
    stop: CancellationToken,
) -> WorkloadStats {
    let cfg = &shared.cfg;
    let mut p = Process::new(&shared, worker);
    while p.next(&stop).await {
        let k = cfg.key_dist.pick(&mut p.rng, shared.keys.len());
        let key = &shared.keys[k];
        if p.rng.random_range(0..100) < SINGLE_PERCENT {
            if p.rng.random_bool(0.5) {
                let v = next_value.fetch_add(1, Ordering::Relaxed);
                let op = Operation {
                    f: "append",
                    key,
                    value: json!(v),
                    cmd: redis::cmd("RPUSH").arg(key).arg(v).clone(),
                };
                let echo = move |reply: Value| match reply {
                    Value::Int(_) => Completion::Ok(json!(v)),
                    other => Completion::Info(format!("unexpected reply {other:?}")),
                };
                p.client.perform(op, echo).await;
            } else {
                p.client.perform(read_op(key), complete_read).await;
            }
        } else {
            let group = cfg.key_names().same_slot(k, shared.keys.len());
            let mops = transaction(&mut p.rng, &shared.keys, &group, &next_value);
            txn::perform(&mut p.client, &mops, cfg.txn).await;
        }
        tokio::task::yield_now().await;
    }
    p.client.stats().clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn transactions_stay_in_the_group() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let keys: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
        let values = AtomicU64::new(1);
        for _ in 0..100 {
            let mops = transaction(&mut rng, &keys, &[1, 5], &values);
            assert!((1..=MICRO_OPS_MAX).contains(&mops.len()));
            for m in &mops {
                let key = match m {
                    Micro::Append(k, _) | Micro::ReadList(k) => k,
                    other => panic!("{other:?}"),
                };
                assert!(key == "k1" || key == "k5", "{key}");
            }
        }
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        assert_eq!(
            complete_read(Value::Array(vec![bulk("4"), bulk("2")])),
            Completion::Ok(json!([4, 2]))
        );
    }
}
