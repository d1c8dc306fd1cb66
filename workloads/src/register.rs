//! The register workload: concurrent reads, writes and compare-and-sets of a few integer keys,
//! for a linearizability check per key.

use crate::bugs::ClientBug;
use crate::client::{Client, Completion, Operation};
use crate::recorder::Recorder;
use crate::router::{Router, RouterConfig};
use crate::slotmap::{SharedSlotMap, SlotMap};
use crate::stats::{WorkloadError, WorkloadStats};
use checker::EventType;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use redis::Value;
use serde_json::{json, Value as Json};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Sets the key to `ARGV[2]` if it holds `ARGV[1]`; 1 if it did, 0 if not.
const CAS_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     redis.call('SET', KEYS[1], ARGV[2]) return 1 else return 0 end";
/// Sets the key to `ARGV[1]` if it is absent; 1 if it was, 0 if not.
const CAS_ABSENT_SCRIPT: &str = "if redis.call('EXISTS', KEYS[1]) == 0 then \
     redis.call('SET', KEYS[1], ARGV[1]) return 1 else return 0 end";

/// Final reads use process numbers from here up, far above any run's, so they never collide.
pub const FINAL_READ_PROCESS_BASE: u64 = 1 << 32;
/// Attempts per key in [`final_reads`] before the key is left with a `fail`/`info` read.
pub const FINAL_READ_ATTEMPTS_MAX: u32 = 10;
/// Pause between final-read attempts of one key.
pub const FINAL_READ_RETRY_MS: u64 = 100;

/// What the register workload does, how hard, and with which bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterConfig {
    /// Concurrent logical processes (tokio tasks).
    pub clients: usize,
    /// Number of registers (keys).
    pub keys: usize,
    /// Key names are `{key_prefix}{i}`.
    pub key_prefix: String,
    /// Seeds every client's operation choices.
    pub seed: u64,
    /// Per-request timeout; past it the outcome is `info`.
    pub timeout_ms: u64,
    /// Most redirects/retries one operation may follow.
    pub hops_max: u32,
    /// Relative weight of reads.
    pub read_weight: u32,
    /// Relative weight of writes.
    pub write_weight: u32,
    /// Relative weight of compare-and-sets.
    pub cas_weight: u32,
    /// Target operations per second over all clients; 0 means as fast as the servers answer.
    pub rate_per_s: u64,
    /// A client bug the workload's routers inject (a test aid, see [`crate::bugs`]); the final
    /// reads never do.
    pub client_bug: Option<ClientBug>,
    /// With a value above 0, each key lives for one epoch of this many ms of history time
    /// ([`epoch_key`]), so a soak can check each epoch's keys as soon as the epoch is over; the
    /// key's slot stays the same from epoch to epoch.
    pub epoch_ms: u64,
    /// First process number (a resumed soak continues above the numbers it already used).
    pub process_base: u64,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        RegisterConfig {
            clients: 5,
            keys: 8,
            key_prefix: "register:".into(),
            seed: 0,
            timeout_ms: 1000,
            hops_max: 16,
            read_weight: 50,
            write_weight: 35,
            cas_weight: 15,
            rate_per_s: 0,
            client_bug: None,
            epoch_ms: 0,
            process_base: 0,
        }
    }
}

impl RegisterConfig {
    /// Checks that the configuration describes a run.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let bad = |m: &str| Err(WorkloadError::InvalidConfig(m.to_string()));
        if self.clients == 0 {
            return bad("clients must be at least 1");
        }
        if self.keys == 0 {
            return bad("keys must be at least 1");
        }
        if self.timeout_ms == 0 {
            return bad("timeout_ms must be at least 1");
        }
        let total = self.read_weight as u64 + self.write_weight as u64 + self.cas_weight as u64;
        if total == 0 || total > u32::MAX as u64 {
            return bad("read/write/cas weights must sum to between 1 and u32::MAX");
        }
        Ok(())
    }

    /// The routing bounds this configuration implies.
    pub fn router_config(&self) -> RouterConfig {
        RouterConfig {
            timeout_ms: self.timeout_ms,
            hops_max: self.hops_max,
            bug: self.client_bug,
            ..RouterConfig::default()
        }
    }
}

/// The register keys, `{prefix}{i}`; exposed so the nemesis can migrate their slots.
pub fn register_keys(cfg: &RegisterConfig) -> Vec<String> {
    (0..cfg.keys)
        .map(|i| format!("{}{i}", cfg.key_prefix))
        .collect()
}

/// The slots of the register keys, sorted, once each: what the nemesis migrates (with epochs
/// too, since an epoch key keeps the slot of its plain name).
pub fn register_slots(cfg: &RegisterConfig) -> Vec<u16> {
    let mut slots: Vec<u16> = register_keys(cfg)
        .iter()
        .map(|k| crate::slot::key_slot(k.as_bytes()))
        .collect();
    slots.sort_unstable();
    slots.dedup();
    slots
}

/// Key `i`'s name in `epoch`: `{prefix i}:e<epoch>`, hash-tagged so that it has the slot of
/// `{prefix}{i}` in every epoch (and the nemesis keeps migrating the same slots).
pub fn epoch_key(prefix: &str, i: usize, epoch: u64) -> String {
    format!("{{{prefix}{i}}}:e{epoch}")
}

/// The epoch of an epoch key (`None` for a key without one).
pub fn key_epoch(key: &str) -> Option<u64> {
    key.rsplit_once(":e")?.1.parse().ok()
}

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

/// What every task of one run shares.
struct Shared {
    cfg: RegisterConfig,
    keys: Vec<String>,
    seeds: Vec<String>,
    slots: SharedSlotMap,
    recorder: Recorder,
    next_process: Arc<AtomicU64>,
}

impl Shared {
    async fn new(
        cfg: &RegisterConfig,
        seeds: Vec<String>,
        recorder: Recorder,
        first_free_process: u64,
    ) -> Result<Shared, WorkloadError> {
        cfg.validate()?;
        let slots = SlotMap::new().shared();
        Router::new(seeds.clone(), slots.clone(), cfg.router_config())
            .refresh_slot_map()
            .await?;
        Ok(Shared {
            cfg: cfg.clone(),
            keys: register_keys(cfg),
            seeds,
            slots,
            recorder,
            next_process: Arc::new(AtomicU64::new(first_free_process)),
        })
    }

    fn client(&self, process: u64) -> Client {
        let router = Router::new(
            self.seeds.clone(),
            self.slots.clone(),
            self.cfg.router_config(),
        );
        Client::new(
            process,
            router,
            self.recorder.clone(),
            self.next_process.clone(),
        )
    }
}

/// Runs `cfg.clients` processes of reads, writes and CASes until `stop` fires; each finishes
/// its operation in flight, so the history ends with no open invocation.
pub async fn run_register(
    cfg: &RegisterConfig,
    seeds: Vec<String>,
    recorder: Recorder,
    stop: CancellationToken,
) -> Result<WorkloadStats, WorkloadError> {
    let first_free = cfg.process_base + cfg.clients as u64;
    let shared = Arc::new(Shared::new(cfg, seeds, recorder, first_free).await?);
    // Written values are unique per key within a run: one counter for all keys.
    let next_value = Arc::new(AtomicU64::new(1));
    let mut tasks = JoinSet::new();
    for worker in 0..cfg.clients {
        let (shared, next_value, stop) = (shared.clone(), next_value.clone(), stop.clone());
        tasks.spawn(async move { client_loop(shared, worker, next_value, stop).await });
    }
    join_all(tasks).await
}

async fn client_loop(
    shared: Arc<Shared>,
    worker: usize,
    next_value: Arc<AtomicU64>,
    stop: CancellationToken,
) -> WorkloadStats {
    let cfg = &shared.cfg;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(worker as u64));
    let mut client = shared.client(cfg.process_base + worker as u64);
    // The last value this client saw in each key: the expected value of its next CAS there.
    let mut seen: Vec<Option<u64>> = vec![None; shared.keys.len()];
    let mut epoch = 0;
    let total = cfg.read_weight + cfg.write_weight + cfg.cas_weight;
    let mut pace = pacer(cfg, &mut rng);
    while !stop.is_cancelled() {
        if let Some(pace) = pace.as_mut() {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = pace.tick() => {}
            }
        }
        let k = rng.random_range(0..shared.keys.len());
        let pick = rng.random_range(0..total);
        let fresh = || next_value.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let op = if pick < cfg.read_weight {
            RegisterOp::Read
        } else if pick < cfg.read_weight + cfg.write_weight {
            RegisterOp::Write(fresh())
        } else {
            RegisterOp::Cas(seen[k], fresh())
        };
        let epoch_name;
        let now = (shared.recorder.now_ns() / 1_000_000).checked_div(cfg.epoch_ms);
        let key = if let Some(now) = now {
            if now != epoch {
                // A new epoch's keys start absent.
                epoch = now;
                seen.iter_mut().for_each(|s| *s = None);
            }
            epoch_name = epoch_key(&cfg.key_prefix, k, epoch);
            &epoch_name
        } else {
            &shared.keys[k]
        };
        let op = match op {
            RegisterOp::Cas(_, new) => RegisterOp::Cas(seen[k], new),
            other => other,
        };
        let (kind, value, _) = client
            .perform(op.operation(key), |reply| op.complete(reply))
            .await;
        if kind == EventType::Ok {
            seen[k] = match op {
                RegisterOp::Read => value.as_u64(),
                RegisterOp::Write(v) | RegisterOp::Cas(_, v) => Some(v),
            };
        }
        tokio::task::yield_now().await;
    }
    client.stats().clone()
}

/// A ticker spacing one client's operations so that all clients together make
/// `cfg.rate_per_s`, with a random phase so clients do not fire in lockstep; `None` when unpaced.
fn pacer(cfg: &RegisterConfig, rng: &mut ChaCha8Rng) -> Option<tokio::time::Interval> {
    if cfg.rate_per_s == 0 {
        return None;
    }
    let period = Duration::from_secs_f64(cfg.clients as f64 / cfg.rate_per_s as f64);
    let phase = period.mul_f64(rng.random_range(0.0..1.0));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Some(ticker)
}

/// Reads every key once (retrying up to [`FINAL_READ_ATTEMPTS_MAX`] times until a read is
/// `ok`), with process numbers from [`FINAL_READ_PROCESS_BASE`], so lost writes show up.
pub async fn final_reads(
    cfg: &RegisterConfig,
    seeds: Vec<String>,
    recorder: Recorder,
) -> Result<WorkloadStats, WorkloadError> {
    let readers = cfg.clients.min(cfg.keys).max(1);
    let first_free = FINAL_READ_PROCESS_BASE + readers as u64;
    // The final reads are the harness's check, not the client under test: never with a bug.
    let cfg = &RegisterConfig {
        client_bug: None,
        ..cfg.clone()
    };
    let shared = Arc::new(Shared::new(cfg, seeds, recorder, first_free).await?);
    let mut tasks = JoinSet::new();
    for reader in 0..readers {
        let shared = shared.clone();
        tasks.spawn(async move {
            let mut client = shared.client(FINAL_READ_PROCESS_BASE + reader as u64);
            for key in shared.keys.iter().skip(reader).step_by(readers) {
                for attempt in 1..=FINAL_READ_ATTEMPTS_MAX {
                    let op = RegisterOp::Read;
                    let (kind, _, _) = client
                        .perform(op.operation(key), |reply| op.complete(reply))
                        .await;
                    if kind == EventType::Ok {
                        break;
                    }
                    if attempt < FINAL_READ_ATTEMPTS_MAX {
                        tokio::time::sleep(Duration::from_millis(FINAL_READ_RETRY_MS)).await;
                    }
                }
            }
            client.stats().clone()
        });
    }
    join_all(tasks).await
}

async fn join_all(mut tasks: JoinSet<WorkloadStats>) -> Result<WorkloadStats, WorkloadError> {
    let mut stats = WorkloadStats::default();
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(s) => stats.merge(&s),
            Err(e) => failure = failure.or(Some(WorkloadError::Task(e.to_string()))),
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(stats),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::key_slot;

    #[test]
    fn keys_spread_over_slots() {
        let cfg = RegisterConfig {
            keys: 16,
            ..RegisterConfig::default()
        };
        let keys = register_keys(&cfg);
        assert_eq!(keys[3], "register:3");
        let mut slots: Vec<u16> = keys.iter().map(|k| key_slot(k.as_bytes())).collect();
        slots.sort();
        slots.dedup();
        assert_eq!(slots.len(), 16);
    }

    #[test]
    fn epoch_keys_keep_their_slot_and_name_their_epoch() {
        for i in [0, 7, 99] {
            let plain = key_slot(format!("register:{i}").as_bytes());
            for epoch in [0, 1, 12345] {
                let key = epoch_key("register:", i, epoch);
                assert_eq!(key_slot(key.as_bytes()), plain, "{key}");
                assert_eq!(key_epoch(&key), Some(epoch));
            }
        }
        assert_eq!(key_epoch("register:3"), None);
    }

    #[test]
    fn validates() {
        assert!(RegisterConfig::default().validate().is_ok());
        let zero = RegisterConfig {
            read_weight: 0,
            write_weight: 0,
            cas_weight: 0,
            ..RegisterConfig::default()
        };
        assert!(zero.validate().is_err());
        let none = RegisterConfig {
            clients: 0,
            ..RegisterConfig::default()
        };
        assert!(none.validate().is_err());
    }

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
