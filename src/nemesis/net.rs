//! Network partitions on loopback: `partition` / `heal`, recorded, over the harness's iptables
//! chain (`harness::net`).
//!
//! Needs a cluster started with `ClusterSpec::distinct_hosts` (see `harness::net` for why). A
//! `Partitioner` owns one chain; dropping it removes every rule it made.
//!
//! ```no_run
//! # fn demo(ctx: &slotcheck::nemesis::Ctx) -> Result<(), slotcheck::nemesis::error::NemesisError> {
//! use slotcheck::nemesis::net::{Partition, Partitioner};
//! let net = Partitioner::new()?;
//! let node = ctx.cluster.nodes[0].addr.clone();
//! net.partition(ctx, Partition::Isolate { node, one_way: false })?;
//! net.heal(ctx)?;
//! # Ok(()) }
//! ```

use std::sync::Mutex;

use serde_json::json;

use super::error::NemesisError;
use super::Ctx;
use crate::harness::net::Chain;
/// The shapes of a partition and whether this machine can make them, re-exported for the run and
/// the command line, which ask the nemesis whether it can partition.
pub use crate::harness::net::{available, cleanup_stale, Partition};
use crate::harness::remote::{Remote, RemoteChains};
use crate::harness::{HarnessError, Node};
use std::sync::Arc;

/// Where a partitioner's rules go: this machine's loopback chain, or a chain on every remote host.
#[derive(Debug)]
enum Cut {
    /// Loopback, one chain of ours here.
    Local(Chain),
    /// One chain of ours on every host, over SSH.
    Remote(RemoteChains),
}

impl Cut {
    /// Cuts as `p` says.
    fn cut(&self, nodes: &[Node], p: &Partition) -> Result<(), HarnessError> {
        match self {
            Cut::Local(chain) => chain.cut(nodes, p),
            Cut::Remote(chains) => chains.cut(nodes, p),
        }
    }

    /// Removes every cut in force.
    fn flush(&self) -> Result<(), HarnessError> {
        match self {
            Cut::Local(chain) => chain.flush(),
            Cut::Remote(chains) => chains.flush(),
        }
    }
}

/// Makes and heals partitions through its own iptables chain; dropping it removes every rule it made.
#[derive(Debug)]
pub struct Partitioner {
    chain: Cut,
    /// The partitions in force, as recorded, for the `heal` event.
    active: Mutex<Vec<serde_json::Value>>,
}

impl Partitioner {
    /// Checks `available`, removes stale chains of dead runs, and creates and hooks our chain.
    pub fn new() -> Result<Partitioner, NemesisError> {
        Ok(Partitioner {
            chain: Cut::Local(Chain::new()?),
            active: Mutex::new(Vec::new()),
        })
    }

    /// A partitioner whose rules go into a chain of ours on every host of `remote` (over SSH),
    /// Jepsen style; dropping it removes them from every host.
    pub fn on_hosts(remote: Arc<Remote>) -> Result<Partitioner, NemesisError> {
        Ok(Partitioner {
            chain: Cut::Remote(RemoteChains::new(remote)?),
            active: Mutex::new(Vec::new()),
        })
    }

    /// The name of our iptables chain.
    pub fn chain(&self) -> &str {
        match &self.chain {
            Cut::Local(chain) => chain.name(),
            Cut::Remote(chains) => chains.name(),
        }
    }

    /// Cuts the network as `p` says, in addition to partitions already in force; all rules of one
    /// partition go in at once, so no half-made partition is seen.
    /// Recorded as `partition` with the shape's own fields (`kind`, `node` or `a`/`b`, `one_way`)
    /// plus `isolated` (the node or nodes cut off) and `from` (what they are cut off from: node
    /// addresses, or `clients`), spelled out for every shape.
    pub fn partition(&self, ctx: &Ctx, p: Partition) -> Result<(), NemesisError> {
        let mut value = serde_json::to_value(&p).expect("a partition serializes");
        let (isolated, from) = p.sides(&ctx.cluster.nodes);
        value["isolated"] = json!(isolated);
        value["from"] = json!(from);
        ctx.begin("partition", value.clone());
        let result = self.chain.cut(&ctx.cluster.nodes, &p);
        let error = result.as_ref().err().map(ToString::to_string);
        ctx.end("partition", value.clone(), error.as_deref());
        if result.is_ok() {
            lock(&self.active).push(value);
        }
        Ok(result?)
    }

    /// Removes every partition in force (flushes our chain); the chain stays, ready for the next.
    pub fn heal(&self, ctx: &Ctx) -> Result<(), NemesisError> {
        let value = json!({ "partitions": lock(&self.active).clone() });
        ctx.begin("heal", value.clone());
        let result = self.chain.flush();
        let error = result.as_ref().err().map(ToString::to_string);
        ctx.end("heal", value, error.as_deref());
        if result.is_ok() {
            lock(&self.active).clear();
        }
        Ok(result?)
    }
}

/// Locks `m`, also after a panic elsewhere poisoned it (the list stays usable).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
