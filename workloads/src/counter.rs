//! The counter workload: concurrent `INCR`s and reads of a few counters, checked against the
//! checker's counter model. An `INCR` a client resent after losing its connection, and that the
//! server applied twice, shows up as a count the acknowledged and indeterminate increments
//! cannot explain.

use crate::client::{Client, Completion, Operation};
use crate::router::Execution;
use crate::stats::{WorkloadError, WorkloadStats};
use crate::workload::{run_processes, Process, Shared, WorkloadConfig};
use crate::Recorder;
use checker::EventType;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use redis::Value;
use serde_json::{json, Value as Json};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// One counter operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CounterOp {
    /// `INCR`: adds 1 and returns the new value.
    Incr,
    /// `GET`: an absent counter reads as 0, its initial value.
    Read,
}

impl CounterOp {
    fn operation(self, key: &str) -> Operation<'_> {
        let (f, value, cmd) = match self {
            CounterOp::Incr => ("incr", json!(1), redis::cmd("INCR").arg(key).clone()),
            CounterOp::Read => ("read", Json::Null, redis::cmd("GET").arg(key).clone()),
        };
        Operation { f, key, value, cmd }
    }

    /// Reads the server's reply as this operation's completion.
    fn complete(self, reply: Value) -> Completion {
        match (self, reply) {
            (CounterOp::Incr, Value::Int(n)) => Completion::Ok(json!(n)),
            (CounterOp::Read, Value::Nil) => Completion::Ok(json!(0)),
            (CounterOp::Read, Value::BulkString(bytes)) => {
                match std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                {
                    Some(n) => Completion::Ok(json!(n)),
                    None => Completion::Info(format!(
                        "read a non-integer value {:?}",
                        String::from_utf8_lossy(&bytes)
                    )),
                }
            }
            (_, other) => Completion::Info(format!("unexpected reply {other:?}")),
        }
    }
}

/// One read of `key` through `client`, recorded: the final reads' counter read.
pub(crate) async fn read(client: &mut Client, key: &str) -> (EventType, Json, Execution) {
    let op = CounterOp::Read;
    client
        .perform(op.operation(key), |reply| op.complete(reply))
        .await
}

/// Runs `cfg.clients` processes of increments and reads until `stop` fires; each finishes its
/// operation in flight, so the history ends with no open invocation.
pub async fn run_counter(
    cfg: &WorkloadConfig,
    seeds: Vec<String>,
    recorder: Recorder,
    stop: CancellationToken,
) -> Result<WorkloadStats, WorkloadError> {
    run_processes(
        cfg,
        seeds,
        recorder,
        stop,
        |shared, worker, stop| async move { client_loop(shared, worker, stop).await },
    )
    .await
}

async fn client_loop(shared: Arc<Shared>, worker: usize, stop: CancellationToken) -> WorkloadStats {
    let cfg = &shared.cfg;
    let mut p = Process::new(&shared, worker);
    let total = cfg.read_weight + cfg.write_weight;
    let choose = |rng: &mut ChaCha8Rng| {
        let key = &shared.keys[shared.cfg.key_dist.pick(rng, shared.keys.len())];
        let op = match rng.random_range(0..total) < cfg.read_weight {
            true => CounterOp::Read,
            false => CounterOp::Incr,
        };
        (op, key)
    };
    while p.next(&stop).await {
        if p.lanes.is_empty() {
            let (op, key) = choose(&mut p.rng);
            p.client
                .perform(op.operation(key), |reply| op.complete(reply))
                .await;
        } else {
            let picks: Vec<_> = p.lanes.iter().map(|_| choose(&mut p.rng)).collect();
            let ops = picks.iter().map(|(op, key)| op.operation(key)).collect();
            p.client
                .perform_pipeline(&mut p.lanes, ops, |i, reply| picks[i].0.complete(reply))
                .await;
        }
        tokio::task::yield_now().await;
    }
    p.client.stats().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let table = [
            (CounterOp::Incr, Value::Int(3), Completion::Ok(json!(3))),
            (CounterOp::Read, Value::Nil, Completion::Ok(json!(0))),
            (CounterOp::Read, bulk("17"), Completion::Ok(json!(17))),
        ];
        for (op, reply, want) in table {
            assert_eq!(op.complete(reply), want, "{op:?}");
        }
        assert!(matches!(
            CounterOp::Read.complete(bulk("x")),
            Completion::Info(_)
        ));
        assert!(matches!(
            CounterOp::Incr.complete(Value::Okay),
            Completion::Info(_)
        ));
        let op = CounterOp::Incr.operation("k");
        assert_eq!((op.f, op.value), ("incr", json!(1)));
    }
}
