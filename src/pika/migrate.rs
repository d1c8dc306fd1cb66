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

use std::time::{Duration, Instant};

use serde_json::json;

use super::error::PikaError;
use super::link::Link;
use super::nemesis::{timed_out, PikaNemesis};
use super::step::{Outcome, Step, Stuck};

impl PikaNemesis {
    /// A migration's start: its `begin` event, the slot opened in the table (routers cross it
    /// from now on), the clock, and a link to the source.
    fn begin(
        &self,
        f: &'static str,
        words: &[&str],
        slot: u16,
        from: &str,
        to: &str,
    ) -> (Step, Instant, Link) {
        let step = self.open(f, &words.join(" "), Some(slot), Some(from), Some(to));
        self.table_begin(slot, to);
        (step, Instant::now(), self.link(from))
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
        let (step, started, mut src) = self.begin("pika-migrate-sync", &words, slot, from, to);
        let mut p = Progress::default();
        match self
            .sync_rounds(slot, &words, started, &mut src, &mut p)
            .await
        {
            Ok(()) => {
                self.table_finish(slot);
                self.close(
                    step,
                    Outcome::Done {
                        keys_moved: p.moved,
                    },
                    json!({"calls": p.calls, "table": "flipped"}),
                )
            }
            Err(stuck) => self.close(
                step,
                Outcome::Stuck(stuck),
                json!({"calls": p.calls, "moved_so_far": p.moved, "table": "open"}),
            ),
        }
    }

    /// Calls `SLOTSMGRTTAGSLOT` (`words`) until the slot is empty, keeping count in `p`; the
    /// [`Stuck`] when the deadline passes, the calls keep failing or one never answers.
    async fn sync_rounds(
        &self,
        slot: u16,
        words: &[&str],
        started: Instant,
        src: &mut Link,
        p: &mut Progress,
    ) -> Result<(), Stuck> {
        let mut failing = Failing::default();
        loop {
            if started.elapsed() >= self.options.deadline {
                let command = "SLOTSMGRTTAGSLOT (deadline)";
                return Err(stuck(
                    slot,
                    command,
                    p.remaining,
                    started,
                    p.last_error.take(),
                ));
            }
            p.calls += 1;
            let result = src.run::<(i64, i64)>(words).await;
            if failing.update(&result, self.options.failing_max) {
                let command = "SLOTSMGRTTAGSLOT (failing)";
                return Err(stuck(
                    slot,
                    command,
                    p.remaining,
                    started,
                    p.last_error.take(),
                ));
            }
            match result {
                Ok((n, left)) => {
                    p.moved += n.max(0) as u64;
                    p.remaining = Some(left);
                    if left <= 0 {
                        match slot_size(src, slot).await {
                            Ok(0) => return Ok(()),
                            Ok(n) => p.remaining = Some(n),
                            Err(e) => p.last_error = Some(e.to_string()),
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
                    return Err(Stuck {
                        slot: Some(slot),
                        command: words.join(" "),
                        remaining: p.remaining,
                        elapsed: started.elapsed(),
                        last_error: Some(format!("no answer after {elapsed_ms} ms: {detail}")),
                    });
                }
                Err(e) => p.last_error = Some(e.to_string()),
            }
            tokio::time::sleep(self.options.poll).await;
        }
    }

    /// Migrates `slot` with `SLOTSMGRTTAGSLOT-ASYNC`: each call asks pika's migrate thread for one
    /// more round of `keys_per_round` keys; `SLOTSMGRT-ASYNC-STATUS` is polled between calls.
    /// Done when the source's `SLOTSINFO` shows the slot empty and the thread stopped; then flips.
    pub async fn migrate_async(&self, slot: u16, from: &str, to: &str) -> Step {
        let owned = self.async_words(slot, to);
        let words = owned.each_ref().map(String::as_str);
        let (step, started, mut src) = self.begin("pika-migrate-async", &words, slot, from, to);
        let mut p = Progress::default();
        let result = self
            .async_rounds(slot, &words, started, &mut src, &mut p)
            .await;
        let moved = p.before.unwrap_or(0).max(0) as u64;
        match result {
            Ok(()) => {
                self.table_finish(slot);
                self.close(
                    step,
                    Outcome::Done { keys_moved: moved },
                    json!({"calls": p.calls, "table": "flipped"}),
                )
            }
            Err((command, last_error)) => {
                let s = stuck(slot, &command, p.remaining, started, last_error);
                self.close(
                    step,
                    Outcome::Stuck(s),
                    json!({"calls": p.calls, "table": "open"}),
                )
            }
        }
    }

    /// `SLOTSMGRTTAGSLOT-ASYNC host port timeout maxbulks maxbytes slot numkeys` towards `to`,
    /// with this nemesis's options.
    pub(crate) fn async_words(&self, slot: u16, to: &str) -> [String; 8] {
        let o = &self.options;
        let (host, port) = split(to);
        [
            "SLOTSMGRTTAGSLOT-ASYNC".to_string(),
            host.to_string(),
            port.to_string(),
            o.pika_timeout_ms.to_string(),
            o.max_bulks.to_string(),
            o.max_bytes.to_string(),
            slot.to_string(),
            o.keys_per_round.to_string(),
        ]
    }

    /// Calls `SLOTSMGRTTAGSLOT-ASYNC` (`words`) and polls the migrate thread until the slot is
    /// empty, keeping count in `p`; the command that stuck and the last error otherwise.
    async fn async_rounds(
        &self,
        slot: u16,
        words: &[&str],
        started: Instant,
        src: &mut Link,
        p: &mut Progress,
    ) -> Result<(), (String, Option<String>)> {
        let o = &self.options;
        let mut failing = Failing::default();
        loop {
            if started.elapsed() >= o.deadline {
                return Err((
                    "SLOTSMGRTTAGSLOT-ASYNC (deadline)".into(),
                    p.last_error.take(),
                ));
            }
            p.calls += 1;
            let result = src.run::<(i64, i64)>(words).await;
            if failing.update(&result, o.failing_max) {
                let error = result.err().map(|e| e.to_string()).or(p.last_error.take());
                return Err(("SLOTSMGRTTAGSLOT-ASYNC (failing)".into(), error));
            }
            match result {
                Ok((_, left)) => {
                    p.before.get_or_insert(left);
                    p.remaining = Some(left);
                }
                Err(e) => {
                    if timed_out(&e) {
                        return Err((words.join(" "), Some(e.to_string())));
                    }
                    p.last_error = Some(e.to_string());
                }
            }
            let status = match async_status(src).await {
                Ok(s) => s,
                Err(e) if timed_out(&e) => {
                    return Err(("SLOTSMGRT-ASYNC-STATUS".into(), Some(e.to_string())))
                }
                Err(e) => {
                    // Refused or reset (the source is down): try again until the deadline.
                    p.last_error = Some(e.to_string());
                    tokio::time::sleep(o.poll).await;
                    continue;
                }
            };
            if !status.migrating {
                match slot_size(src, slot).await {
                    Ok(0) => return Ok(()),
                    Ok(n) => {
                        p.remaining = Some(n);
                        p.last_error = Some(format!(
                            "migrate thread not running with {n} keys in the slot index"
                        ));
                    }
                    Err(e) if timed_out(&e) => {
                        return Err((format!("SLOTSINFO {slot} 1"), Some(e.to_string())))
                    }
                    Err(e) => p.last_error = Some(e.to_string()),
                }
            } else if status.remaining >= 0 {
                p.remaining = Some(status.remaining);
            }
            tokio::time::sleep(o.poll).await;
        }
    }
}

/// How far a migration got: keys moved (sync) or in the slot at the first round (async), keys
/// left, the last error and the calls made.
#[derive(Debug, Default)]
struct Progress {
    moved: u64,
    before: Option<i64>,
    remaining: Option<i64>,
    last_error: Option<String>,
    calls: u64,
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

/// Since when every call of a migration's command has failed (it fails the same way forever when
/// pika cannot move a key, e.g. `ERR ParseKey failed` for a list RPOPLPUSH made).
#[derive(Debug, Default)]
struct Failing(Option<Instant>);

impl Failing {
    /// Notes a call's result; `true` once calls have failed without a success for `max`.
    fn update<T>(&mut self, result: &Result<T, PikaError>, max: Duration) -> bool {
        match result {
            Ok(_) => {
                self.0 = None;
                false
            }
            Err(_) => self.0.get_or_insert_with(Instant::now).elapsed() >= max,
        }
    }
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
