//! slotcheck: start real Redis Cluster / Valkey clusters, migrate slots under concurrent
//! self-routing clients, record a history and check it.
//!
//! The binary (`src/main.rs`) is a thin layer over this crate, [`workloads`] and [`checker`]:
//! - [`harness`] starts and stops local clusters of real server processes;
//! - [`nemesis`] migrates slots while clients run, recording every step;
//! - [`run`] ties a test run together: cluster, workload, nemesis, final reads, check.

pub mod harness;
pub mod interrupt;
pub mod nemesis;
pub mod run;
