//! What every check takes and how it can fail to run: [`CheckOptions`] (the model's starting
//! point and the search's budget per key) and [`CheckError`] (a history that could not be
//! checked, as opposed to one checked and found invalid).

use crate::model::register::{parse_value, Register};
use crate::op::OpError;
use crate::search::Budget;
use serde_json::Value;
use std::time::Duration;

/// Settings for a check: the model's starting point and the search's budget per key.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOptions {
    /// The value before any op: for registers an integer, or `null` for absent (the default);
    /// a string for kv, an array for set and list-append, an integer for counters.
    pub initial: Value,
    /// Search steps per key before the key's verdict is `Unknown`.
    pub steps_max_per_key: u64,
    /// Wall time per key before `Unknown`; `None` (the default) keeps verdicts deterministic.
    pub time_limit_per_key_ms: Option<u64>,
    /// Memory per key for the search's cache, in MiB, before `Unknown`; used when
    /// `cache_bytes_available` is `None`.
    pub cache_mb_max_per_key: u64,
    /// Memory the searches' caches may share, in bytes (the binary passes `MemAvailable` of
    /// `/proc/meminfo`): each key then gets its share by its number of ops, at least 64 MiB
    /// ([`Budget::for_key`]). `None` (the default) keeps the fixed `cache_mb_max_per_key`.
    pub cache_bytes_available: Option<u64>,
    /// Registers: an `ok` read of `null` read nothing (Knossos) rather than an absent key.
    pub null_read_is_unknown: bool,
    /// Registers: a `fail` cas proves the value differed from its expected one (Porcupine's
    /// etcd model) rather than only that the cas did not apply.
    pub failed_cas_is_read: bool,
    /// Search every partition plainly, as Porcupine does: no fast paths, no pruning (see
    /// [`Budget::plain`]). Same verdicts, slower: the baseline of the corpus benchmark.
    pub plain_search: bool,
    /// What the Elle-style analysis may assume of each register key to infer its version order
    /// (Elle's `sequential-keys?`, `linearizable-keys?`, `wfr-keys?`); none by default.
    pub assumptions: Assumptions,
}

/// Guarantees a workload gives each key, from which the rw-register analysis infers version
/// orders beyond the initial state (Elle's options of the same names). Each is a claim about
/// the system under test: a finding that rests on one says so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Assumptions {
    /// `sequential-keys`: each key is sequentially consistent, so a process's successive
    /// transactions see or make versions in order.
    pub sequential_keys: bool,
    /// `linearizable-keys`: each key is linearizable, so a transaction that completed before
    /// another began saw or made an earlier version.
    pub linearizable_keys: bool,
    /// `wfr-keys`: within a transaction writes follow reads, so the value it read of a key
    /// precedes the value it then wrote there.
    pub wfr_keys: bool,
}

impl Assumptions {
    /// All three: what `slotcheck test --workload rw-register` assumes of a Redis cluster.
    pub const ALL: Assumptions = Assumptions {
        sequential_keys: true,
        linearizable_keys: true,
        wfr_keys: true,
    };

    /// The names of the assumptions made, Elle's way (`wfr-keys`, `sequential-keys`, ...).
    pub fn names(&self) -> Vec<&'static str> {
        let all = [
            (self.wfr_keys, "wfr-keys"),
            (self.sequential_keys, "sequential-keys"),
            (self.linearizable_keys, "linearizable-keys"),
        ];
        all.into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| n)
            .collect()
    }

    /// Both sets of assumptions together.
    pub fn union(self, other: Assumptions) -> Assumptions {
        Assumptions {
            sequential_keys: self.sequential_keys || other.sequential_keys,
            linearizable_keys: self.linearizable_keys || other.linearizable_keys,
            wfr_keys: self.wfr_keys || other.wfr_keys,
        }
    }
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            initial: Value::Null,
            steps_max_per_key: 10_000_000,
            time_limit_per_key_ms: None,
            cache_mb_max_per_key: 1024,
            cache_bytes_available: None,
            null_read_is_unknown: false,
            failed_cas_is_read: false,
            plain_search: false,
            assumptions: Assumptions::default(),
        }
    }
}

impl CheckOptions {
    /// The search budget for one key.
    pub(crate) fn budget(&self) -> Budget {
        Budget {
            steps_max: self.steps_max_per_key,
            time_limit: self.time_limit_per_key_ms.map(Duration::from_millis),
            cache_bytes_max: usize::try_from(self.cache_mb_max_per_key.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
            cache_bytes_available: self
                .cache_bytes_available
                .map(|b| usize::try_from(b).unwrap_or(usize::MAX)),
            plain: self.plain_search,
        }
    }

    /// The register model these options describe.
    pub(crate) fn register(&self) -> Result<Register, CheckError> {
        let initial = parse_value(&self.initial).map_err(|message| CheckError::Option {
            option: "initial",
            message,
        })?;
        Ok(Register {
            initial,
            failed_cas_is_read: self.failed_cas_is_read,
            null_read_is_unknown: self.null_read_is_unknown,
        })
    }
}

/// Why a history could not be checked (as opposed to checked and found invalid).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The events break the format's pairing rules.
    #[error(transparent)]
    Op(#[from] OpError),
    /// An op's field does not fit the model (missing key, unknown `f`, malformed value).
    #[error(
        "line {line} (event {event}): field `{field}`: {}",
        crate::echo::Message(message)
    )]
    Field {
        /// Position in `History::events`.
        event: usize,
        /// 1-based line number in the file.
        line: usize,
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A check option is unusable.
    #[error("option `{option}`: {}", crate::echo::Message(message))]
    Option {
        /// The option's name.
        option: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

// In this module, not `model`'s: the error type lives here, and `model` stays below `options`.
impl crate::model::FieldError {
    /// The error naming the event and line the field is on: the completion's (`complete`, when
    /// the op has one) or the invocation's (`invoke`); each as (event, line).
    pub fn at(self, invoke: (usize, usize), complete: Option<(usize, usize)>) -> CheckError {
        let (event, line) = match (self.on_completion, complete) {
            (true, Some(c)) => c,
            _ => invoke,
        };
        CheckError::Field {
            event,
            line,
            field: self.field,
            message: self.message,
        }
    }
}
