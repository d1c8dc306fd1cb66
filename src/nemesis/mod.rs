//! The nemesis: slot migrations (and, later, faults) on a seeded schedule, all recorded.
//!
//! Every action is a verb written to the history as `process: "nemesis"` events, so that the
//! checker can attribute an anomaly to the phase its slot was in.

pub mod error;
pub mod failover;
pub mod migrate;
pub mod migrate_atomic;
pub mod migrate_interrupt;
pub mod migrate_repair;
pub mod net;
pub mod plan;
pub mod process;
pub mod schedule;

use crate::harness::{parse_nodes, Admin, Cluster};
use migrate::{migrate_slot, MigrateOptions, Migration, Peer};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use workloads::Recorder;

/// What every nemesis verb needs: the cluster it acts on and the history it writes to.
#[derive(Clone)]
pub struct Ctx {
    /// The cluster under test, shared with the run (which stops it at the end).
    pub cluster: Arc<Cluster>,
    /// Where every action is recorded as `process: "nemesis"` events.
    pub recorder: Recorder,
}

impl Ctx {
    /// Records that action `f` began (`phase: "begin"`) with its target in `value`.
    pub fn begin(&self, f: &str, mut value: serde_json::Value) {
        value["phase"] = serde_json::json!("begin");
        self.recorder.nemesis(f, value);
    }

    /// Records that action `f` ended (`phase: "end"`), with `error` if it failed.
    pub fn end(&self, f: &str, mut value: serde_json::Value, error: Option<&str>) {
        value["phase"] = serde_json::json!("end");
        if let Some(e) = error {
            value["error"] = serde_json::json!(e);
        }
        self.recorder.nemesis(f, value);
    }
}

/// A seeded schedule of classic migrations of the slots the workload uses.
pub struct MigrationNemesis {
    rng: ChaCha8Rng,
    /// Slots worth moving: those holding workload keys.
    slots: Vec<u16>,
    /// Masters that may own slots.
    masters: Vec<Peer>,
    /// Mean pause between two migrations.
    interval_ms: u64,
    opts: MigrateOptions,
}

/// What the nemesis did during a run.
#[derive(Debug, Default, Clone)]
pub struct NemesisSummary {
    /// Migrations that completed.
    pub migrations: Vec<Migration>,
    /// Migrations that stopped half-way, with the reason.
    pub failures: Vec<String>,
}

impl MigrationNemesis {
    /// A schedule over `slots` among `masters`; the same seed gives the same choices.
    pub fn new(
        seed: u64,
        slots: Vec<u16>,
        masters: Vec<Peer>,
        interval_ms: u64,
        opts: MigrateOptions,
    ) -> Self {
        assert!(masters.len() >= 2, "a migration needs two masters");
        assert!(!slots.is_empty(), "no slots to migrate");
        MigrationNemesis {
            rng: ChaCha8Rng::seed_from_u64(seed),
            slots,
            masters,
            interval_ms,
            opts,
        }
    }

    /// Migrates random slots until `stop` fires; a migration under way is finished first.
    pub async fn run(mut self, recorder: Recorder, stop: CancellationToken) -> NemesisSummary {
        let mut summary = NemesisSummary::default();
        loop {
            let jitter = self.rng.random_range(0..=self.interval_ms / 2);
            let wait = Duration::from_millis(self.interval_ms / 2 + jitter);
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            let slot = *self.slots.choose(&mut self.rng).expect("slots not empty");
            let target_pick = self.rng.random_range(0..self.masters.len() - 1);
            let result = self.migrate_once(&recorder, slot, target_pick).await;
            match result {
                Ok(m) => {
                    tracing::info!(
                        slot = m.slot,
                        source = %m.source,
                        target = %m.target,
                        keys_moved = m.keys_moved,
                        duration_ms = m.duration.as_millis() as u64,
                        "migration done"
                    );
                    summary.migrations.push(m);
                }
                Err(e) => {
                    tracing::warn!(slot, error = %e, "migration failed");
                    recorder.nemesis(
                        "migrate-end",
                        serde_json::json!({"slot": slot, "phase": "failed", "error": e}),
                    );
                    summary.failures.push(e);
                }
            }
        }
        summary
    }

    /// Looks up the slot's owner now and moves it to the `target_pick`-th other master.
    async fn migrate_once(
        &self,
        recorder: &Recorder,
        slot: u16,
        target_pick: usize,
    ) -> Result<Migration, String> {
        let owner = self.owner(slot).await?;
        let source = self
            .masters
            .iter()
            .find(|m| m.id == owner)
            .ok_or_else(|| format!("slot {slot} owner {owner} is not a known master"))?;
        let others: Vec<&Peer> = self.masters.iter().filter(|m| m.id != owner).collect();
        let target = others[target_pick % others.len()];
        let rest: Vec<Peer> = others
            .iter()
            .filter(|m| m.id != target.id)
            .map(|m| (*m).clone())
            .collect();
        migrate_slot(recorder, slot, source, target, &rest, &self.opts)
            .await
            .map_err(|e| e.to_string())
    }

    /// Asks the masters, in order, who owns `slot`; the first answer wins.
    async fn owner(&self, slot: u16) -> Result<String, String> {
        let mut last = String::from("no master answered");
        for m in &self.masters {
            let mut admin = match Admin::connect(&m.addr).await {
                Ok(a) => a,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            match admin.text(&["CLUSTER", "NODES"]).await {
                Ok(text) => {
                    let views = parse_nodes(&text).unwrap_or_default();
                    if let Some(v) = views.iter().find(|v| !v.is_replica() && v.owns(slot)) {
                        return Ok(v.id.clone());
                    }
                    last = format!("{} knows no owner of slot {slot}", m.addr);
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}
