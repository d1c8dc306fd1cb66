//! Counts a report holds: ops by outcome, redirect hops by kind, acknowledged writes by class,
//! and the one-line rendering of any counts by name.

use crate::history::RedirectKind;
use crate::op::Outcome;
use serde::Serialize;
use std::fmt;

/// How many ops ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    /// Certainly happened.
    pub ok: u64,
    /// Certainly did not happen.
    pub fail: u64,
    /// Unknown (including never completed).
    pub info: u64,
}

impl OutcomeCounts {
    /// Counts one more op that ended with `outcome`.
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Info => self.info += 1,
        }
    }

    /// All ops counted.
    pub fn total(&self) -> u64 {
        self.ok + self.fail + self.info
    }
}

impl fmt::Display for OutcomeCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (ok {}, fail {}, info {})",
            self.total(),
            self.ok,
            self.fail,
            self.info
        )
    }
}

/// How many redirect hops of each kind the clients followed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RedirectCounts {
    /// `-MOVED` hops.
    pub moved: u64,
    /// `-ASK` hops.
    pub ask: u64,
    /// `-TRYAGAIN` retries.
    pub tryagain: u64,
    /// `-CLUSTERDOWN` retries.
    pub clusterdown: u64,
    /// Codis `SLOTSMGRTTAGONE` steps (written only when a Codis router ran).
    #[serde(rename = "mgrt-one", skip_serializing_if = "is_zero")]
    pub mgrt_one: u64,
    /// Codis exec-wrapper answers of 0 (go to the target).
    #[serde(rename = "wrapper-moved", skip_serializing_if = "is_zero")]
    pub wrapper_moved: u64,
    /// Codis exec-wrapper answers of 1 (being migrated: wait, ask again).
    #[serde(rename = "wrapper-retry", skip_serializing_if = "is_zero")]
    pub wrapper_retry: u64,
    /// Codis exec-wrapper answers of -1 (the op failed).
    #[serde(rename = "wrapper-error", skip_serializing_if = "is_zero")]
    pub wrapper_error: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl RedirectCounts {
    /// Counts one more hop of `kind`.
    pub fn add(&mut self, kind: RedirectKind) {
        *self.count_mut(kind) += 1;
    }

    /// The hops of `kind`.
    pub fn get(&self, kind: RedirectKind) -> u64 {
        match kind {
            RedirectKind::Moved => self.moved,
            RedirectKind::Ask => self.ask,
            RedirectKind::TryAgain => self.tryagain,
            RedirectKind::ClusterDown => self.clusterdown,
            RedirectKind::MgrtOne => self.mgrt_one,
            RedirectKind::WrapperMoved => self.wrapper_moved,
            RedirectKind::WrapperRetry => self.wrapper_retry,
            RedirectKind::WrapperError => self.wrapper_error,
        }
    }

    fn count_mut(&mut self, kind: RedirectKind) -> &mut u64 {
        match kind {
            RedirectKind::Moved => &mut self.moved,
            RedirectKind::Ask => &mut self.ask,
            RedirectKind::TryAgain => &mut self.tryagain,
            RedirectKind::ClusterDown => &mut self.clusterdown,
            RedirectKind::MgrtOne => &mut self.mgrt_one,
            RedirectKind::WrapperMoved => &mut self.wrapper_moved,
            RedirectKind::WrapperRetry => &mut self.wrapper_retry,
            RedirectKind::WrapperError => &mut self.wrapper_error,
        }
    }

    /// Hops of every kind.
    pub fn total(&self) -> u64 {
        RedirectKind::ALL.iter().map(|&k| self.get(k)).sum()
    }
}

/// `moved 1, ask 2, tryagain 0, clusterdown 0`, then the Codis kinds that are not zero
/// (`, wrapper-retry 3`), so Redis Cluster runs read as before.
impl fmt::Display for RedirectCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "moved {}, ask {}, tryagain {}, clusterdown {}",
            self.moved, self.ask, self.tryagain, self.clusterdown
        )?;
        for kind in RedirectKind::ALL.into_iter().filter(|k| k.is_codis()) {
            if self.get(kind) > 0 {
                write!(f, ", {} {}", kind.name(), self.get(kind))?;
            }
        }
        Ok(())
    }
}

/// Adds and appends by Jepsen's set-full outcome (`jepsen.checker/set-full`), with its latencies.
/// `stable`, `lost` and `never_read` partition `attempts`; `stale` counts stable ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LostWriteCounts {
    /// Adds or appends invoked, whatever their outcome (Jepsen's `:attempt-count`).
    pub attempts: u64,
    /// Present in the last read to hold or miss it: some time after which every read that
    /// began holds it.
    pub stable: u64,
    /// Known (acknowledged, or seen by a read), then missed by a read that began after it was
    /// known and after the last read that held it.
    pub lost: u64,
    /// Stable, but a read that began after it was known missed it (Jepsen's `:stale`).
    pub stale: u64,
    /// Neither stable nor lost: no read that began after it was known decides it.
    pub never_read: u64,
    /// Outcome `info`, yet some read holds it.
    pub recovered: u64,
    /// Set elements some single read holds more than once (Jepsen's `:duplicated-count`).
    pub duplicated: u64,
    /// Stable latencies (from known to the invocation of the last read that missed it, 0 if none
    /// did or it began earlier),
    /// in the history's time unit (ns; event positions for imported formats).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_latencies: Option<Latencies>,
    /// Lost latencies (from known to the invocation of the last read that held it), same unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_latencies: Option<Latencies>,
}

/// Jepsen's latency distribution: the values at quantiles 0, 0.5, 0.95, 0.99 and 1 (the value
/// at index `min(n - 1, floor(n * q))` of the sorted latencies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Latencies {
    /// The smallest.
    pub p0: u64,
    /// The median.
    pub p50: u64,
    /// The 95th percentile.
    pub p95: u64,
    /// The 99th percentile.
    pub p99: u64,
    /// The largest.
    pub p100: u64,
}

impl Latencies {
    /// The distribution of `values`, or `None` when there are none.
    pub fn of(mut values: Vec<u64>) -> Option<Latencies> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let n = values.len();
        let at = |q: f64| values[((n as f64 * q).floor() as usize).min(n - 1)];
        Some(Latencies {
            p0: at(0.0),
            p50: at(0.5),
            p95: at(0.95),
            p99: at(0.99),
            p100: at(1.0),
        })
    }
}

/// Counts by name as one line, `lost-write 2, stale-read 1`, or `none`.
pub fn counts_text<K: fmt::Display, N: fmt::Display>(
    counts: impl IntoIterator<Item = (K, N)>,
) -> String {
    let parts: Vec<String> = counts
        .into_iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}
