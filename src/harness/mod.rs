//! Local clusters of real servers: find a binary, start N masters with R replicas each on 127.0.0.1,
//! wait until they agree, and stop every process when done (also on panic). The harness also owns
//! what faults are made with, for the nemesis to drive: the fault proxy in front of each node
//! ([`proxy`]) and the network cut with iptables ([`net`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), slotcheck::harness::HarnessError> {
//! use slotcheck::harness::{Cluster, ClusterSpec, ServerKind};
//! let dir = std::env::temp_dir().join("slotcheck-demo");
//! let cluster = Cluster::start(ClusterSpec::new(ServerKind::Redis, 3, 1, dir)).await?;
//! eprintln!("{} {} up in {:?}: {:?}", cluster.kind, cluster.version, cluster.bring_up, cluster.seeds());
//! cluster.wait_stable(5_000).await?;
//! drop(cluster); // stops every server
//! # Ok(()) }
//! ```

pub(crate) mod admin;
mod attach;
mod bring_up;
mod cluster;
mod config;
mod control;
mod error;
mod family;
mod health;
pub mod net;
mod ports;
pub(crate) mod process;
pub mod proxy;
pub mod remote;
mod server;
mod state;
mod view;

pub use admin::Admin;
pub use attach::form_on_hosts;
pub use cluster::Persistence;
pub use cluster::{Cluster, ClusterSpec, Node, Role, NODE_TIMEOUT_MS_DEFAULT};
pub use control::ProcessState;
pub use error::HarnessError;
pub use family::ServerFamily;
pub use process::pid_alive;
pub use server::{find_cli, find_server, ServerBinary, ServerKind};
pub use state::{ClusterState, DetachedNode};
pub use view::{parse_nodes, NodeLine, SLOT_COUNT};
