//! What every workload shares: its configuration, its keys, the per-run state its processes
//! share, pacing, and the final reads that show lost writes. Their configuration is in
//! [`crate::config`]; the workloads themselves are [`crate::register`] (read, write, CAS, and
//! multi-key ops), [`crate::counter`] (INCR, read), [`crate::types`], [`crate::list_append`] and
//! [`crate::rw_register`].

use crate::client::Client;
pub use crate::config::{WorkloadConfig, WorkloadKind};
use crate::executor::{ClientChoice, ClientFactory};
use crate::recorder::Recorder;
use crate::router::Router;
use crate::slotmap::SlotMap;
use crate::stats::{WorkloadError, WorkloadStats};
use checker::EventType;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Final reads use process numbers from here up, far above any run's, so they never collide.
pub const FINAL_READ_PROCESS_BASE: u64 = 1 << 32;
/// Attempts per key in [`final_reads`] before the key is left with a `fail`/`info` read.
pub const FINAL_READ_ATTEMPTS_MAX: u32 = 10;
/// Pause between final-read attempts of one key.
pub const FINAL_READ_RETRY_MS: u64 = 100;

/// The workload's keys, `{prefix}{i}` (the `types` workload names its own); exposed so the
/// nemesis can migrate their slots.
pub fn workload_keys(cfg: &WorkloadConfig) -> Vec<String> {
    if cfg.kind == WorkloadKind::Types {
        return crate::types::typed_keys(cfg);
    }
    let names = cfg.key_names();
    (0..cfg.keys).map(|i| names.name(i)).collect()
}

/// The slots of the workload's keys, sorted, once each: what the nemesis migrates (with epochs
/// too, since an epoch key keeps the slot of its plain name).
pub fn workload_slots(cfg: &WorkloadConfig) -> Vec<u16> {
    slots_of(&workload_keys(cfg), crate::slot::key_slot)
}

/// The slots of `keys` by the slot function `slot` (Redis Cluster's or Codis's), sorted, once
/// each.
pub fn slots_of(keys: &[String], slot: impl Fn(&[u8]) -> u16) -> Vec<u16> {
    let mut slots: Vec<u16> = keys.iter().map(|k| slot(k.as_bytes())).collect();
    slots.sort_unstable();
    slots.dedup();
    slots
}

/// Runs the workload `cfg.kind` names until `stop` fires: [`crate::run_register`] (register and
/// cas-register), [`crate::run_counter`], or `cfg.clients` processes of the types workload (typed reads and
/// writes).
pub async fn run_workload(
    cfg: &WorkloadConfig,
    seeds: Vec<String>,
    recorder: Recorder,
    stop: CancellationToken,
) -> Result<WorkloadStats, WorkloadError> {
    match cfg.kind {
        WorkloadKind::Register | WorkloadKind::CasRegister => {
            crate::register::run_register(cfg, seeds, recorder, stop).await
        }
        WorkloadKind::Counter => crate::counter::run_counter(cfg, seeds, recorder, stop).await,
        WorkloadKind::Types => {
            let types = crate::types::client_loop;
            run_processes_with_values(cfg, seeds, recorder, stop, types).await
        }
        WorkloadKind::ListAppend => {
            crate::list_append::run_list_append(cfg, seeds, recorder, stop).await
        }
        WorkloadKind::RwRegister => {
            crate::rw_register::run_rw_register(cfg, seeds, recorder, stop).await
        }
    }
}

/// What every process of one run shares.
pub(crate) struct Shared {
    pub(crate) cfg: WorkloadConfig,
    pub(crate) keys: Vec<String>,
    pub(crate) recorder: Recorder,
    factory: Arc<ClientFactory>,
    next_process: Arc<AtomicU64>,
}

impl Shared {
    pub(crate) async fn new(
        cfg: &WorkloadConfig,
        seeds: Vec<String>,
        recorder: Recorder,
        first_free_process: u64,
    ) -> Result<Shared, WorkloadError> {
        cfg.validate()?;
        let slots = SlotMap::new().shared();
        if cfg.codis.is_none() {
            Router::new(seeds.clone(), slots.clone(), cfg.router_config())
                .refresh_slot_map()
                .await?;
        }
        Ok(Shared {
            cfg: cfg.clone(),
            keys: workload_keys(cfg),
            recorder,
            factory: Arc::new(cfg.factory(seeds, slots)),
            next_process: Arc::new(AtomicU64::new(first_free_process)),
        })
    }

    /// Process `process`'s client; it opens its connections on first use.
    pub(crate) fn client(&self, process: u64) -> Client {
        Client::from_factory(
            process,
            self.factory.clone(),
            self.recorder.clone(),
            self.next_process.clone(),
        )
    }
}

/// Runs `cfg.clients` processes, each `body(shared, worker, stop)`, over one [`Shared`], and
/// adds up their stats: every workload's spawner.
pub(crate) async fn run_processes<F, Fut>(
    cfg: &WorkloadConfig,
    seeds: Vec<String>,
    recorder: Recorder,
    stop: CancellationToken,
    body: F,
) -> Result<WorkloadStats, WorkloadError>
where
    F: Fn(Arc<Shared>, usize, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = WorkloadStats> + Send + 'static,
{
    let first_free = cfg.process_base + (cfg.clients * cfg.pipeline.max(1)) as u64;
    let shared = Arc::new(Shared::new(cfg, seeds, recorder, first_free).await?);
    let mut tasks = JoinSet::new();
    for worker in 0..cfg.clients {
        tasks.spawn(body(shared.clone(), worker, stop.clone()));
    }
    join_all(tasks).await
}

/// As [`run_processes`], each process also given the run's counter of values to write (one for
/// all keys and processes, from 1), so that every written value is unique within the run.
pub(crate) async fn run_processes_with_values<F, Fut>(
    cfg: &WorkloadConfig,
    seeds: Vec<String>,
    recorder: Recorder,
    stop: CancellationToken,
    body: F,
) -> Result<WorkloadStats, WorkloadError>
where
    F: Fn(Arc<Shared>, usize, Arc<AtomicU64>, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = WorkloadStats> + Send + 'static,
{
    let next_value = Arc::new(AtomicU64::new(1));
    run_processes(cfg, seeds, recorder, stop, |shared, worker, stop| {
        body(shared, worker, next_value.clone(), stop)
    })
    .await
}

/// One client worker's loop state: its seeded choices, its client and its pacing.
pub(crate) struct Process {
    /// Seeded by the run's seed and the worker number.
    pub(crate) rng: ChaCha8Rng,
    /// The process's client (its number changes on `info`).
    pub(crate) client: Client,
    /// With `--pipeline K` above 1, the numbers of the worker's K logical processes, whose ops
    /// go out as one pipeline (each changes on its own `info`); empty otherwise.
    pub(crate) lanes: Vec<u64>,
    pace: Option<tokio::time::Interval>,
}

impl Process {
    /// Worker `worker`'s process of `shared`'s run (its first logical process is numbered
    /// `process_base + worker * K` for a pipeline of K).
    pub(crate) fn new(shared: &Shared, worker: usize) -> Process {
        let cfg = &shared.cfg;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(worker as u64));
        let k = cfg.pipeline.max(1);
        let first = cfg.process_base + (worker * k) as u64;
        let client = shared.client(first);
        let lanes = match k {
            1 => Vec::new(),
            k => (first..first + k as u64).collect(),
        };
        let pace = pacer(cfg, &mut rng);
        Process {
            rng,
            client,
            lanes,
            pace,
        }
    }

    /// Waits for the next operation's turn; `false` once `stop` fires.
    pub(crate) async fn next(&mut self, stop: &CancellationToken) -> bool {
        if stop.is_cancelled() {
            return false;
        }
        if let Some(pace) = self.pace.as_mut() {
            tokio::select! {
                _ = stop.cancelled() => return false,
                _ = pace.tick() => {}
            }
        }
        true
    }
}

/// A ticker spacing one client's operations so that all clients together make
/// `cfg.rate_per_s`, with a random phase so clients do not fire in lockstep; `None` when unpaced.
fn pacer(cfg: &WorkloadConfig, rng: &mut ChaCha8Rng) -> Option<tokio::time::Interval> {
    if cfg.rate_per_s == 0 {
        return None;
    }
    // A worker's turn sends one op per logical process (K with `--pipeline K`).
    let ops_per_turn = (cfg.clients * cfg.pipeline.max(1)) as f64;
    let period = Duration::from_secs_f64(ops_per_turn / cfg.rate_per_s as f64);
    let phase = period.mul_f64(rng.random_range(0.0..1.0));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Some(ticker)
}

/// Reads every key once, the workload's named keys and then `extra_keys` (what the workload's
/// stats named), retrying up to [`FINAL_READ_ATTEMPTS_MAX`] times until a read is `ok`, with
/// process numbers from [`FINAL_READ_PROCESS_BASE`], so lost writes show up.
pub async fn final_reads(
    cfg: &WorkloadConfig,
    seeds: Vec<String>,
    recorder: Recorder,
    extra_keys: &[String],
) -> Result<WorkloadStats, WorkloadError> {
    let readers = cfg.clients.min(cfg.keys).max(1);
    let first_free = FINAL_READ_PROCESS_BASE + readers as u64;
    // The final reads are the harness's check, not the client under test: slotcheck's own
    // router, never with a bug.
    let cfg = &WorkloadConfig {
        client_bug: None,
        client: ClientChoice::Slotcheck,
        ..cfg.clone()
    };
    let mut shared = Shared::new(cfg, seeds, recorder, first_free).await?;
    shared.keys.extend(extra_keys.iter().cloned());
    let shared = Arc::new(shared);
    let mut tasks = JoinSet::new();
    for reader in 0..readers {
        let shared = shared.clone();
        tasks.spawn(async move {
            let mut client = shared.client(FINAL_READ_PROCESS_BASE + reader as u64);
            for key in shared.keys.iter().skip(reader).step_by(readers) {
                for attempt in 1..=FINAL_READ_ATTEMPTS_MAX {
                    let (kind, _, _) = match shared.cfg.kind {
                        WorkloadKind::Register | WorkloadKind::CasRegister => {
                            crate::register::read(&mut client, key).await
                        }
                        WorkloadKind::Counter => crate::counter::read(&mut client, key).await,
                        WorkloadKind::Types => crate::types::read(&mut client, key).await,
                        WorkloadKind::ListAppend => {
                            crate::list_append::read(&mut client, key).await
                        }
                        WorkloadKind::RwRegister => {
                            crate::rw_register::read(&mut client, key).await
                        }
                    };
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

pub(crate) async fn join_all(
    mut tasks: JoinSet<WorkloadStats>,
) -> Result<WorkloadStats, WorkloadError> {
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
    use crate::{ClientBug, TxnMode};

    #[test]
    fn keys_spread_over_slots() {
        let cfg = WorkloadConfig {
            keys: 16,
            ..WorkloadConfig::default()
        };
        let keys = workload_keys(&cfg);
        assert_eq!(keys[3], "register:3");
        let mut slots: Vec<u16> = keys.iter().map(|k| key_slot(k.as_bytes())).collect();
        slots.sort();
        slots.dedup();
        assert_eq!(slots.len(), 16);
    }

    #[test]
    fn validates() {
        assert!(WorkloadConfig::default().validate().is_ok());
        let zero = WorkloadConfig {
            read_weight: 0,
            write_weight: 0,
            cas_weight: 0,
            multi_weight: 0,
            ..WorkloadConfig::default()
        };
        assert!(zero.validate().is_err());
        let elle = |kind, client| WorkloadConfig {
            kind,
            client,
            ..WorkloadConfig::default()
        };
        let refused = elle(WorkloadKind::ListAppend, ClientChoice::RedisRs).validate();
        assert!(
            refused.is_err_and(|e| e.to_string().contains("MULTI/EXEC")),
            "redis-rs runs no transactions"
        );
        let lua = WorkloadConfig {
            txn: TxnMode::Lua,
            ..elle(WorkloadKind::RwRegister, ClientChoice::RedisRs)
        };
        assert!(lua.validate().is_ok(), "a script is one command");
        let none = WorkloadConfig {
            clients: 0,
            ..WorkloadConfig::default()
        };
        assert!(none.validate().is_err());
    }

    #[test]
    fn pipelines_are_refused_where_they_cannot_run() {
        let with = |pipeline, client, kind, bug| WorkloadConfig {
            pipeline,
            client,
            kind,
            client_bug: bug,
            ..WorkloadConfig::default()
        };
        use ClientChoice::{RedisRs, Slotcheck};
        use WorkloadKind::{Counter, Register, Types};
        let drop = Some(ClientBug::PipelineAskDrop);
        let table = [
            (with(1, Slotcheck, Register, None), None),
            (with(8, Slotcheck, Register, None), None),
            (with(8, Slotcheck, Counter, drop), None),
            (with(0, Slotcheck, Register, None), Some("at least 1")),
            (with(8, RedisRs, Register, None), Some("redis-rs")),
            (with(8, Slotcheck, Types, None), Some("not types")),
            (
                with(1, Slotcheck, Register, drop),
                Some("needs --pipeline 2"),
            ),
        ];
        for (cfg, want) in table {
            let got = cfg.pipeline_refused();
            match want {
                None => assert_eq!(got, None, "{cfg:?}"),
                Some(text) => assert!(got.as_deref().is_some_and(|g| g.contains(text)), "{got:?}"),
            }
            assert_eq!(cfg.validate().is_err(), want.is_some());
        }
    }
}
