//! Server-side bug injection, a test aid: the fault proxy in front of a node misbehaves on
//! purpose, as a broken server would, so that a run shows whether slotcheck notices
//! (`slotcheck test --server-bug NAME`). Off by default.
//!
//! With a bug on, the proxy relays RESP one request at a time per connection (read one command,
//! forward it, read its reply, answer), so replies stay in order under pipelining; each eligible
//! request (`SET`, `GET`, or the register's CAS script `EVAL`, not right after `ASKING` or
//! `READONLY`) is hit with a seeded probability `p`:
//!
//! | bug | what the proxy does | what the checker reports |
//! |---|---|---|
//! | `lost-write` | answers `+OK` to a `SET` without forwarding it | `lost-write` |
//! | `stale-read` | answers a `GET` with the value the key had [`STALE_WRITES`] writes (through this proxy) ago | `stale-read` |
//! | `duplicate-write` | forwards a `SET`, and sends it again right after the next write of the key passed | `lost-write` (the later write is overwritten by the old value) |
//! | `moved-after-apply` | forwards a write, drops the reply and answers `MOVED` to another node; resends of that write get `MOVED` too, so the client gives up and records `fail` | `redirect-after-apply` |

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// How many writes older than the latest a `stale-read` answer is.
pub const STALE_WRITES: usize = 2;
/// Values kept per key for `stale-read`.
const HISTORY_MAX: usize = 8;
/// Least age of the write that superseded a stale value, so that the client saw it acknowledged
/// before it sent the read the stale value answers.
const STALE_AGE_MS: u64 = 50;
/// The probability with which an eligible request is hit, unless set otherwise.
pub const P_DEFAULT: f64 = 0.03;

/// One injected server bug (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerBug {
    /// Acknowledges a `SET` without forwarding it.
    LostWrite,
    /// Answers a `GET` from an old value of the key.
    StaleRead,
    /// Applies a `SET` a second time after a later write of the key.
    DuplicateWrite,
    /// Applies a write, then answers `MOVED`.
    MovedAfterApply,
}

impl ServerBug {
    /// Every bug, in a fixed order.
    pub const ALL: [ServerBug; 4] = [
        ServerBug::LostWrite,
        ServerBug::StaleRead,
        ServerBug::DuplicateWrite,
        ServerBug::MovedAfterApply,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            ServerBug::LostWrite => "lost-write",
            ServerBug::StaleRead => "stale-read",
            ServerBug::DuplicateWrite => "duplicate-write",
            ServerBug::MovedAfterApply => "moved-after-apply",
        }
    }

    /// One line on what the server does wrong.
    pub fn description(self) -> &'static str {
        match self {
            ServerBug::LostWrite => "acknowledges a SET with +OK without applying it",
            ServerBug::StaleRead => "answers a GET with the value the key had two writes ago",
            ServerBug::DuplicateWrite => {
                "applies a SET again after the next write of the key: an old value comes back"
            }
            ServerBug::MovedAfterApply => {
                "applies a write, then answers MOVED (and MOVED to every resend of it)"
            }
        }
    }

    /// The anomaly class the checker reports when this bug is on.
    pub fn expected(self) -> &'static str {
        match self {
            ServerBug::LostWrite | ServerBug::DuplicateWrite => "lost-write",
            ServerBug::StaleRead => "stale-read",
            ServerBug::MovedAfterApply => "redirect-after-apply",
        }
    }
}

impl fmt::Display for ServerBug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ServerBug {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServerBug::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ServerBug::ALL.iter().map(|b| b.name()).collect();
                format!("unknown server bug {s:?}; one of: {}", names.join(", "))
            })
    }
}

/// A bug in force on one proxy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BugConfig {
    /// Which bug.
    pub bug: ServerBug,
    /// Probability that an eligible request is hit.
    pub p: f64,
    /// Seeds which requests are hit (with the connection's number).
    pub seed: u64,
    /// Other nodes' announced addresses, where `moved-after-apply` sends the client.
    pub peers: Vec<String>,
}

impl BugConfig {
    /// The draws of connection `conn`: its own ChaCha8 stream under the seed.
    pub(super) fn rng(&self, conn: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x05e1_7b06);
        rng.set_stream(conn);
        rng
    }

    /// Whether the next eligible request is hit.
    pub(super) fn draw(&self, rng: &mut ChaCha8Rng) -> bool {
        self.p > 0.0 && rng.random_bool(self.p.min(1.0))
    }
}

/// A request the bugs know, from its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Request {
    /// `GET key`.
    Read { key: Vec<u8> },
    /// `SET key value`.
    Write { key: Vec<u8>, value: Vec<u8> },
    /// `EVAL script 1 key ... new`: the register's compare-and-set, whose last argument is the
    /// value it writes.
    Cas { key: Vec<u8>, value: Vec<u8> },
    /// `ASKING` or `READONLY`: a prefix for the next request.
    Prefix,
    /// The replication handshake: the connection turns into a plain byte relay.
    Replication,
    /// Anything else, relayed as it is.
    Other,
}

impl Request {
    /// Sorts a command by its arguments.
    pub(super) fn of(args: &[Vec<u8>]) -> Request {
        let name = args
            .first()
            .map(|a| a.to_ascii_uppercase())
            .unwrap_or_default();
        match (name.as_slice(), args.len()) {
            (b"GET", 2) => Request::Read {
                key: args[1].clone(),
            },
            (b"SET", 3) => Request::Write {
                key: args[1].clone(),
                value: args[2].clone(),
            },
            (b"EVAL", n) if n >= 5 && args[2] == b"1" => Request::Cas {
                key: args[3].clone(),
                value: args[n - 1].clone(),
            },
            (b"ASKING" | b"READONLY", _) => Request::Prefix,
            (b"REPLCONF" | b"PSYNC" | b"SYNC", _) => Request::Replication,
            _ => Request::Other,
        }
    }

    /// The key of a read or write.
    pub(super) fn key(&self) -> Option<&[u8]> {
        match self {
            Request::Read { key } | Request::Write { key, .. } | Request::Cas { key, .. } => {
                Some(key)
            }
            _ => None,
        }
    }
}

/// What one proxy remembers across its connections for its bug.
#[derive(Debug, Default)]
pub(super) struct BugState {
    /// Per key, the last values written through this proxy and when their write was answered.
    history: HashMap<Vec<u8>, VecDeque<(Vec<u8>, Instant)>>,
    /// Per key, a `SET` to send again once another write of the key has passed.
    duplicate: HashMap<Vec<u8>, Vec<u8>>,
    /// Per key, the write answered with `MOVED` after it was applied: its resends get `MOVED`.
    moved: HashMap<Vec<u8>, Vec<u8>>,
}

impl BugState {
    /// Notes that a write of `value` to `key` was applied.
    pub(super) fn written(&mut self, key: &[u8], value: &[u8]) {
        let values = self.history.entry(key.to_vec()).or_default();
        values.push_back((value.to_vec(), Instant::now()));
        if values.len() > HISTORY_MAX {
            values.pop_front();
        }
    }

    /// The value `key` had [`STALE_WRITES`] writes ago, if the write after it was answered long
    /// enough ago.
    pub(super) fn stale(&self, key: &[u8]) -> Option<Vec<u8>> {
        let values = self.history.get(key)?;
        let at = values.len().checked_sub(STALE_WRITES + 1)?;
        let (_, superseded_at) = &values[at + 1];
        (superseded_at.elapsed() >= Duration::from_millis(STALE_AGE_MS))
            .then(|| values[at].0.clone())
    }

    /// Remembers `frame` to send again after the next write of `key` (one per key at a time).
    pub(super) fn duplicate_later(&mut self, key: &[u8], frame: &[u8]) {
        self.duplicate
            .entry(key.to_vec())
            .or_insert_with(|| frame.to_vec());
    }

    /// The `SET` to send again now that `frame`, another write of `key`, passed.
    pub(super) fn take_duplicate(&mut self, key: &[u8], frame: &[u8]) -> Option<Vec<u8>> {
        match self.duplicate.get(key) {
            Some(pending) if pending != frame => self.duplicate.remove(key),
            _ => None,
        }
    }

    /// Remembers that `frame` was answered `MOVED` after it was applied.
    pub(super) fn moved(&mut self, key: &[u8], frame: &[u8]) {
        self.moved.insert(key.to_vec(), frame.to_vec());
    }

    /// Whether `frame` resends a write answered `MOVED` after it was applied.
    pub(super) fn is_moved_resend(&self, key: &[u8], frame: &[u8]) -> bool {
        self.moved.get(key).is_some_and(|f| f == frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn names_parse_back_and_requests_are_sorted() {
        for b in ServerBug::ALL {
            assert_eq!(b.name().parse::<ServerBug>(), Ok(b));
        }
        assert!("nope".parse::<ServerBug>().is_err());
        let key = b"k".to_vec();
        assert_eq!(
            Request::of(&args(&["get", "k"])),
            Request::Read { key: key.clone() }
        );
        assert_eq!(
            Request::of(&args(&["EVAL", "script", "1", "k", "3", "4"])),
            Request::Cas {
                key,
                value: b"4".to_vec()
            }
        );
        assert_eq!(Request::of(&args(&["ASKING"])), Request::Prefix);
        assert_eq!(
            Request::of(&args(&["PSYNC", "?", "-1"])),
            Request::Replication
        );
        assert_eq!(Request::of(&args(&["SET", "k", "1", "NX"])), Request::Other);
    }

    #[test]
    fn stale_values_are_two_writes_old_and_duplicates_wait_for_another_write() {
        let mut s = BugState::default();
        s.written(b"k", b"1");
        s.written(b"k", b"2");
        assert_eq!(s.stale(b"k"), None, "only two values");
        s.written(b"k", b"3");
        std::thread::sleep(Duration::from_millis(STALE_AGE_MS + 5));
        assert_eq!(s.stale(b"k"), Some(b"1".to_vec()));
        s.duplicate_later(b"k", b"SET k 1");
        assert_eq!(s.take_duplicate(b"k", b"SET k 1"), None, "the same write");
        assert_eq!(
            s.take_duplicate(b"k", b"SET k 2"),
            Some(b"SET k 1".to_vec())
        );
        assert_eq!(s.take_duplicate(b"k", b"SET k 3"), None, "sent once");
        s.moved(b"k", b"SET k 4");
        assert!(s.is_moved_resend(b"k", b"SET k 4") && !s.is_moved_resend(b"k", b"SET k 5"));
    }

    #[test]
    fn draws_follow_the_seed_and_p() {
        let cfg = BugConfig {
            bug: ServerBug::LostWrite,
            p: 0.05,
            seed: 3,
            peers: vec![],
        };
        let hits = |conn| {
            let mut rng = cfg.rng(conn);
            (0..10_000).filter(|_| cfg.draw(&mut rng)).count()
        };
        assert_eq!(hits(1), hits(1));
        assert!((350..=650).contains(&hits(1)), "{}", hits(1));
    }
}
