//! Self-routing Redis Cluster clients, workload generators and the history recorder.
//!
//! A run creates a [`Recorder`] (the history file), learns the slot map from seed nodes, and
//! starts workload processes. Each process owns a [`Router`] — its own connections, sharing one
//! [`SlotMap`] with the others — which sends a single-key command to the slot's owner, follows
//! `MOVED` (updating the map) and `ASK` (`ASKING` + the command in one pipeline, map untouched),
//! backs off on `TRYAGAIN`/`CLUSTERDOWN`, and records every hop. The outcome rule: an error reply
//! means the op did not happen (`fail`); a timeout or lost connection means it may have (`info`),
//! after which the process retires and continues under a new number with fresh connections.
//!
//! ```no_run
//! use workloads::{final_reads, run_register, Recorder, WorkloadConfig};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let header = checker::Header::new(serde_json::Map::new());
//! let recorder = Recorder::create(std::path::Path::new("history.jsonl"), header)?;
//! let cfg = WorkloadConfig::default();
//! let seeds = vec!["127.0.0.1:30001".to_string()];
//! let stop = tokio_util::sync::CancellationToken::new();
//! let timer = stop.clone();
//! tokio::spawn(async move {
//!     tokio::time::sleep(std::time::Duration::from_secs(10)).await;
//!     timer.cancel();
//! });
//! let mut stats = run_register(&cfg, seeds.clone(), recorder.clone(), stop).await?;
//! let extra = stats.extra_keys.clone();
//! stats.merge(&final_reads(&cfg, seeds, recorder.clone(), &extra).await?);
//! recorder.close()?;
//! # Ok(()) }
//! ```
//!
//! Modules: [`slot`] (key → slot), [`slotmap`] (slot → master), [`router`] (routing, `classify`),
//! [`client`] (a logical process), [`executor`] (which client runs it: slotcheck's router,
//! [`redis_rs`] the `redis` crate's cluster client with its redirects observed, or [`external`] a
//! client library run as a child process), [`recorder`] (the history writer), [`workload`] (what
//! workloads share), [`register`], [`counter`], [`list_append`] and [`rw_register`] (the
//! workloads; [`txn`] builds the last two's transactions), [`stats`] (counters and
//! errors), [`bugs`] (client bugs injected on purpose, as test aids: off unless
//! `WorkloadConfig::client_bug` names one), [`named`] (reading a value named on the command line
//! back, one way for every enum of names).

#![warn(missing_docs)]

pub mod bugs;
pub mod client;
pub mod codis;
pub mod config;
mod conn;
pub mod counter;
pub mod executor;
pub mod external;
pub mod keys;
pub mod list_append;
pub mod named;
pub mod recorder;
pub mod redis_rs;
pub mod register;
pub mod router;
pub mod rw_register;
pub mod slot;
pub mod slotmap;
pub mod stats;
pub mod txn;
pub mod types;
pub mod workload;

pub use bugs::ClientBug;
pub use client::{Client, Completion, Operation};
pub use counter::run_counter;
pub use executor::{ClientChoice, ClientFactory, ClientInfo, Executor, RedirectVisibility};
pub use external::{External, ExternalSpec};
pub use keys::{key_epoch, KeyDist, KeyNames};
pub use recorder::{segment_path, Recorder, SegmentSpec};
pub use redis_rs::RedisRs;
pub use register::run_register;
pub use router::{classify, Action, Execution, OpError, Router, RouterConfig, RouterError};
pub use slot::key_slot;
pub use slotmap::{SharedSlotMap, SlotMap};
pub use stats::{WorkloadError, WorkloadStats};
pub use txn::TxnMode;
pub use workload::{
    final_reads, run_workload, slots_of, workload_keys, workload_slots, WorkloadConfig,
    WorkloadKind, FINAL_READ_PROCESS_BASE,
};
