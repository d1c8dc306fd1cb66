//! One interface over the server families under test: Redis and Valkey (Redis Cluster protocol,
//! [`super::Cluster`]) and PikiwiDB (standalone servers behind slotcheck's Codis routing,
//! `PikaCluster` in the `pika` module): processes and routing. The run pipeline and the nemesis's
//! process faults speak only this; a family's migration verbs and placement check are the floor
//! above's (`nemesis::Nemesis`, `verify::Placement`), and the run pipeline ties the three
//! together per family (`run::family::Family`).

use std::future::Future;
use std::time::Duration;

use checker::SlotFunction;

use super::server::ServerKind;

/// The running servers of one family: what they are, where they are, how keys map to slots on
/// them, and the process verbs the faults use (in named pairs: `kill`/`restart`,
/// `shutdown`/`restart`, `pause`/`resume`).
pub trait ServerFamily: Send + Sync {
    /// Why a process verb failed (each family names its server and step).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Which family these servers are.
    fn kind(&self) -> ServerKind;
    /// The version the servers report, recorded in the history header.
    fn version(&self) -> &str;
    /// How long bring-up took (spawn to every server answering).
    fn bring_up(&self) -> Duration;
    /// Every server's address, in start order.
    fn addrs(&self) -> Vec<String>;
    /// The pid of the server at `addr` in its current life; `None` if no process runs.
    fn pid(&self, addr: &str) -> Option<u32>;
    /// How the family maps a key to its slot (the routing the workload and the checker share).
    fn slot_function(&self) -> &'static dyn SlotFunction;
    /// The addresses a router is seeded with (empty when routing comes from a table of ours).
    fn seeds(&self) -> Vec<String>;

    /// SIGKILLs the server at `addr` and reaps it: no save, no goodbye.
    fn kill(&self, addr: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Stops the server at `addr` gracefully (SIGTERM) and reaps it.
    fn shutdown(&self, addr: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Starts the server at `addr` again (same port and data) and waits until it answers;
    /// returns its new pid.
    fn restart(&self, addr: &str) -> impl Future<Output = Result<u32, Self::Error>> + Send;
    /// Freezes the server at `addr` with SIGSTOP until `resume`.
    fn pause(&self, addr: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Lets a paused server at `addr` run again with SIGCONT; the inverse of `pause`.
    fn resume(&self, addr: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Stops every server; calling it again does nothing.
    fn stop(&self);
}
