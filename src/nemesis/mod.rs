//! The nemesis: slot migrations and faults on a seeded schedule, all recorded.
//!
//! Every action is a verb with a named inverse (`kill`/`restart`, `pause`/`resume`,
//! `partition`/`heal`, `migrate`/`abort`), written to the history as `process: "nemesis"`
//! events with what it targeted and when it began and ended, so that the checker can attribute
//! an anomaly to the phase its slot was in. [`schedule`] plans a run from its seed;
//! [`runner`] carries the plan out and heals everything at the end. [`family`]'s [`Nemesis`] is
//! the one interface the run pipeline drives any server family's nemesis through
//! ([`ClusterNemesis`] here, PikiwiDB's in the `pika` module).
//!
//! The verbs: [`migrate`] (one file per kind of slot migration, and `repair`), [`process`]
//! (`kill`/`restart`, `pause`/`resume`), [`failover`], [`net`] (`partition`/`heal`) and [`link`]
//! (`slow`/`fast`). What they act through (processes, iptables, the fault proxies) is the
//! harness's; the nemesis only decides and records.

pub mod error;
pub mod failover;
pub mod family;
pub mod link;
pub mod migrate;
pub mod net;
pub mod plan;
pub mod process;
pub mod runner;
pub mod schedule;

pub use family::{ClusterNemesis, Nemesis};

use crate::harness::Cluster;
/// How often a verb that waits for the cluster (a failover agreed, an open slot closed, a source
/// emptied) looks at it again.
pub(crate) const POLL_MS: u64 = 20;

use std::sync::Arc;
use workloads::Recorder;

/// What every nemesis verb needs: the cluster it acts on and the history it writes to.
#[derive(Clone)]
pub struct Ctx {
    /// The cluster under test, shared with the run (which stops it at the end).
    pub cluster: Arc<Cluster>,
    /// Where every action is recorded as `process: "nemesis"` events.
    pub recorder: Recorder,
}

impl Ctx {
    /// Records that action `f` began (`phase: "begin"`) with its target in `value`.
    pub fn begin(&self, f: &str, mut value: serde_json::Value) {
        value["phase"] = serde_json::json!("begin");
        self.recorder.nemesis(f, value);
    }

    /// Records that action `f` ended (`phase: "end"`), with `error` if it failed.
    pub fn end(&self, f: &str, mut value: serde_json::Value, error: Option<&str>) {
        value["phase"] = serde_json::json!("end");
        if let Some(e) = error {
            value["error"] = serde_json::json!(e);
        }
        self.recorder.nemesis(f, value);
    }
}
