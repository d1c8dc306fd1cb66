//! slotcheck: start real Redis Cluster / Valkey clusters, migrate slots under concurrent
//! self-routing clients, record a history and check it.
//!
//! The binary (`src/main.rs`) is a thin layer over this crate, [`workloads`] and [`checker`].
//! The modules sit in floors; each imports only from lower floors (or its own, without a cycle),
//! which `tests/layout.rs` holds:
//! - 0: [`term`] draws status lines and progress bars; [`interrupt`] catches Ctrl-C and signals;
//! - 1: [`harness`] runs real server processes, ports, proxies and the network, and names the
//!   [`harness::ServerFamily`] every family of servers implements;
//! - 2: [`nemesis`] migrates slots and strikes faults while clients run, recording every step
//!   ([`nemesis::Nemesis`] per family); [`verify`] checks what the nodes hold
//!   ([`verify::Placement`] per family);
//! - 3: [`pika`] is PikiwiDB's own (servers, Codis slot migration, placement, scenarios);
//!   [`scenario`] names end-to-end scenarios that must lose data; [`config`] is a run's validated
//!   configuration, made by a [`config::RunConfigBuilder`];
//! - 4: [`report`] turns a checked history into `results.json` and `report.html`, [`export`]
//!   into Jepsen's `history.edn`; [`detect`] says what a run found, as a detection matrix needs
//!   it; [`input`] says which errors are bad input (exit 254) and prepares the output directory;
//! - 5: [`run`] is the one run pipeline, its stages composed for any server family;
//! - 6: [`soak`], [`bench`](mod@bench) and [`clients`] compose the run's stages into longer jobs.
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
