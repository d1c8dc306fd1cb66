//! Property tests (proptest) for every model: histories generated from a sequential execution
//! with random real-time overlap, `fail` ops and `info` ops (see `sim`) are always `valid`; one
//! injected stale read, lost write or duplicate is always `invalid`, and the report says why:
//! the right key and a sound explanation for the linearizability models (`linearizable`), the
//! right anomaly classes for Elle's analysis of set, list-append and `txn` histories (`elle`).
//!
//! Cases per property default to 64 (a few seconds in all, in debug); set `PROPTEST_CASES` for
//! a deeper run.

mod elle;
mod linearizable;
mod models;
mod sim;

use proptest::test_runner::Config;

/// 64 cases per property unless `PROPTEST_CASES` says otherwise.
fn config() -> Config {
    let cases = match std::env::var_os("PROPTEST_CASES") {
        Some(_) => Config::default().cases,
        None => 64,
    };
    Config {
        cases,
        // Some plans leave no fault of a kind observable (e.g. every lost write overwritten
        // before any read): those cases are rejected, up to about half of them.
        max_global_rejects: 16 * cases,
        ..Config::default()
    }
}
