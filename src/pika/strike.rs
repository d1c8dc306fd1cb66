//! Process faults in the middle of a pika migration: SIGKILL the source or the target after a
//! delay while the migration runs, and optionally start it again, all recorded as `kill` /
//! `restart` nemesis events beside the migration's own; or, [`PikaNemesis::strike_in_window`],
//! kill as soon as the target holds the slot's first keys, while the source still holds them too.

use std::time::{Duration, Instant};

use serde_json::json;

use super::migrate::slot_size;
use super::nemesis::PikaNemesis;
use super::step::{Outcome, Step};
use crate::harness::ServerFamily;

/// Which end of the migration dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Victim {
    /// The server the slot leaves.
    Source,
    /// The server the slot goes to.
    Target,
}

/// Which migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `SLOTSMGRTTAGSLOT`, key by key.
    Sync,
    /// `SLOTSMGRTTAGSLOT-ASYNC`, by rounds on pika's migrate thread.
    Async,
}

/// A strike as it went: the migration, and the kill and restart that hit it.
#[derive(Debug, Clone)]
pub struct Strike {
    /// The migration step (stuck, most likely, with the target dead).
    pub migration: Step,
    /// The kill.
    pub kill: Step,
    /// The restart, when one was asked for.
    pub restart: Option<Step>,
}

impl PikaNemesis {
    /// SIGKILLs the server at `addr` (`f: "kill"`, with its `pid`).
    pub async fn kill(&self, addr: &str) -> Step {
        let step = self.open("kill", "SIGKILL", None, Some(addr), None);
        let pid = self.cluster.pid(addr);
        match ServerFamily::kill(&*self.cluster, addr).await {
            Ok(()) => self.close(step, Outcome::Done { keys_moved: 0 }, json!({"pid": pid})),
            Err(e) => self.close(step, Outcome::Failed(e.to_string()), json!({})),
        }
    }

    /// Starts the server at `addr` again, same port and data (`f: "restart"`, with the new `pid`).
    pub async fn restart(&self, addr: &str) -> Step {
        let step = self.open("restart", "start", None, Some(addr), None);
        match ServerFamily::restart(&*self.cluster, addr).await {
            Ok(pid) => self.close(step, Outcome::Done { keys_moved: 0 }, json!({"pid": pid})),
            Err(e) => self.close(step, Outcome::Failed(e.to_string()), json!({})),
        }
    }

    /// Migrates `slot` from `from` to `to` by `mode` and, `after` its start, kills the `victim`;
    /// with `restart_after`, starts it again that long after the kill (while the migration may
    /// still be retrying). Returns when both are done; the migration is bounded by its deadline.
    pub async fn strike(
        &self,
        slot: u16,
        (from, to): (&str, &str),
        mode: Mode,
        victim: Victim,
        after: Duration,
        restart_after: Option<Duration>,
    ) -> Strike {
        let victim_addr = match victim {
            Victim::Source => from,
            Victim::Target => to,
        };
        let migration = async {
            match mode {
                Mode::Sync => self.migrate_sync(slot, from, to).await,
                Mode::Async => self.migrate_async(slot, from, to).await,
            }
        };
        let fault = async {
            tokio::time::sleep(after).await;
            let kill = self.kill(victim_addr).await;
            let restart = match restart_after {
                Some(pause) => {
                    tokio::time::sleep(pause).await;
                    Some(self.restart(victim_addr).await)
                }
                None => None,
            };
            (kill, restart)
        };
        let (migration, (kill, restart)) = tokio::join!(migration, fault);
        Strike {
            migration,
            kill,
            restart,
        }
    }

    /// Starts an async migration of `slot` from `from` to `to`, and SIGKILLs the `victim` as soon
    /// as the target holds any of the slot's keys (looked at every [`ARRIVAL_POLL`], at most
    /// `wait_max`): pika deletes a batch from the source only once the target acknowledged all
    /// of it, so the keys the target holds then are on both servers. Restarts the victim
    /// `restart_after` later and leaves the migration open, not resumed: pika keeps a migration
    /// in memory only, so a restarted source neither resumes nor rolls it back, and the copies
    /// stay on both servers until someone issues the migration again. Returns the kill, the
    /// migration (`failed`, abandoned, with `target_keys_at_kill`) and the restart.
    pub async fn strike_in_window(
        &self,
        slot: u16,
        (from, to): (&str, &str),
        victim: Victim,
        wait_max: Duration,
        restart_after: Duration,
    ) -> Vec<Step> {
        let words = self.async_words(slot, to);
        let step = self.open(
            "pika-migrate-async",
            &words.join(" "),
            Some(slot),
            Some(from),
            Some(to),
        );
        self.table_begin(slot, to);
        if let Err(e) = self
            .link(from)
            .run::<(i64, i64)>(&words.each_ref().map(String::as_str))
            .await
        {
            let extra = json!({"calls": 1, "table": "open"});
            return vec![self.close(step, Outcome::Failed(e.to_string()), extra)];
        }
        let (arrived, waited) = self.first_arrival(slot, to, wait_max).await;
        let victim_addr = match victim {
            Victim::Source => from,
            Victim::Target => to,
        };
        let kill = self.kill(victim_addr).await;
        tokio::time::sleep(restart_after).await;
        let restart = self.restart(victim_addr).await;
        let why = format!(
            "abandoned: the {} was killed {} ms after the start with {arrived} of the slot's keys \
             on the target; left open, not resumed",
            victim.name(),
            waited.as_millis()
        );
        let extra = json!({"calls": 1, "table": "open", "target_keys_at_kill": arrived,
                           "kill_after_ms": waited.as_millis() as u64});
        let migration = self.close(step, Outcome::Failed(why), extra);
        vec![kill, migration, restart]
    }

    /// Waits until `to` holds any of `slot`'s keys, at most `wait_max`; how many it held then
    /// (0 if none arrived in time) and how long that took.
    async fn first_arrival(&self, slot: u16, to: &str, wait_max: Duration) -> (i64, Duration) {
        let started = Instant::now();
        let mut target = self.link(to);
        loop {
            let held = slot_size(&mut target, slot).await.unwrap_or(0);
            if held > 0 || started.elapsed() >= wait_max {
                return (held, started.elapsed());
            }
            tokio::time::sleep(ARRIVAL_POLL).await;
        }
    }
}

/// How often [`PikaNemesis::strike_in_window`] looks at the target's slot.
const ARRIVAL_POLL: Duration = Duration::from_millis(1);

impl Victim {
    /// `source` or `target`.
    pub fn name(self) -> &'static str {
        match self {
            Victim::Source => "source",
            Victim::Target => "target",
        }
    }
}
