//! The PikiwiDB nemesis: the servers, the slot table it flips, and the history it writes. Each
//! step is written (if a recorder is given) as two nemesis events, `phase` `begin` and `end`, with
//! `f` = `pika-migrate-sync`, `pika-migrate-async`, `pika-cancel`, `pika-reload`, `kill` or
//! `restart`, as `nemesis::process` writes its verbs; the `end` carries `outcome` (`done`,
//! `stuck`, `failed`) and, when stuck, `stuck_command`, `remaining` and `elapsed_ms`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use workloads::codis::SharedCodisTable;
use workloads::Recorder;

use super::error::PikaError;
use super::link::Link;
use super::server::PikaCluster;
use super::step::{MigrateOptions, Outcome, Step, Stuck};

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

    pub(crate) fn table_begin(&self, slot: u16, to: &str) {
        self.table
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .begin_migration(slot, to);
    }

    pub(crate) fn table_finish(&self, slot: u16) {
        self.table
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .finish_migration(slot);
    }
}

/// Whether an admin command timed out (the server may be wedged) rather than failed.
pub(crate) fn timed_out(e: &PikaError) -> bool {
    matches!(
        e,
        PikaError::Command {
            timed_out: true,
            ..
        }
    )
}
