//! Process faults in the middle of a pika migration: SIGKILL the source or the target after a
//! delay while the migration runs, and optionally start it again, all recorded as `kill` /
//! `restart` nemesis events beside the migration's own.

use std::time::Duration;

use serde_json::json;

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
}
