//! Slot migration between pika servers, as Codis's dashboard drives it: open the migration in the
//! slot table, move the slot's keys with pika's commands until the source's slot index is empty,
//! confirm with `SLOTSINFO`, then flip the owner. Every admin command is bounded; a migration that
//! does not finish by its deadline, or a command pika never answers (after
//! `SLOTSMGRT-ASYNC-CANCEL` a new async migration, and with it the status command, can hang), ends
//! as [`Outcome::Stuck`] naming the step, never as a hang.
//!
//! A stuck migration leaves the table's migration **open**: some keys may already be on the
//! target and the rest on the source, and only an open migration routes to both (the router
//! migrates a key before touching it). Abandoning it would send every key back to the source and
//! hide the moved ones; the caller may still call `abandon_migration` deliberately.
//!
//! Each step is written to the history (if a recorder is given) as two nemesis events, `phase`
//! `begin` and `end`, with `f` = `pika-migrate-sync`, `pika-migrate-async`, `pika-cancel`,
//! `pika-reload`, `kill` or `restart`, as `nemesis::process` writes its verbs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use workloads::codis::SharedCodisTable;
use workloads::Recorder;

use super::error::PikaError;
use super::link::Link;
use super::server::PikaCluster;

/// Bounds and batch sizes of a migration.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// The whole migration of one slot must end by then, or it is reported stuck.
    pub deadline: Duration,
    /// How long we wait for any one admin command.
    pub command_timeout: Duration,
    /// pika's own timeout (ms) for talking to the target, the `timeout` argument.
    pub pika_timeout_ms: u64,
    /// `maxbulks` and `maxbytes` of `SLOTSMGRTTAGSLOT-ASYNC`.
    pub max_bulks: u64,
    /// See `max_bulks`.
    pub max_bytes: u64,
    /// `numkeys`: keys per async round.
    pub keys_per_round: u64,
    /// Pause between polls of a migration in progress.
    pub poll: Duration,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            deadline: Duration::from_secs(60),
            command_timeout: Duration::from_secs(5),
            pika_timeout_ms: 3000,
            max_bulks: 200,
            max_bytes: 32 << 20,
            keys_per_round: 500,
            poll: Duration::from_millis(5),
        }
    }
}

/// Why a step did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    /// The slot (when the step concerns one).
    pub slot: Option<u16>,
    /// The command that did not answer, or the step that did not finish.
    pub command: String,
    /// Keys the source's slot index still held, when known.
    pub remaining: Option<i64>,
    /// How long the step had run.
    pub elapsed: Duration,
    /// The last error seen, if any.
    pub last_error: Option<String>,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; for a migration, the slot was flipped and `keys_moved` left the source's index.
    Done {
        /// Keys moved (migrations), else 0.
        keys_moved: u64,
    },
    /// Did not finish by its deadline, or a command never answered.
    Stuck(Stuck),
    /// Failed at once with an error (a refused command, a server that did not come back).
    Failed(String),
}

/// One nemesis step, as it went: what the run writes to its history.
#[derive(Debug, Clone)]
pub struct Step {
    /// The verb (`pika-migrate-sync`, `pika-migrate-async`, `pika-cancel`, `pika-reload`, `kill`, `restart`).
    pub f: &'static str,
    /// The server command(s) it used.
    pub command: String,
    /// The slot, for migrations.
    pub slot: Option<u16>,
    /// The source (or the node acted on).
    pub from: Option<String>,
    /// The target, for migrations.
    pub to: Option<String>,
    /// Start, in history time (ns since the recorder's start; since the nemesis's without one).
    pub start_ns: u64,
    /// End, in the same clock.
    pub end_ns: u64,
    /// How it ended.
    pub outcome: Outcome,
}

impl Step {
    /// The step's target as a history `value` (without `phase`).
    pub fn value(&self) -> Value {
        let mut v = json!({"command": self.command});
        if let Some(s) = self.slot {
            v["slot"] = json!(s);
        }
        if let Some(f) = &self.from {
            v[if self.to.is_some() { "from" } else { "node" }] = json!(f);
        }
        if let Some(t) = &self.to {
            v["to"] = json!(t);
        }
        v
    }
}

/// The migration nemesis of a PikiwiDB run: the servers, the slot table it flips, the history.
pub struct PikaNemesis {
    /// The servers.
    pub cluster: Arc<PikaCluster>,
    /// The table routers read; flipped when a slot's source is empty.
    pub table: SharedCodisTable,
    /// Where steps are written as nemesis events, if anywhere.
    pub recorder: Option<Recorder>,
    /// Bounds and batch sizes.
    pub options: MigrateOptions,
    started: Instant,
}

impl PikaNemesis {
    /// A nemesis over `cluster` and `table`, writing to `recorder` if given.
    pub fn new(
        cluster: Arc<PikaCluster>,
        table: SharedCodisTable,
        recorder: Option<Recorder>,
    ) -> Self {
        PikaNemesis {
            cluster,
            table,
            recorder,
            options: MigrateOptions::default(),
            started: Instant::now(),
        }
    }

    fn now_ns(&self) -> u64 {
        match &self.recorder {
            Some(r) => r.now_ns(),
            None => self.started.elapsed().as_nanos() as u64,
        }
    }

    pub(crate) fn link(&self, addr: &str) -> Link {
        Link::new(addr, self.options.command_timeout)
    }

    /// Opens a step: records its `begin` event.
    pub(crate) fn open(
        &self,
        f: &'static str,
        command: &str,
        slot: Option<u16>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Step {
        let step = Step {
            f,
            command: command.to_string(),
            slot,
            from: from.map(str::to_string),
            to: to.map(str::to_string),
            start_ns: self.now_ns(),
            end_ns: 0,
            outcome: Outcome::Failed("not finished".into()),
        };
        if let Some(r) = &self.recorder {
            let mut v = step.value();
            v["phase"] = json!("begin");
            r.nemesis(f, v);
        }
        step
    }

    /// Closes a step: records its `end` event with the outcome and `extra` fields.
    pub(crate) fn close(&self, mut step: Step, outcome: Outcome, extra: Value) -> Step {
        step.end_ns = self.now_ns();
        step.outcome = outcome;
        if let Some(r) = &self.recorder {
            let mut v = step.value();
            v["phase"] = json!("end");
            v["duration_ms"] = json!((step.end_ns - step.start_ns) / 1_000_000);
            match &step.outcome {
                Outcome::Done { keys_moved } => {
                    v["outcome"] = json!("done");
                    v["keys_moved"] = json!(keys_moved);
                }
                Outcome::Stuck(s) => {
                    v["outcome"] = json!("stuck");
                    v["stuck_command"] = json!(s.command);
                    v["remaining"] = json!(s.remaining);
                    v["elapsed_ms"] = json!(s.elapsed.as_millis() as u64);
                    v["error"] = json!(s.last_error);
                }
                Outcome::Failed(e) => {
                    v["outcome"] = json!("failed");
                    v["error"] = json!(e);
                }
            }
            if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
                v.extend(extra);
            }
            r.nemesis(step.f, v);
        }
        step
    }

    /// Migrates `slot` from `from` to `to` with `SLOTSMGRTTAGSLOT` (one key, or one tag's keys,
    /// per call) until the source reports none remaining and `SLOTSINFO` shows the slot empty;
    /// then flips the slot. On the deadline or a command that never answers: [`Outcome::Stuck`],
    /// migration left open.
    pub async fn migrate_sync(&self, slot: u16, from: &str, to: &str) -> Step {
        let (host, port) = split(to);
        let timeout = self.options.pika_timeout_ms.to_string();
        let slot_s = slot.to_string();
        let words = ["SLOTSMGRTTAGSLOT", host, port, &timeout, &slot_s];
        let step = self.open(
            "pika-migrate-sync",
            &words.join(" "),
            Some(slot),
            Some(from),
            Some(to),
        );
        self.table_begin(slot, to);
        let started = Instant::now();
        let mut src = self.link(from);
        let mut moved = 0u64;
        let mut remaining = None;
        let mut last_error = None;
        let mut calls = 0u64;
        loop {
            if started.elapsed() >= self.options.deadline {
                let stuck = stuck(
                    slot,
                    "SLOTSMGRTTAGSLOT (deadline)",
                    remaining,
                    started,
                    last_error,
                );
                return self.close(
                    step,
                    Outcome::Stuck(stuck),
                    json!({"calls": calls, "moved_so_far": moved, "table": "open"}),
                );
            }
            calls += 1;
            match src.run::<(i64, i64)>(&words).await {
                Ok((n, left)) => {
                    moved += n.max(0) as u64;
                    remaining = Some(left);
                    if left <= 0 {
                        match slot_size(&mut src, slot).await {
                            Ok(0) => break,
                            Ok(n) => remaining = Some(n),
                            Err(e) => last_error = Some(e.to_string()),
                        }
                    } else if n > 0 {
                        continue;
                    }
                }
                Err(PikaError::Command {
                    timed_out: true,
                    elapsed_ms,
                    detail,
                    ..
                }) => {
                    let s = Stuck {
                        slot: Some(slot),
                        command: words.join(" "),
                        remaining,
                        elapsed: started.elapsed(),
                        last_error: Some(format!("no answer after {elapsed_ms} ms: {detail}")),
                    };
                    return self.close(
                        step,
                        Outcome::Stuck(s),
                        json!({"calls": calls, "moved_so_far": moved, "table": "open"}),
                    );
                }
                Err(e) => last_error = Some(e.to_string()),
            }
            tokio::time::sleep(self.options.poll).await;
        }
        self.table_finish(slot);
        self.close(
            step,
            Outcome::Done { keys_moved: moved },
            json!({"calls": calls, "table": "flipped"}),
        )
    }

    /// Migrates `slot` with `SLOTSMGRTTAGSLOT-ASYNC`: each call asks pika's migrate thread for one
    /// more round of `keys_per_round` keys; `SLOTSMGRT-ASYNC-STATUS` is polled between calls.
    /// Done when the source's `SLOTSINFO` shows the slot empty and the thread stopped; then flips.
    pub async fn migrate_async(&self, slot: u16, from: &str, to: &str) -> Step {
        let o = &self.options;
        let (host, port) = split(to);
        let args = [
            o.pika_timeout_ms,
            o.max_bulks,
            o.max_bytes,
            u64::from(slot),
            o.keys_per_round,
        ]
        .map(|n| n.to_string());
        let words = [
            "SLOTSMGRTTAGSLOT-ASYNC",
            host,
            port,
            &args[0],
            &args[1],
            &args[2],
            &args[3],
            &args[4],
        ];
        let step = self.open(
            "pika-migrate-async",
            &words.join(" "),
            Some(slot),
            Some(from),
            Some(to),
        );
        self.table_begin(slot, to);
        let started = Instant::now();
        let mut src = self.link(from);
        let mut before = None;
        let mut remaining = None;
        let mut last_error = None;
        let mut calls = 0u64;
        let result: Result<(), (String, Option<String>)> = loop {
            if started.elapsed() >= o.deadline {
                break Err(("SLOTSMGRTTAGSLOT-ASYNC (deadline)".into(), last_error));
            }
            calls += 1;
            match src.run::<(i64, i64)>(&words).await {
                Ok((_, left)) => {
                    before.get_or_insert(left);
                    remaining = Some(left);
                }
                Err(e) => {
                    if timed_out(&e) {
                        break Err((words.join(" "), Some(e.to_string())));
                    }
                    last_error = Some(e.to_string());
                }
            }
            let status = match async_status(&mut src).await {
                Ok(s) => s,
                Err(e) => break Err(("SLOTSMGRT-ASYNC-STATUS".into(), Some(e.to_string()))),
            };
            if !status.migrating {
                match slot_size(&mut src, slot).await {
                    Ok(0) => break Ok(()),
                    Ok(n) => remaining = Some(n),
                    Err(e) if timed_out(&e) => {
                        break Err((format!("SLOTSINFO {slot} 1"), Some(e.to_string())))
                    }
                    Err(e) => last_error = Some(e.to_string()),
                }
            } else if status.remaining >= 0 {
                remaining = Some(status.remaining);
            }
            tokio::time::sleep(o.poll).await;
        };
        let moved = before.unwrap_or(0).max(0) as u64;
        match result {
            Ok(()) => {
                self.table_finish(slot);
                self.close(
                    step,
                    Outcome::Done { keys_moved: moved },
                    json!({"calls": calls, "table": "flipped"}),
                )
            }
            Err((command, last_error)) => {
                let s = stuck(slot, &command, remaining, started, last_error);
                self.close(
                    step,
                    Outcome::Stuck(s),
                    json!({"calls": calls, "table": "open"}),
                )
            }
        }
    }

    /// `SLOTSMGRT-ASYNC-CANCEL` on `addr`: stops its async migrate thread.
    pub async fn cancel_async(&self, addr: &str) -> Step {
        self.simple("pika-cancel", addr, &["SLOTSMGRT-ASYNC-CANCEL"])
            .await
    }

    /// `SLOTSRELOAD` on `addr` (rebuild the slot index from every key), waiting until `INFO`
    /// says `is_slots_reloading:No` (bounded by the deadline).
    pub async fn slots_reload(&self, addr: &str) -> Step {
        let step = self.open("pika-reload", "SLOTSRELOAD", None, Some(addr), None);
        let started = Instant::now();
        let mut link = self.link(addr);
        if let Err(e) = link.run::<String>(&["SLOTSRELOAD"]).await {
            return self.close(step, Outcome::Failed(e.to_string()), json!({}));
        }
        loop {
            match link.run::<String>(&["INFO"]).await {
                Ok(info) if info.lines().any(|l| l.starts_with("is_slots_reloading:No")) => {
                    return self.close(step, Outcome::Done { keys_moved: 0 }, json!({}));
                }
                Ok(_) => {}
                Err(e) if timed_out(&e) => {
                    let s = Stuck {
                        slot: None,
                        command: "INFO".into(),
                        remaining: None,
                        elapsed: started.elapsed(),
                        last_error: Some(e.to_string()),
                    };
                    return self.close(step, Outcome::Stuck(s), json!({}));
                }
                Err(_) => {}
            }
            if started.elapsed() >= self.options.deadline {
                let s = Stuck {
                    slot: None,
                    command: "SLOTSRELOAD (deadline)".into(),
                    remaining: None,
                    elapsed: started.elapsed(),
                    last_error: None,
                };
                return self.close(step, Outcome::Stuck(s), json!({}));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn simple(&self, f: &'static str, addr: &str, words: &[&str]) -> Step {
        let step = self.open(f, &words.join(" "), None, Some(addr), None);
        let started = Instant::now();
        match self.link(addr).run::<String>(words).await {
            Ok(_) => self.close(step, Outcome::Done { keys_moved: 0 }, json!({})),
            Err(e) if timed_out(&e) => {
                let s = Stuck {
                    slot: None,
                    command: words.join(" "),
                    remaining: None,
                    elapsed: started.elapsed(),
                    last_error: Some(e.to_string()),
                };
                self.close(step, Outcome::Stuck(s), json!({}))
            }
            Err(e) => self.close(step, Outcome::Failed(e.to_string()), json!({})),
        }
    }

    fn table_begin(&self, slot: u16, to: &str) {
        self.table
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .begin_migration(slot, to);
    }

    fn table_finish(&self, slot: u16) {
        self.table
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .finish_migration(slot);
    }
}

/// What `SLOTSMGRT-ASYNC-STATUS` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncStatus {
    /// `migrating  : yes`.
    pub migrating: bool,
    /// `moved keys : N` (-1 when not migrating).
    pub moved: i64,
    /// `remain keys: N` (-1 when not migrating).
    pub remaining: i64,
}

/// Parses the five `name: value` lines of `SLOTSMGRT-ASYNC-STATUS`.
pub fn parse_async_status(lines: &[String]) -> Option<AsyncStatus> {
    let field = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(':').next())
            .map(|v| v.trim().to_string())
    };
    Some(AsyncStatus {
        migrating: field("migrating")? == "yes",
        moved: field("moved keys")?.parse().ok()?,
        remaining: field("remain keys")?.parse().ok()?,
    })
}

async fn async_status(link: &mut Link) -> Result<AsyncStatus, PikaError> {
    let lines: Vec<String> = link.run(&["SLOTSMGRT-ASYNC-STATUS"]).await?;
    parse_async_status(&lines).ok_or_else(|| PikaError::Reply {
        addr: link.addr().to_string(),
        command: "SLOTSMGRT-ASYNC-STATUS".into(),
        detail: format!("{lines:?}"),
    })
}

/// The size of `slot`'s key index on the server (`SLOTSINFO slot 1`: `[[slot, size]]`, or `[]`).
pub async fn slot_size(link: &mut Link, slot: u16) -> Result<i64, PikaError> {
    let s = slot.to_string();
    let rows: Vec<(i64, i64)> = link.run(&["SLOTSINFO", &s, "1"]).await?;
    Ok(rows
        .iter()
        .find(|(sl, _)| *sl == i64::from(slot))
        .map_or(0, |(_, n)| *n))
}

fn timed_out(e: &PikaError) -> bool {
    matches!(
        e,
        PikaError::Command {
            timed_out: true,
            ..
        }
    )
}

fn stuck(
    slot: u16,
    command: &str,
    remaining: Option<i64>,
    started: Instant,
    last_error: Option<String>,
) -> Stuck {
    Stuck {
        slot: Some(slot),
        command: command.to_string(),
        remaining,
        elapsed: started.elapsed(),
        last_error,
    }
}

/// `host:port` split; an address without a port gives an empty port (pika rejects it).
fn split(addr: &str) -> (&str, &str) {
    addr.rsplit_once(':').unwrap_or((addr, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn async_status_lines_parse() {
        let lines: Vec<String> = [
            "dest server: 127.0.0.1:10001",
            "slot number: 12",
            "migrating  : yes",
            "moved keys : 64",
            "remain keys: 136",
        ]
        .map(String::from)
        .to_vec();
        let s = parse_async_status(&lines).unwrap();
        assert_eq!(
            s,
            AsyncStatus {
                migrating: true,
                moved: 64,
                remaining: 136
            }
        );
        assert!(parse_async_status(&lines[..2]).is_none());
    }
}
