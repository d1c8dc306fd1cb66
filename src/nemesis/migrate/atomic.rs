//! Atomic slot migration (Valkey 9): `CLUSTER MIGRATESLOTS`, polled with `CLUSTER
//! GETSLOTMIGRATIONS`, cancelled with `CLUSTER CANCELSLOTMIGRATIONS`.
//!
//! Checked against Valkey 9.1.2: `CLUSTER MIGRATESLOTS SLOTSRANGE <start> <end> NODE <target-id>`
//! goes to the source and answers `OK`; the job runs in the background and both nodes list it in
//! `CLUSTER GETSLOTMIGRATIONS` (an array of field/value maps: `name`, `operation` EXPORT/IMPORT,
//! `slot_ranges` "s-e", `target_node`, `source_node`, `create_time`, `last_update_time`,
//! `last_ack_time`, `state`, `message`, `cow_size`, `remaining_repl_size`), also after it ended.
//! The export side passes `connecting`, `sending-establish-command`, `reading-establish-response`,
//! `waiting-to-snapshot`, `snapshotting`, `replicating`, `failover-paused`, `failover-granted` and
//! ends in `success`, `failed` or `cancelled`. `CLUSTER CANCELSLOTMIGRATIONS` takes no argument
//! (the help text's `ALL` is refused) and answers `ERR No migrations ongoing` when idle; after a
//! cancel the source keeps the slot and its keys, and the target drops what it had imported (its
//! job ends `failed`, "Connection lost to source"). Redis 7.0 answers `unknown subcommand`, which
//! becomes [`MigrateError::Unsupported`].

use super::{MigrateError, Notes, Peer};
use crate::harness::{Admin, HarnessError};
use redis::Value;
use serde_json::json;
use std::time::{Duration, Instant};
use workloads::Recorder;

/// States after which a job changes no more.
const TERMINAL_STATES: [&str; 3] = ["success", "failed", "cancelled"];
/// Ranges wider than this are not counted key by key on the target in progress events.
const COUNTED_SLOTS_MAX: u32 = 64;

/// How an atomic migration is watched.
#[derive(Debug, Clone)]
pub struct AtomicOptions {
    /// Pause between two `GETSLOTMIGRATIONS` polls.
    pub poll_ms: u64,
    /// Write an `atomic-progress` event at least this often, even if the state did not change.
    pub progress_every_ms: u64,
    /// Give up waiting for a terminal state after this long.
    pub timeout_ms: u64,
}

impl Default for AtomicOptions {
    fn default() -> Self {
        AtomicOptions {
            poll_ms: 20,
            progress_every_ms: 500,
            timeout_ms: 60_000,
        }
    }
}

/// One entry of `CLUSTER GETSLOTMIGRATIONS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotMigrationJob {
    /// The job's id, the same on both nodes.
    pub name: String,
    /// `EXPORT` on the source, `IMPORT` on the target.
    pub operation: String,
    /// Inclusive slot ranges.
    pub slot_ranges: Vec<(u16, u16)>,
    /// Source node id.
    pub source_node: String,
    /// Target node id.
    pub target_node: String,
    /// e.g. `snapshotting`, `success`, `cancelled`.
    pub state: String,
    /// Why it failed, if it did.
    pub message: String,
    /// Replication backlog still to send.
    pub remaining_repl_size: u64,
}

impl SlotMigrationJob {
    /// Whether the job has ended (`success`, `failed` or `cancelled`).
    pub fn is_terminal(&self) -> bool {
        TERMINAL_STATES.contains(&self.state.as_str())
    }
}

/// How an atomic migration ended.
#[derive(Debug, Clone)]
pub struct AtomicMigration {
    /// First and last slot.
    pub slots: (u16, u16),
    /// Source address.
    pub source: String,
    /// Target address.
    pub target: String,
    /// The job's name.
    pub job: String,
    /// The final state: `success`, `failed` or `cancelled`.
    pub state: String,
    /// The server's message (empty on success).
    pub message: String,
    /// States seen, in order, without repeats.
    pub states: Vec<String>,
    /// From `MIGRATESLOTS` to the terminal state.
    pub duration: Duration,
}

/// Parses a `CLUSTER GETSLOTMIGRATIONS` reply (RESP2 flat arrays or RESP3 maps).
pub fn parse_slot_migrations(reply: &Value) -> Result<Vec<SlotMigrationJob>, String> {
    let Value::Array(jobs) = reply else {
        return Err(format!("expected an array, got {reply:?}"));
    };
    jobs.iter().map(parse_job).collect()
}

fn parse_job(job: &Value) -> Result<SlotMigrationJob, String> {
    let pairs: Vec<(&Value, &Value)> = match job {
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(flat) if flat.len() % 2 == 0 => {
            flat.chunks(2).map(|kv| (&kv[0], &kv[1])).collect()
        }
        other => return Err(format!("expected a map of fields, got {other:?}")),
    };
    let mut out = SlotMigrationJob::default();
    for (k, v) in pairs {
        let value = text(v);
        match text(k).as_str() {
            "name" => out.name = value,
            "operation" => out.operation = value,
            "slot_ranges" => out.slot_ranges = parse_ranges(&value)?,
            "source_node" => out.source_node = value,
            "target_node" => out.target_node = value,
            "state" => out.state = value,
            "message" => out.message = value,
            "remaining_repl_size" => out.remaining_repl_size = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    if out.name.is_empty() || out.state.is_empty() {
        return Err(format!("job without name or state: {job:?}"));
    }
    Ok(out)
}

/// Any scalar reply as text (`Nil` as empty).
fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        _ => String::new(),
    }
}

/// `"0-10 20-20"` (or comma-separated) into inclusive ranges.
fn parse_ranges(s: &str) -> Result<Vec<(u16, u16)>, String> {
    s.split([' ', ','])
        .filter(|r| !r.is_empty())
        .map(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            match (a.parse(), b.parse()) {
                (Ok(a), Ok(b)) => Ok((a, b)),
                _ => Err(format!("bad slot range {r:?}")),
            }
        })
        .collect()
}

/// Maps "unknown subcommand" (Redis 7.0) to `Unsupported`, anything else to a step error.
fn classify(addr: &str, what: &'static str, slot: u16, e: HarnessError) -> MigrateError {
    let detail = e.to_string();
    if detail.to_ascii_lowercase().contains("unknown subcommand") {
        MigrateError::Unsupported {
            addr: addr.to_string(),
            what,
            detail,
        }
    } else {
        MigrateError::Step {
            slot,
            step: what,
            source: e,
        }
    }
}

/// Every job `addr` lists in `CLUSTER GETSLOTMIGRATIONS`.
pub async fn slot_migrations(addr: &str) -> Result<Vec<SlotMigrationJob>, MigrateError> {
    let mut admin = Admin::connect(addr)
        .await
        .map_err(|e| classify(addr, "connect", 0, e))?;
    jobs_of(&mut admin, 0).await
}

async fn jobs_of(admin: &mut Admin, slot: u16) -> Result<Vec<SlotMigrationJob>, MigrateError> {
    let what = "CLUSTER GETSLOTMIGRATIONS";
    let reply: Value = admin
        .run(&["CLUSTER", "GETSLOTMIGRATIONS"])
        .await
        .map_err(|e| classify(admin.addr(), what, slot, e))?;
    parse_slot_migrations(&reply).map_err(|detail| MigrateError::Reply {
        addr: admin.addr().to_string(),
        command: what,
        detail,
    })
}

/// Moves slots `start..=end` from `source` to `target` atomically and waits for the job to end.
///
/// Records `migrate-start` (`mode: "atomic"`), `migrate-step`/`atomic-started` (with the job
/// name), `migrate-step`/`atomic-progress` on every state change and every
/// `progress_every_ms` (state, `remaining_repl_size`, `keys_on_target` for small ranges), and
/// `migrate-end` with phase `atomic-done`, `atomic-cancelled` or `atomic-failed`. A job that ends
/// `cancelled` or `failed` is an `Ok` result (check `state`); errors are for commands that fail.
pub async fn migrate_atomic(
    recorder: &Recorder,
    start: u16,
    end: u16,
    source: &Peer,
    target: &Peer,
    opts: &AtomicOptions,
) -> Result<AtomicMigration, MigrateError> {
    assert!(start <= end, "slot range {start}-{end} is reversed");
    let mut watch = Watch::connect(recorder, (start, end), source, target).await?;
    watch.request().await?;
    watch.wait(opts).await
}

/// One atomic migration and what has been seen of it: its two nodes, its events, its job (once
/// the source lists it) and the states the job went through.
struct Watch<'a> {
    slots: (u16, u16),
    source: &'a Peer,
    target: &'a Peer,
    src: Admin,
    dst: Admin,
    notes: Notes,
    /// `[start, end]`, as every event carries it.
    range: serde_json::Value,
    /// Jobs the source listed before ours, so an old job with the same slots is not taken for it.
    known: Vec<String>,
    job_name: Option<String>,
    states: Vec<String>,
    last_progress: Instant,
    began: Instant,
}

impl<'a> Watch<'a> {
    /// Connects to both nodes and notes the jobs the source already lists.
    async fn connect(
        recorder: &Recorder,
        slots: (u16, u16),
        source: &'a Peer,
        target: &'a Peer,
    ) -> Result<Watch<'a>, MigrateError> {
        let began = Instant::now();
        let slot = slots.0;
        let mut src = Admin::connect(&source.addr)
            .await
            .map_err(|e| classify(&source.addr, "connect", slot, e))?;
        let dst = Admin::connect(&target.addr)
            .await
            .map_err(|e| classify(&target.addr, "connect", slot, e))?;
        let known = jobs_of(&mut src, slot).await?;
        Ok(Watch {
            slots,
            source,
            target,
            src,
            dst,
            notes: Notes::new(recorder, slot, &source.addr, &target.addr),
            range: json!([slots.0, slots.1]),
            known: known.into_iter().map(|j| j.name).collect(),
            job_name: None,
            states: Vec::new(),
            last_progress: Instant::now(),
            began,
        })
    }

    /// Records `migrate-start` and sends `CLUSTER MIGRATESLOTS` to the source.
    async fn request(&mut self) -> Result<(), MigrateError> {
        let range = &self.range;
        let note = json!({"mode": "atomic", "slots": range});
        self.notes.note("migrate-start", "stable", note);
        let (s, e) = (self.slots.0.to_string(), self.slots.1.to_string());
        let id = &self.target.id;
        let cmd = ["CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", &s, &e, "NODE", id];
        if let Err(err) = self.src.run::<()>(&cmd).await {
            let what = "CLUSTER MIGRATESLOTS";
            return Err(self.failed(classify(&self.source.addr, what, self.slots.0, err)));
        }
        Ok(())
    }

    /// Records `migrate-end` with phase `atomic-failed` and returns `err`.
    fn failed(&self, err: MigrateError) -> MigrateError {
        let note = json!({"mode": "atomic", "slots": self.range, "error": err.to_string()});
        self.notes.note("migrate-end", "atomic-failed", note);
        err
    }

    /// Polls the source until the job ends or the deadline passes.
    async fn wait(mut self, opts: &AtomicOptions) -> Result<AtomicMigration, MigrateError> {
        let deadline = self.began + Duration::from_millis(opts.timeout_ms);
        self.last_progress = Instant::now();
        loop {
            if let Some(job) = self.find().await? {
                self.progress(&job, opts).await;
                if job.is_terminal() {
                    return Ok(self.finish(job).await);
                }
            }
            if Instant::now() >= deadline {
                let (start, end) = self.slots;
                let err = MigrateError::Timeout {
                    waiting_for: format!("atomic migration of slots {start}-{end} to end"),
                    elapsed_ms: self.began.elapsed().as_millis() as u64,
                    last_seen: format!("job {:?}, states {:?}", self.job_name, self.states),
                };
                return Err(self.failed(err));
            }
            tokio::time::sleep(Duration::from_millis(opts.poll_ms)).await;
        }
    }

    /// Our job as the source lists it now: the one found before, or a new export of our slots to
    /// our target (recorded as `atomic-started`).
    async fn find(&mut self) -> Result<Option<SlotMigrationJob>, MigrateError> {
        let jobs = jobs_of(&mut self.src, self.slots.0).await?;
        let job = jobs.into_iter().find(|j| match &self.job_name {
            Some(name) => &j.name == name,
            None => {
                !self.known.contains(&j.name)
                    && j.operation.eq_ignore_ascii_case("export")
                    && j.target_node == self.target.id
                    && j.slot_ranges.contains(&self.slots)
            }
        });
        if let Some(job) = job.as_ref().filter(|_| self.job_name.is_none()) {
            self.notes.note(
                "migrate-step",
                "atomic-started",
                json!({"mode": "atomic", "slots": self.range, "job": job.name, "node": self.source.addr}),
            );
            self.job_name = Some(job.name.clone());
        }
        Ok(job)
    }

    /// Records `atomic-progress` when the job's state changed or `progress_every_ms` passed.
    async fn progress(&mut self, job: &SlotMigrationJob, opts: &AtomicOptions) {
        let changed = self.states.last() != Some(&job.state);
        let due = self.last_progress.elapsed().as_millis() as u64 >= opts.progress_every_ms;
        if !changed && !due {
            return;
        }
        if changed {
            self.states.push(job.state.clone());
        }
        let keys_on_target = keys_on(&mut self.dst, self.slots.0, self.slots.1).await;
        self.notes.note(
            "migrate-step",
            "atomic-progress",
            json!({
                "mode": "atomic", "slots": self.range, "job": job.name, "state": job.state,
                "remaining_repl_size": job.remaining_repl_size,
                "keys_on_target": keys_on_target,
            }),
        );
        self.last_progress = Instant::now();
    }

    /// Records `migrate-end` for a job that ended and says how it ended.
    async fn finish(mut self, job: SlotMigrationJob) -> AtomicMigration {
        let phase = match job.state.as_str() {
            "success" => "atomic-done",
            "cancelled" => "atomic-cancelled",
            _ => "atomic-failed",
        };
        let duration = self.began.elapsed();
        self.notes.note(
            "migrate-end",
            phase,
            json!({
                "mode": "atomic", "slots": self.range, "job": job.name, "state": job.state,
                "message": job.message, "duration_ms": duration.as_millis() as u64,
                "keys_on_target": keys_on(&mut self.dst, self.slots.0, self.slots.1).await,
            }),
        );
        AtomicMigration {
            slots: self.slots,
            source: self.source.addr.clone(),
            target: self.target.addr.clone(),
            job: job.name,
            state: job.state,
            message: job.message,
            states: self.states,
            duration,
        }
    }
}

/// Keys of `start..=end` on the node behind `admin`, for progress events; `None` for wide ranges
/// or on error.
async fn keys_on(admin: &mut Admin, start: u16, end: u16) -> Option<u64> {
    if u32::from(end) - u32::from(start) + 1 > COUNTED_SLOTS_MAX {
        return None;
    }
    let mut total = 0u64;
    for slot in start..=end {
        let n: u64 = admin
            .query(redis::cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(slot))
            .await
            .ok()?;
        total += n;
    }
    Some(total)
}

/// Cancels every atomic migration `source` is exporting (`CLUSTER CANCELSLOTMIGRATIONS`), recorded
/// as `migrate-cancel` with `phase: "requested"`; returns false if none was running.
pub async fn cancel_atomic(recorder: &Recorder, source: &Peer) -> Result<bool, MigrateError> {
    let what = "CLUSTER CANCELSLOTMIGRATIONS";
    let mut admin = Admin::connect(&source.addr)
        .await
        .map_err(|e| classify(&source.addr, "connect", 0, e))?;
    let result = admin.run::<()>(&["CLUSTER", "CANCELSLOTMIGRATIONS"]).await;
    let cancelled = match result {
        Ok(()) => true,
        Err(e) if e.to_string().contains("No migrations ongoing") => false,
        Err(e) => return Err(classify(&source.addr, what, 0, e)),
    };
    recorder.nemesis(
        "migrate-cancel",
        json!({"node": source.addr, "phase": "requested", "cancelled": cancelled}),
    );
    Ok(cancelled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn a_resp2_reply_parses_into_jobs() {
        let fields = [
            ("name", "87307afe"),
            ("operation", "EXPORT"),
            ("slot_ranges", "3300-3300 10-12"),
            ("target_node", "b3bf"),
            ("source_node", "4a7e"),
            ("create_time", "1795691930"),
            ("state", "snapshotting"),
            ("message", ""),
            ("remaining_repl_size", "42"),
        ];
        let flat = fields
            .iter()
            .flat_map(|(k, v)| [bulk(k), bulk(v)])
            .collect();
        let jobs = parse_slot_migrations(&Value::Array(vec![Value::Array(flat)])).unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].name, "87307afe");
        assert_eq!(jobs[0].slot_ranges, vec![(3300, 3300), (10, 12)]);
        assert_eq!(jobs[0].remaining_repl_size, 42);
        assert!(!jobs[0].is_terminal());
        assert!(parse_slot_migrations(&Value::Array(vec![]))
            .unwrap()
            .is_empty());
        assert!(parse_slot_migrations(&Value::Int(3)).is_err());
    }
}
