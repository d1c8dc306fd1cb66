//! Servers on other machines, controlled as Jepsen controls its nodes: over SSH (OpenSSH, one
//! reused connection per host), with the hosts' own `kill`, `systemctl` and `iptables`. No agent
//! of ours runs on a host.
//!
//! [`HostsFile`] is `--hosts FILE`; [`Remote`] holds the connections and carries out the process
//! verbs; [`RemoteChains`] makes partitions on the hosts. A [`super::Cluster`] made by
//! [`super::Cluster::attach`] with a `Remote` runs its process verbs through it.

mod control;
mod hosts;
mod net;
mod ssh;

pub use control::Remote;
pub use hosts::{HostSpec, HostsFile, SshSpec};
pub use net::{remove_stale_chains, RemoteChains};
pub use ssh::{quote, Ssh};
