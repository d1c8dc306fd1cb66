//! Client traffic during a migration benchmark: paced `GET`s and `SET`s of the data set's own keys
//! (a `SET` writes the key's own value back, so the data set stays checkable), through slotcheck's
//! router (no history), with latency and throughput kept apart before, during and after the
//! migration, redirects counted by kind, and ops per time bucket for the plot.

use super::dataset::{self, DatasetSpec};
use anyhow::Result;
use checker::RedirectKind;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use workloads::{Router, RouterConfig, SlotMap};

/// Length of a throughput bucket, ms.
pub const BUCKET_MS: u64 = 100;
/// Largest latency recorded, µs (a minute); larger ones count as this.
const LATENCY_US_MAX: u64 = 60_000_000;
/// Distinct error texts kept per run.
const ERRORS_KEPT_MAX: usize = 5;

/// How hard the clients push.
#[derive(Debug, Clone, Serialize)]
pub struct TrafficConfig {
    /// Concurrent clients (tasks), each with its own router and connections.
    pub clients: usize,
    /// Target operations per second over all clients.
    pub rate_per_s: u64,
    /// Percentage of reads (the rest are writes).
    pub read_percent: u32,
    /// Seeds the key and operation choices.
    pub seed: u64,
}

/// The part of the run an op's invocation fell into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the migration started.
    Before = 0,
    /// While it ran.
    During = 1,
    /// After it ended.
    After = 2,
}

/// Throughput and latency of one phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseStats {
    /// Completed ops (ok or error).
    pub ops: u64,
    /// Ops that ended in an error.
    pub errors: u64,
    /// Ops per second over the phase.
    pub ops_per_s: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Slowest op, ms.
    pub max_ms: f64,
    /// The phase's length, s.
    pub duration_s: f64,
}

/// What the clients saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrafficReport {
    /// The configuration.
    pub config: Option<TrafficConfig>,
    /// Before, during and after the migration.
    pub before: PhaseStats,
    /// While the migration ran.
    pub during: PhaseStats,
    /// After it ended.
    pub after: PhaseStats,
    /// Redirect hops followed, by kind.
    pub redirects: BTreeMap<String, u64>,
    /// A few distinct error texts.
    pub error_samples: Vec<String>,
    /// Completed ops per [`BUCKET_MS`] bucket since the traffic started.
    pub ops_per_bucket: Vec<u64>,
    /// When the migration started and ended, s since the traffic started.
    pub migration_s: (f64, f64),
}

/// Running clients; [`Traffic::stop`] ends them and sums up.
pub struct Traffic {
    stop: CancellationToken,
    phase: Arc<AtomicUsize>,
    started: Instant,
    marks: Vec<Instant>,
    tasks: JoinSet<Tally>,
    config: TrafficConfig,
}

/// One client's counts.
struct Tally {
    latency: [Histogram<u64>; 3],
    errors: [u64; 3],
    redirects: BTreeMap<RedirectKind, u64>,
    error_samples: Vec<String>,
    buckets: Vec<u64>,
}

impl Traffic {
    /// Starts `cfg.clients` clients on the keys of `spec` in the cluster behind `seeds`.
    pub async fn start(
        seeds: Vec<String>,
        spec: &DatasetSpec,
        cfg: &TrafficConfig,
    ) -> Result<Self> {
        anyhow::ensure!(
            cfg.clients > 0 && cfg.rate_per_s > 0,
            "traffic needs clients and a rate"
        );
        anyhow::ensure!(spec.keys > 0, "traffic needs keys");
        let slots = SlotMap::new().shared();
        Router::new(seeds.clone(), slots.clone(), RouterConfig::default())
            .refresh_slot_map()
            .await?;
        let stop = CancellationToken::new();
        let phase = Arc::new(AtomicUsize::new(Phase::Before as usize));
        let started = Instant::now();
        let interval = Duration::from_secs_f64(cfg.clients as f64 / cfg.rate_per_s as f64);
        let mut tasks = JoinSet::new();
        for c in 0..cfg.clients {
            let router = Router::new(seeds.clone(), slots.clone(), RouterConfig::default());
            let rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(c as u64));
            let client = Client {
                router,
                rng,
                spec: spec.clone(),
                read_percent: cfg.read_percent,
                phase: phase.clone(),
                started,
                interval,
            };
            tasks.spawn(client.run(stop.clone()));
        }
        Ok(Traffic {
            stop,
            phase,
            started,
            marks: Vec::new(),
            tasks,
            config: cfg.clone(),
        })
    }

    /// Ops invoked from now on count toward `phase`.
    pub fn set_phase(&mut self, phase: Phase) {
        self.phase.store(phase as usize, Ordering::Relaxed);
        self.marks.push(Instant::now());
    }

    /// Stops every client and sums up what they saw.
    pub async fn stop(mut self) -> TrafficReport {
        self.stop.cancel();
        let ended = Instant::now();
        let mut all: Option<Tally> = None;
        while let Some(joined) = self.tasks.join_next().await {
            let Ok(t) = joined else { continue };
            match &mut all {
                None => all = Some(t),
                Some(a) => a.merge(t),
            }
        }
        let Some(all) = all else {
            return TrafficReport::default();
        };
        let at = |i: usize, default: Instant| self.marks.get(i).copied().unwrap_or(default);
        let (during, after) = (at(0, ended), at(1, ended));
        let spans = [
            during - self.started,
            after.saturating_duration_since(during),
            ended.saturating_duration_since(after),
        ];
        let stats = |i: usize| {
            let h = &all.latency[i];
            let secs = spans[i].as_secs_f64();
            let ms = |us: u64| us as f64 / 1e3;
            PhaseStats {
                ops: h.len(),
                errors: all.errors[i],
                ops_per_s: if secs > 0.0 {
                    h.len() as f64 / secs
                } else {
                    0.0
                },
                p50_ms: ms(h.value_at_quantile(0.5)),
                p99_ms: ms(h.value_at_quantile(0.99)),
                max_ms: ms(h.max()),
                duration_s: secs,
            }
        };
        let since = |t: Instant| (t - self.started).as_secs_f64();
        TrafficReport {
            config: Some(self.config.clone()),
            before: stats(0),
            during: stats(1),
            after: stats(2),
            redirects: all
                .redirects
                .iter()
                .map(|(k, n)| (k.name().to_string(), *n))
                .collect(),
            error_samples: all.error_samples.clone(),
            ops_per_bucket: all.buckets.clone(),
            migration_s: (since(during), since(after)),
        }
    }
}

impl Tally {
    fn new() -> Tally {
        let h = || Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid bounds");
        Tally {
            latency: [h(), h(), h()],
            errors: [0; 3],
            redirects: BTreeMap::new(),
            error_samples: Vec::new(),
            buckets: Vec::new(),
        }
    }

    fn merge(&mut self, other: Tally) {
        for i in 0..3 {
            let _ = self.latency[i].add(&other.latency[i]);
            self.errors[i] += other.errors[i];
        }
        for (k, n) in other.redirects {
            *self.redirects.entry(k).or_default() += n;
        }
        for e in other.error_samples {
            if self.error_samples.len() < ERRORS_KEPT_MAX && !self.error_samples.contains(&e) {
                self.error_samples.push(e);
            }
        }
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
    }
}

/// One client task.
struct Client {
    router: Router,
    rng: ChaCha8Rng,
    spec: DatasetSpec,
    read_percent: u32,
    phase: Arc<AtomicUsize>,
    started: Instant,
    interval: Duration,
}

impl Client {
    async fn run(mut self, stop: CancellationToken) -> Tally {
        let mut tally = Tally::new();
        // Clients start spread over one interval, so that the load is smooth from the start.
        let offset = self.interval.mul_f64(self.rng.random::<f64>());
        let mut next = tokio::time::Instant::now() + offset;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return tally,
                _ = tokio::time::sleep_until(next) => {}
            }
            next += self.interval;
            let i = self.rng.random_range(0..self.spec.keys);
            let key = dataset::key(&self.spec, i);
            let read = self.rng.random_range(0..100) < self.read_percent;
            let mut cmd = redis::cmd(if read { "GET" } else { "SET" });
            cmd.arg(&key);
            if !read {
                cmd.arg(dataset::value(&self.spec, i));
            }
            let phase = self.phase.load(Ordering::Relaxed).min(2);
            let invoked = Instant::now();
            let execution = self.router.execute(key.as_bytes(), &cmd).await;
            let done = Instant::now();
            let us = (done - invoked).as_micros() as u64;
            let _ = tally.latency[phase].record(us.clamp(1, LATENCY_US_MAX));
            if let Err(e) = &execution.result {
                tally.errors[phase] += 1;
                let text = e.to_string();
                if tally.error_samples.len() < ERRORS_KEPT_MAX
                    && !tally.error_samples.contains(&text)
                {
                    tally.error_samples.push(text);
                }
            }
            for r in &execution.redirects {
                *tally.redirects.entry(r.kind).or_default() += 1;
            }
            let bucket = ((done - self.started).as_millis() as u64 / BUCKET_MS) as usize;
            if tally.buckets.len() <= bucket {
                tally.buckets.resize(bucket + 1, 0);
            }
            tally.buckets[bucket] += 1;
            // A client that fell behind does not burst to catch up.
            let now = tokio::time::Instant::now();
            if next < now {
                next = now;
            }
        }
    }
}
