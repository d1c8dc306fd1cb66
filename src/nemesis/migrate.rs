//! Classic slot migration, one step at a time, every step written to the history.
//!
//! The steps are those of `redis-cli --cluster reshard`: `SETSLOT IMPORTING` on the target,
//! `SETSLOT MIGRATING` on the source, `GETKEYSINSLOT` + `MIGRATE ... KEYS` in batches, then
//! `SETSLOT NODE` on the target, the source and every other master. Pauses between steps make
//! the half-migrated states last long enough for clients to meet `ASK` and `TRYAGAIN`.

use crate::harness::{Admin, HarnessError};
use serde_json::json;
use std::time::{Duration, Instant};
use workloads::Recorder;

/// A master as the migration needs it: where to reach it and its cluster id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// `host:port`.
    pub addr: String,
    /// Cluster node id.
    pub id: String,
}

/// How a classic migration paces itself.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Keys per `MIGRATE ... KEYS` batch.
    pub batch_keys: usize,
    /// Pause after each step, so that clients hit the intermediate state.
    pub step_pause_ms: u64,
    /// The `MIGRATE` timeout argument.
    pub migrate_timeout_ms: u64,
    /// Upper bound on batches, so a slot that keeps refilling cannot loop forever.
    pub batches_max: usize,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            batch_keys: 10,
            step_pause_ms: 250,
            migrate_timeout_ms: 5000,
            batches_max: 10_000,
        }
    }
}

/// What one finished migration did, for the run log and the summary.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The slot moved.
    pub slot: u16,
    /// Where it was.
    pub source: String,
    /// Where it went.
    pub target: String,
    /// Keys moved by `MIGRATE`.
    pub keys_moved: usize,
    /// From the first step to the last.
    pub duration: Duration,
}

/// Why a migration stopped half-way.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A node refused or failed a step.
    #[error("migrating slot {slot} at step {step}: {source}")]
    Step {
        /// The slot being moved.
        slot: u16,
        /// The step that failed.
        step: &'static str,
        /// The node's error.
        source: HarnessError,
    },
    /// The slot kept receiving keys for more than `batches_max` batches.
    #[error("migrating slot {slot}: still not empty after {batches} batches")]
    NotDraining {
        /// The slot being moved.
        slot: u16,
        /// Batches sent.
        batches: usize,
    },
}

/// Moves `slot` from `source` to `target` with the classic protocol, recording each step.
///
/// `others` are the remaining masters, told the new owner at the end so that they answer
/// `MOVED` with the right address at once.
pub async fn migrate_slot(
    recorder: &Recorder,
    slot: u16,
    source: &Peer,
    target: &Peer,
    others: &[Peer],
    opts: &MigrateOptions,
) -> Result<Migration, MigrateError> {
    let started = Instant::now();
    let step_err = |step| move |source| MigrateError::Step { slot, step, source };
    let timeout_ms = opts.migrate_timeout_ms + 5000;
    let mut src = Admin::connect_with_timeout(&source.addr, timeout_ms)
        .await
        .map_err(step_err("connect"))?;
    let mut dst = Admin::connect_with_timeout(&target.addr, timeout_ms)
        .await
        .map_err(step_err("connect"))?;
    let base = json!({"slot": slot, "from": source.addr, "to": target.addr});
    let note = |f: &str, phase: &str, extra: serde_json::Value| {
        let mut value = base.clone();
        value["phase"] = json!(phase);
        if let (Some(v), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
            v.extend(extra.clone());
        }
        recorder.nemesis(f, value);
    };
    let pause = || tokio::time::sleep(Duration::from_millis(opts.step_pause_ms));

    note("migrate-start", "stable", json!({}));
    let setslot = |state: &str, id: &str| {
        let mut c = redis::cmd("CLUSTER");
        c.arg("SETSLOT").arg(slot).arg(state).arg(id);
        c
    };
    dst.query::<()>(&setslot("IMPORTING", &source.id))
        .await
        .map_err(step_err("importing"))?;
    note("migrate-step", "importing", json!({"node": target.addr}));
    src.query::<()>(&setslot("MIGRATING", &target.id))
        .await
        .map_err(step_err("migrating"))?;
    note("migrate-step", "migrating", json!({"node": source.addr}));
    pause().await;

    let (host, port) = split_addr(&target.addr);
    let mut keys_moved = 0usize;
    for batch in 0.. {
        if batch >= opts.batches_max {
            return Err(MigrateError::NotDraining {
                slot,
                batches: batch,
            });
        }
        let keys: Vec<String> = src
            .query(
                redis::cmd("CLUSTER")
                    .arg("GETKEYSINSLOT")
                    .arg(slot)
                    .arg(opts.batch_keys),
            )
            .await
            .map_err(step_err("getkeysinslot"))?;
        if keys.is_empty() {
            break;
        }
        let mut migrate = redis::cmd("MIGRATE");
        migrate
            .arg(host)
            .arg(port)
            .arg("")
            .arg(0)
            .arg(opts.migrate_timeout_ms)
            .arg("KEYS")
            .arg(&keys);
        src.query::<()>(&migrate)
            .await
            .map_err(step_err("migrate"))?;
        keys_moved += keys.len();
        note(
            "migrate-step",
            "keys-moved",
            json!({"keys": keys, "batch": batch, "moved_total": keys_moved}),
        );
        pause().await;
    }

    // The owner changes on the target first (it then serves the slot without ASKING), then on
    // the source (which starts answering MOVED), then everywhere else.
    dst.query::<()>(&setslot("NODE", &target.id))
        .await
        .map_err(step_err("node-target"))?;
    note("migrate-step", "finalized", json!({"node": target.addr}));
    src.query::<()>(&setslot("NODE", &target.id))
        .await
        .map_err(step_err("node-source"))?;
    note("migrate-step", "finalized", json!({"node": source.addr}));
    for other in others {
        let mut admin = Admin::connect_with_timeout(&other.addr, timeout_ms)
            .await
            .map_err(step_err("connect"))?;
        admin
            .query::<()>(&setslot("NODE", &target.id))
            .await
            .map_err(step_err("node-other"))?;
    }
    let duration = started.elapsed();
    note(
        "migrate-end",
        "stable",
        json!({"keys_moved": keys_moved, "duration_ms": duration.as_millis() as u64}),
    );
    Ok(Migration {
        slot,
        source: source.addr.clone(),
        target: target.addr.clone(),
        keys_moved,
        duration,
    })
}

/// Splits `host:port`; the port is kept as text since it only goes back on the wire.
fn split_addr(addr: &str) -> (&str, &str) {
    addr.rsplit_once(':').unwrap_or((addr, "6379"))
}
