//! slotcheck: start real Redis Cluster / Valkey clusters, migrate slots under concurrent
//! self-routing clients, record a history and check it.
//!
//! The binary (`src/main.rs`) is a thin layer over this crate, [`workloads`] and [`checker`]:
//! - [`harness`] starts and stops local clusters of real server processes;
//! - [`input`] says which errors are bad input (exit 254) and prepares the output directory;
//! - [`nemesis`] migrates slots while clients run, recording every step;
//! - [`run`] ties a test run together: cluster, workload, nemesis, final reads, check;
//! - [`pika`] runs PikiwiDB servers, migrates their slots as a Codis dashboard does and checks
//!   where every key ended up;
//! - [`report`] turns a run's history and results into `report.html`, [`export`] into
//!   Jepsen's `history.edn`, and [`term`] draws status lines and progress bars;
//! - [`config`] is a run's validated configuration, made by a [`config::RunConfigBuilder`];
//! - [`scenario`] names end-to-end scenarios that must lose data, and [`detect`] says what a run
//!   found, as a detection matrix needs it.
//!
//! The command line (flags, their validation into configs, what each command prints) lives in
//! the binary, `src/main.rs` and `src/cli/`.

/// One `&mut Self` setter per field of a config's builder, as turmoil's builder has: each takes
/// the field's value and returns the builder for the next call.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&mut self, $name: $ty) -> &mut Self {
                self.$name = $name;
                self
            }
        )*
    };
}

pub mod bench;
pub mod clients;
pub mod config;
pub mod detect;
pub mod export;
pub mod harness;
pub mod input;
pub mod interrupt;
pub mod nemesis;
pub mod pika;
pub mod report;
pub mod run;
pub mod scenario;
pub mod soak;
pub mod term;
pub mod verify;
