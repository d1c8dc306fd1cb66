//! Pure, deterministic checking of slotcheck histories.

pub mod history;

pub use history::{Event, EventType, Header, History, HistoryError, Process, Redirect, RedirectKind};
