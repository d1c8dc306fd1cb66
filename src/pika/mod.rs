//! PikiwiDB (OpenAtomFoundation/pika 4.0) under test: servers that do not speak Redis Cluster, so
//! slotcheck plays the Codis proxy and dashboard itself.
//!
//! - [`server`] starts N standalone pika servers on 127.0.0.1 with `slotmigrate` on, and kills,
//!   restarts and stops them by pid;
//! - [`migrate`] moves a slot between servers with pika's own commands (`SLOTSMGRTTAGSLOT`, its
//!   async form, cancel, reload), every admin command bounded, each step recorded as a nemesis
//!   event, and flips the slot in the [`workloads::codis::CodisTable`] only once the source is empty;
//! - [`nemesis`] records each step (see [`step`]) as history events;
//! - [`strike`] kills or restarts the source or target while a migration runs;
//! - [`placement`] scans every server at the end and reports keys left behind on a non-owner
//!   (`stranded`) or held twice (`duplicated`), with each copy's type, and [`explain`] turns
//!   those into anomalies naming the command that created the key and the migration;
//! - [`schedule`] moves slots under the workload, with [`scenario`]'s presets (and filler keys)
//!   aimed at PikiwiDB 4.0's known bugs; its `Scheduled` is PikiwiDB's `nemesis::Nemesis`, and
//!   [`verify`]'s [`PikaPlacement`] (placement and explain, with the stuck migrations) its
//!   `verify::Placement`; the run pipeline's `run::pika` is PikiwiDB's family of stages
//!   (`slotcheck test --server pikiwidb`; its flags are the binary's `src/cli/pika.rs`);
//! - [`server`]'s `PikaCluster` is PikiwiDB's `harness::ServerFamily`.

mod config;
pub mod error;
pub mod explain;
pub mod link;
pub mod migrate;
pub mod nemesis;
pub mod placement;
pub mod scenario;
pub mod schedule;
pub mod server;
pub mod step;
pub mod strike;
pub mod verify;

pub use error::PikaError;
pub use nemesis::PikaNemesis;
pub use placement::{check_placement, Finding, FindingKind, PlacementReport};
pub use server::{find_binary, PikaCluster, PikaSpec, SERVER_ENV};
pub use step::{MigrateOptions, Outcome, Step, Stuck};
pub use verify::PikaPlacement;
