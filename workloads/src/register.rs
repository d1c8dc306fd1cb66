//! The register workload: concurrent reads, writes and compare-and-sets of a few integer keys,
//! for a linearizability check per key.
//!
//! Two value policies. `register` writes values unique within the run (one counter for all
//! keys): a read names the write it saw, which the checker's fast path, the lost-write analysis
//! of the final reads and the attribution of aborted reads to client bugs rely on; a CAS then
//! succeeds only when its client saw the latest write. `cas-register` is Jepsen's: writes and
//! CAS draw values from `0..=`[`CAS_VALUES_MAX`], so a CAS whose client saw an older write of
//! the same value still succeeds, and the checker's general search decides the history.
//!
//! With keys in groups (`slots` > 0), `register` also sends multi-key commands on 2 to
//! [`MULTI_KEYS_MAX`] keys of one group (`MSET`, `MGET`, `DEL`), each recorded as one `txn` op
//! that the checker reads as one op per key (a `DEL` writes `null`). While their slot migrates
//! with its keys split between source and target, the server answers them `TRYAGAIN`: a
//! recorded hop, with back-off. Pipelined workers (`--pipeline`) and `cas-register` send single
//! commands only.

use crate::client::{Client, Completion, Operation, TxnOperation, TxnRequest};
use crate::router::Execution;
use crate::stats::{WorkloadError, WorkloadStats};
use crate::workload::{run_processes_with_values, Process, Shared, WorkloadConfig, WorkloadKind};
use crate::Recorder;
use checker::EventType;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use redis::Value;
use serde_json::{json, Value as Json};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Sets the key to `ARGV[2]` if it holds `ARGV[1]`; 1 if it did, 0 if not.
const CAS_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     redis.call('SET', KEYS[1], ARGV[2]) return 1 else return 0 end";
/// Sets the key to `ARGV[1]` if it is absent; 1 if it was, 0 if not.
const CAS_ABSENT_SCRIPT: &str = "if redis.call('EXISTS', KEYS[1]) == 0 then \
     redis.call('SET', KEYS[1], ARGV[1]) return 1 else return 0 end";

/// Largest value a cas-register writes or expects (Jepsen's cas-register draws from 0 to 4).
pub const CAS_VALUES_MAX: u64 = 4;

/// One register operation with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegisterOp {
    Read,
    Write(u64),
    /// Expected (`None`: absent) and new value.
    Cas(Option<u64>, u64),
}

impl RegisterOp {
    fn operation(self, key: &str) -> Operation<'_> {
        let (f, value, cmd) = match self {
            RegisterOp::Read => ("read", Json::Null, redis::cmd("GET").arg(key).clone()),
            RegisterOp::Write(v) => ("write", json!(v), redis::cmd("SET").arg(key).arg(v).clone()),
            RegisterOp::Cas(expected, new) => {
                let mut cmd = redis::cmd("EVAL");
                match expected {
                    Some(e) => cmd.arg(CAS_SCRIPT).arg(1).arg(key).arg(e).arg(new),
                    None => cmd.arg(CAS_ABSENT_SCRIPT).arg(1).arg(key).arg(new),
                };
                ("cas", json!([expected, new]), cmd)
            }
        };
        Operation { f, key, value, cmd }
    }

    /// Reads the server's reply as this operation's completion.
    fn complete(self, reply: Value) -> Completion {
        match (self, reply) {
            (RegisterOp::Read, Value::Nil) => Completion::Ok(Json::Null),
            (RegisterOp::Read, Value::BulkString(bytes)) => match parse_u64(&bytes) {
                Some(v) => Completion::Ok(json!(v)),
                None => Completion::Info(format!(
                    "read a non-integer value {:?}",
                    String::from_utf8_lossy(&bytes)
                )),
            },
            (RegisterOp::Write(v), Value::Okay) => Completion::Ok(json!(v)),
            (RegisterOp::Cas(e, n), Value::Int(1)) => Completion::Ok(json!([e, n])),
            (RegisterOp::Cas(..), Value::Int(0)) => {
                Completion::Fail("cas: the value did not match".into())
            }
            (_, other) => Completion::Info(format!("unexpected reply {other:?}")),
        }
    }
}

fn parse_u64(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Most keys in one multi-key op.
pub const MULTI_KEYS_MAX: usize = 4;

/// A multi-key command on keys of one slot, recorded as one `txn` op.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MultiOp {
    /// `MSET k1 v1 k2 v2 ...`: a write of each key.
    Set(Vec<(String, u64)>),
    /// `MGET k1 k2 ...`: a read of each key.
    Get(Vec<String>),
    /// `DEL k1 k2 ...`: a write of `null` (absent) to each key.
    Del(Vec<String>),
}

impl MultiOp {
    /// The op's keys, in order.
    fn keys(&self) -> Vec<&str> {
        match self {
            MultiOp::Set(pairs) => pairs.iter().map(|(k, _)| k.as_str()).collect(),
            MultiOp::Get(keys) | MultiOp::Del(keys) => keys.iter().map(String::as_str).collect(),
        }
    }

    /// The micro-ops as the invocation records them.
    fn micro_ops(&self) -> Json {
        match self {
            MultiOp::Set(pairs) => pairs.iter().map(|(k, v)| json!(["w", k, v])).collect(),
            MultiOp::Get(keys) => keys.iter().map(|k| json!(["r", k, null])).collect(),
            MultiOp::Del(keys) => keys.iter().map(|k| json!(["w", k, null])).collect(),
        }
    }

    fn operation(&self) -> TxnOperation<'_> {
        let cmd = match self {
            MultiOp::Set(pairs) => {
                let mut cmd = redis::cmd("MSET");
                for (k, v) in pairs {
                    cmd.arg(k).arg(v);
                }
                cmd
            }
            MultiOp::Get(keys) => redis::cmd("MGET").arg(keys).clone(),
            MultiOp::Del(keys) => redis::cmd("DEL").arg(keys).clone(),
        };
        TxnOperation {
            route_key: self.keys()[0],
            value: self.micro_ops(),
            request: TxnRequest::Command(cmd),
            batch: None,
        }
    }

    /// Reads the server's reply as this operation's completion.
    fn complete(&self, reply: Value) -> Completion {
        match (self, reply) {
            (MultiOp::Set(_), Value::Okay) | (MultiOp::Del(_), Value::Int(_)) => {
                Completion::Ok(self.micro_ops())
            }
            (MultiOp::Get(keys), Value::Array(values)) if values.len() == keys.len() => {
                let mut read = Vec::with_capacity(keys.len());
                for (k, v) in keys.iter().zip(values) {
                    match RegisterOp::Read.complete(v) {
                        Completion::Ok(v) => read.push(json!(["r", k, v])),
                        other => return other,
                    }
                }
                Completion::Ok(Json::Array(read))
            }
            (_, other) => Completion::Info(format!("unexpected reply {other:?}")),
        }
    }

    /// 2 to [`MULTI_KEYS_MAX`] keys of `group` (`first` among them), as `MSET` (45 %), `MGET`
    /// (45 %) or `DEL` (10 %), with the indices of its keys; `None` when the group has one key.
    fn pick(
        rng: &mut impl Rng,
        group: &[usize],
        name: impl Fn(usize) -> String,
        fresh: impl Fn() -> u64,
    ) -> Option<(MultiOp, Vec<usize>)> {
        if group.len() < 2 {
            return None;
        }
        let n = rng.random_range(2..=MULTI_KEYS_MAX.min(group.len()));
        let mut chosen = group.to_vec();
        rand::seq::SliceRandom::shuffle(&mut chosen[1..], rng);
        chosen.truncate(n);
        let keys: Vec<String> = chosen.iter().map(|&i| name(i)).collect();
        let op = match rng.random_range(0..100) {
            0..45 => MultiOp::Set(keys.into_iter().map(|k| (k, fresh())).collect()),
            45..90 => MultiOp::Get(keys),
            _ => MultiOp::Del(keys),
        };
        Some((op, chosen))
    }

    /// What each key held after the op (for the next CAS's expected value), by key index.
    fn seen(&self, chosen: &[usize], value: &Json) -> Vec<(usize, Option<u64>)> {
        let values = value.as_array().map(Vec::as_slice).unwrap_or(&[]);
        chosen
            .iter()
            .zip(values)
            .map(|(&i, m)| (i, m[2].as_u64()))
            .collect()
    }
}

/// One multi-key op on 2 to [`MULTI_KEYS_MAX`] keys of `k`'s group (nothing if it has one
/// key; never in a soak, whose windows need every op's key); `seen` learns what an `ok` op left.
async fn multi_key(
    shared: &Shared,
    p: &mut Process,
    k: usize,
    seen: &mut [Option<u64>],
    fresh: &impl Fn() -> u64,
) {
    let group = shared.cfg.key_names().same_slot(k, shared.keys.len());
    let name = |i: usize| shared.keys[i].clone();
    let Some((op, chosen)) = MultiOp::pick(&mut p.rng, &group, name, fresh) else {
        return;
    };
    let (kind, value, _) = p
        .client
        .perform_txn(op.operation(), |reply| op.complete(reply))
        .await;
    if kind == EventType::Ok {
        for (i, v) in op.seen(&chosen, &value) {
            seen[i] = v;
        }
    }
}

/// One read of `key` through `client`, recorded: the final reads' register read.
pub(crate) async fn read(client: &mut Client, key: &str) -> (EventType, Json, Execution) {
    let op = RegisterOp::Read;
    client
        .perform(op.operation(key), |reply| op.complete(reply))
        .await
}

/// Runs `cfg.clients` processes of reads, writes and CASes until `stop` fires; each finishes
/// its operation in flight, so the history ends with no open invocation.
pub async fn run_register(
    cfg: &WorkloadConfig,
    seeds: Vec<String>,
    recorder: Recorder,
    stop: CancellationToken,
) -> Result<WorkloadStats, WorkloadError> {
    // Register: written values are unique per key within a run, one counter for all keys;
    // cas-register: drawn from a small range (see the module's guide).
    run_processes_with_values(cfg, seeds, recorder, stop, client_loop).await
}

async fn client_loop(
    shared: Arc<Shared>,
    worker: usize,
    next_value: Arc<AtomicU64>,
    stop: CancellationToken,
) -> WorkloadStats {
    let mut p = Process::new(&shared, worker);
    let mut chooser = Chooser {
        shared: &shared,
        next_value: &next_value,
        seen: vec![None; shared.keys.len()],
        epoch: 0,
    };
    while p.next(&stop).await {
        if p.lanes.is_empty() {
            if let Some(k) = chooser.multi(&mut p.rng) {
                let fresh = || next_value.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                multi_key(&shared, &mut p, k, &mut chooser.seen, &fresh).await;
                tokio::task::yield_now().await;
                continue;
            }
            let (op, k, key) = chooser.choose(&mut p.rng);
            let (kind, value, _) = p
                .client
                .perform(op.operation(&key), |reply| op.complete(reply))
                .await;
            chooser.observe(k, op, kind, &value);
        } else {
            let picks: Vec<_> = p.lanes.iter().map(|_| chooser.choose(&mut p.rng)).collect();
            let ops = picks.iter().map(|(op, _, key)| op.operation(key)).collect();
            let done = p
                .client
                .perform_pipeline(&mut p.lanes, ops, |i, reply| picks[i].0.complete(reply))
                .await;
            for ((op, k, _), (kind, value, _)) in picks.iter().zip(done) {
                chooser.observe(*k, *op, kind, &value);
            }
        }
        tokio::task::yield_now().await;
    }
    p.client.stats().clone()
}

/// One worker's choice of register ops: the run's shared state and the last value the worker
/// saw in each key, the expected value of its next CAS there.
struct Chooser<'a> {
    shared: &'a Shared,
    next_value: &'a AtomicU64,
    seen: Vec<Option<u64>>,
    /// The key epoch the worker is in (with `epoch_ms`).
    epoch: u64,
}

impl Chooser<'_> {
    /// The key of a multi-key op when the next op is one (a register run with groups, one op at
    /// a time), else `None` and the next op is a single one.
    fn multi(&mut self, rng: &mut ChaCha8Rng) -> Option<usize> {
        let cfg = &self.shared.cfg;
        // A soak's windows (`epoch_ms`) are cut by each op's key, and a `txn` op has none.
        let multi = cfg.kind == WorkloadKind::Register && cfg.slots > 0 && cfg.epoch_ms == 0;
        if !multi || cfg.multi_weight == 0 {
            return None;
        }
        let singles = cfg.read_weight + cfg.write_weight + cfg.cas_weight;
        let pick = rng.random_range(0..singles + cfg.multi_weight);
        (pick >= singles).then(|| cfg.key_dist.pick(rng, self.shared.keys.len()))
    }

    /// The next op, its key's index and the key's name.
    fn choose(&mut self, rng: &mut ChaCha8Rng) -> (RegisterOp, usize, String) {
        let cfg = &self.shared.cfg;
        let total = cfg.read_weight + cfg.write_weight + cfg.cas_weight;
        let k = cfg.key_dist.pick(rng, self.shared.keys.len());
        let pick = rng.random_range(0..total);
        // Only the cas-register draws, so a register run's choices stay what its seed gave.
        let small = cfg.kind == WorkloadKind::CasRegister;
        let drawn = small.then(|| rng.random_range(0..=CAS_VALUES_MAX));
        let fresh = || {
            drawn.unwrap_or_else(|| {
                self.next_value
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            })
        };
        let op = if pick < cfg.read_weight {
            RegisterOp::Read
        } else if pick < cfg.read_weight + cfg.write_weight {
            RegisterOp::Write(fresh())
        } else {
            RegisterOp::Cas(None, fresh())
        };
        let now = (self.shared.recorder.now_ns() / 1_000_000).checked_div(cfg.epoch_ms);
        let key = match now {
            Some(now) => {
                if now != self.epoch {
                    // A new epoch's keys start absent.
                    self.epoch = now;
                    self.seen.iter_mut().for_each(|s| *s = None);
                }
                cfg.key_names().epoch_name(k, self.epoch)
            }
            None => self.shared.keys[k].clone(),
        };
        let op = match op {
            RegisterOp::Cas(_, new) => RegisterOp::Cas(self.seen[k], new),
            other => other,
        };
        (op, k, key)
    }

    /// Notes what an op on key `k` ended with: an `ok` op shows the key's value.
    fn observe(&mut self, k: usize, op: RegisterOp, kind: EventType, value: &Json) {
        if kind == EventType::Ok {
            self.seen[k] = match op {
                RegisterOp::Read => value.as_u64(),
                RegisterOp::Write(v) | RegisterOp::Cas(_, v) => Some(v),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions() {
        use RegisterOp::*;
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let table = [
            (Read, Value::Nil, Completion::Ok(Json::Null)),
            (Read, bulk("42"), Completion::Ok(json!(42))),
            (Write(7), Value::Okay, Completion::Ok(json!(7))),
            (
                Cas(Some(1), 2),
                Value::Int(1),
                Completion::Ok(json!([1, 2])),
            ),
            (
                Cas(None, 2),
                Value::Int(1),
                Completion::Ok(json!([null, 2])),
            ),
            (
                Cas(Some(1), 2),
                Value::Int(0),
                Completion::Fail("cas: the value did not match".into()),
            ),
        ];
        for (op, reply, want) in table {
            assert_eq!(op.complete(reply), want, "{op:?}");
        }
        assert!(matches!(Read.complete(bulk("x")), Completion::Info(_)));
        assert!(matches!(
            Write(1).complete(Value::Int(3)),
            Completion::Info(_)
        ));
    }

    #[test]
    fn operations_carry_invoke_values() {
        let op = RegisterOp::Cas(None, 5).operation("k");
        assert_eq!((op.f, op.value), ("cas", json!([null, 5])));
        let op = RegisterOp::Read.operation("k");
        assert_eq!((op.f, op.value), ("read", Json::Null));
    }
}
