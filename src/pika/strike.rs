//! Process faults in the middle of a pika migration: SIGKILL the source or the target after a
//! delay while the migration runs, and optionally start it again, all recorded as `kill` /
//! `restart` nemesis events beside the migration's own; or, [`PikaNemesis::strike_on_delete`],
//! kill the source the moment it starts deleting keys the target acknowledged.

use std::time::{Duration, Instant};

use serde_json::json;

use super::link::Link;
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

    /// Migrates `slot` from `from` to `to` asynchronously and SIGKILLs the source as soon as its
    /// slot index shrinks (looked at back to back, at most `wait_max`): the migrator has then
    /// started deleting a batch the target acknowledged, key by key, each by removing it from
    /// the slot index first and deleting it second. A kill between the two leaves the key on the
    /// source outside its index, so the migration, resumed after the restart (`restart_after`
    /// later), never moves nor deletes it: it stays on both servers. The kill lands there only
    /// now and then, so the source is struck again in the resumed migration, up to `strikes`
    /// times while its slot still holds keys. Returns the kills and restarts, and the migration
    /// (one step, resumed until done or its deadline).
    pub async fn strike_on_delete(
        &self,
        slot: u16,
        (from, to): (&str, &str),
        strikes: usize,
        (wait_max, restart_after): (Duration, Duration),
    ) -> Vec<Step> {
        let mut watch = self.link(from);
        let mut before = slot_size(&mut watch, slot).await.unwrap_or(0);
        let faults = async {
            let mut steps = Vec::new();
            for _ in 0..strikes {
                if before <= 0 {
                    break;
                }
                steps.push(
                    self.kill_on_delete(&mut watch, slot, before, wait_max)
                        .await,
                );
                tokio::time::sleep(restart_after).await;
                steps.push(self.restart(from).await);
                watch = self.link(from);
                before = slot_size(&mut watch, slot).await.unwrap_or(0);
            }
            steps
        };
        let (migration, mut steps) = tokio::join!(self.migrate_async(slot, from, to), faults);
        steps.push(migration);
        steps
    }

    /// SIGKILLs the server behind `watch` once `slot`'s index there holds fewer than `before`
    /// keys (or `wait_max` passed); the kill's step says what was seen.
    async fn kill_on_delete(
        &self,
        watch: &mut Link,
        slot: u16,
        before: i64,
        wait_max: Duration,
    ) -> Step {
        let addr = watch.addr().to_string();
        let step = self.open("kill", "SIGKILL", None, Some(&addr), None);
        let pid = self.cluster.pid(&addr);
        // Watched from a thread of its own, which signals the moment it sees the first delete:
        // through the runtime the kill came too late to land inside a batch's deletes.
        let (watched, signalled) = (addr.clone(), pid);
        let seen = tokio::task::spawn_blocking(move || {
            kill_when_shrunk(&watched, signalled, slot, before, wait_max)
        })
        .await;
        let (left, waited) = match seen {
            Ok(Some(seen)) => seen,
            // The fast watch could not talk to the server: the runtime's, then the signal.
            _ => shrunk(watch, slot, before, wait_max).await,
        };
        // Reaps the process (and records it gone); the signal again is harmless.
        let killed = ServerFamily::kill(&*self.cluster, &addr).await;
        let seen = json!({"pid": pid, "slot": slot, "slot_keys_before": before,
                          "slot_keys_at_kill": left, "waited_ms": waited.as_millis() as u64});
        match killed {
            Ok(()) => self.close(step, Outcome::Done { keys_moved: 0 }, seen),
            Err(e) => self.close(step, Outcome::Failed(e.to_string()), seen),
        }
    }
}

/// Asks `addr` for `slot`'s index size (`SLOTSINFO slot 1`) back to back on a blocking socket,
/// and SIGKILLs `pid` once it is below `before` or `wait_max` passed; what it held then and how
/// long that took, or `None` if the server could not be asked.
fn kill_when_shrunk(
    addr: &str,
    pid: Option<u32>,
    slot: u16,
    before: i64,
    wait_max: Duration,
) -> Option<(i64, Duration)> {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(wait_max)).ok()?;
    stream.set_nodelay(true).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let s = slot.to_string();
    let request = format!(
        "*3\r\n$9\r\nSLOTSINFO\r\n${}\r\n{s}\r\n$1\r\n1\r\n",
        s.len()
    );
    let started = Instant::now();
    let mut line = String::new();
    loop {
        (&stream).write_all(request.as_bytes()).ok()?;
        // `*0` (empty slot) or `*1`, `*2`, `:slot`, `:size`.
        let mut held = 0;
        line.clear();
        reader.read_line(&mut line).ok()?;
        if line.starts_with("*1") {
            for _ in 0..3 {
                line.clear();
                reader.read_line(&mut line).ok()?;
            }
            held = line.trim().trim_start_matches(':').parse().ok()?;
        }
        if held < before || started.elapsed() >= wait_max {
            if let Some(pid) = pid {
                crate::harness::process::send_signal(pid, libc::SIGKILL);
            }
            return Some((held, started.elapsed()));
        }
    }
}

/// Waits until `slot`'s index on the server behind `link` holds fewer than `before` keys, at most
/// `wait_max`; what it held then and how long that took.
async fn shrunk(link: &mut Link, slot: u16, before: i64, wait_max: Duration) -> (i64, Duration) {
    let started = Instant::now();
    loop {
        match slot_size(link, slot).await {
            Ok(held) if held < before => return (held, started.elapsed()),
            Ok(_) => {}
            // Not answering: do not spin on it.
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
        if started.elapsed() >= wait_max {
            return (before, started.elapsed());
        }
    }
}
