//! The rw-register workload (Elle's): transactions of one to [`MICRO_OPS_MAX`] reads (`GET`) and
//! writes (`SET` of a value unique in the run) on distinct keys of one slot, sent as `--txn`
//! says and recorded as `txn` ops. Elle's analysis infers write-read and read-write
//! dependencies from the unique values and looks for cycles (`G0`, `G1c`, `G-single-item`,
//! `G2-item`) and aborted or intermediate reads.

use crate::client::Client;
use crate::router::Execution;
use crate::stats::{WorkloadError, WorkloadStats};
use crate::txn::{self, Micro};
use crate::workload::{run_processes_with_values, Process, Shared, WorkloadConfig};
use crate::Recorder;
use checker::EventType;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::Value as Json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Most micro-ops in one transaction (Elle's default).
pub const MICRO_OPS_MAX: usize = 4;

/// One `GET` of `key` through `client`, recorded as a one-read `txn`: the final reads.
pub(crate) async fn read(client: &mut Client, key: &str) -> (EventType, Json, Execution) {
    let m = Micro::Read(key.to_string());
    client
        .perform_txn(txn::single(&m), |reply| txn::complete_single(&m, reply))
        .await
}

/// Runs `cfg.clients` processes of transactions until `stop` fires.
pub async fn run_rw_register(
    cfg: &WorkloadConfig,
    seeds: Vec<String>,
    recorder: Recorder,
    stop: CancellationToken,
) -> Result<WorkloadStats, WorkloadError> {
    run_processes_with_values(cfg, seeds, recorder, stop, client_loop).await
}

/// The micro-ops of one transaction: reads and writes of distinct keys of `group`, `first`
/// (the key the op picked) among them.
fn transaction(
    rng: &mut impl Rng,
    keys: &[String],
    group: &[usize],
    next_value: &AtomicU64,
) -> Vec<Micro> {
    let mut chosen: Vec<usize> = group.to_vec();
    chosen[1..].shuffle(rng);
    let n = rng.random_range(1..=MICRO_OPS_MAX.min(chosen.len()));
    chosen.truncate(n);
    chosen.shuffle(rng);
    chosen
        .into_iter()
        .map(|k| {
            let key = keys[k].clone();
            if rng.random_bool(0.5) {
                Micro::Write(key, next_value.fetch_add(1, Ordering::Relaxed))
            } else {
                Micro::Read(key)
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
        let group = cfg.key_names().same_slot(k, shared.keys.len());
        let mops = transaction(&mut p.rng, &shared.keys, &group, &next_value);
        txn::perform(&mut p.client, &mops, cfg.txn).await;
        tokio::task::yield_now().await;
    }
    p.client.stats().clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn transactions_use_distinct_keys_of_the_group() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
        let values = AtomicU64::new(1);
        let mut longest = 0;
        for _ in 0..200 {
            let mops = transaction(&mut rng, &keys, &[2, 6, 10], &values);
            let mut named: Vec<&str> = mops
                .iter()
                .map(|m| match m {
                    Micro::Read(k) | Micro::Write(k, _) => k.as_str(),
                    other => panic!("{other:?}"),
                })
                .collect();
            longest = longest.max(named.len());
            assert!(named.contains(&"k2"), "the picked key is in it");
            named.sort();
            named.dedup();
            assert_eq!(named.len(), mops.len(), "distinct keys");
        }
        assert_eq!(longest, 3, "up to the group's size");
    }
}
