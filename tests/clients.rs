//! Clients under test, end to end against real servers: the counter workload, `--client`, and
//! `slotcheck clients` (the comparison table).

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use support::slotcheck;

mod support;

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run slotcheck");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A short test of `workload` through `client`, under `nemesis`; returns its results.json.
fn short(server: &str, workload: &str, client: &str, nemesis: &str, dir: &Path) -> Value {
    let out = run(slotcheck().args([
        "test",
        "--server",
        server,
        "--workload",
        workload,
        "--client",
        client,
        "--clients",
        "8",
        "--keys",
        "10",
        "--rate",
        "1000",
        "--duration",
        "6s",
        "--nemesis",
        nemesis,
        "--nemesis-interval",
        "2s",
        "--fault-hold",
        "1500ms",
        "--migrate-interval",
        "1s",
        "--seed",
        "11",
        "--json",
        "--output",
        dir.to_str().unwrap(),
    ]));
    let results: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON value");
    assert_eq!(out.status.code(), Some(0), "{results}");
    results
}

/// The counter workload through slotcheck's router, under migrations and pauses: `incr` and
/// `read` ops, checked with the counter model, valid; the header names the workload and client.
#[test]
fn counter_workload_is_valid_under_migrations_and_pauses() {
    for server in ["redis", "valkey"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let results = short(server, "counter", "slotcheck", "migrate,pause", &dir);
        assert_eq!(results["valid"], Value::Bool(true), "{server}: {results}");
        let h = support::header(&dir.join("history.jsonl"));
        assert_eq!(h["workload"], "counter");
        assert_eq!(h["client"]["name"], "slotcheck");
        assert_eq!(h["client"]["redirects"], "seen");
        let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
        let incrs = text.lines().filter(|l| l.contains(r#""f":"incr""#)).count();
        assert!(incrs > 100, "{server}: only {incrs} incr events");
        assert!(
            text.contains(r#""key":"{counter:g"#),
            "{server}: counter keys"
        );
    }
}

/// redis-rs's cluster client through migrations: a valid run on both servers, with the redirects
/// the library followed recorded on the ops (the wrapper connection sees them).
#[test]
fn redis_rs_migration_runs_are_valid_and_show_redirects() {
    for server in ["redis", "valkey"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let results = short(server, "register", "redis-rs", "migrate", &dir);
        assert_eq!(results["valid"], Value::Bool(true), "{server}: {results}");
        let h = support::header(&dir.join("history.jsonl"));
        assert_eq!(h["client"]["name"], "redis-rs");
        assert_eq!(h["client"]["redirects"], "seen");
        let hops: usize = support::events(&dir.join("history.jsonl"))
            .iter()
            .filter_map(|e| e["redirects"].as_array().map(Vec::len))
            .sum();
        assert!(hops > 0, "{server}: no redirect recorded through redis-rs");
    }
}

/// redis-py and node-redis (child-process adapters) through migrations: valid runs on both
/// servers, the header naming the library and version. scripts/setup.sh installs them; without
/// them the test says so and passes, unless SLOTCHECK_REQUIRE_CLIENTS is set (CI sets it).
#[test]
fn adapter_migration_runs_are_valid() {
    for name in ["redis-py", "node-redis"] {
        if let Err(why) = slotcheck::clients::adapter(name) {
            assert!(
                std::env::var_os("SLOTCHECK_REQUIRE_CLIENTS").is_none(),
                "{name}: {why}"
            );
            eprintln!("SKIPPED {name}: {why}");
            continue;
        }
        for server in ["redis", "valkey"] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("run");
            let results = short(server, "register", name, "migrate", &dir);
            assert_eq!(
                results["valid"],
                Value::Bool(true),
                "{name} {server}: {results}"
            );
            let h = support::header(&dir.join("history.jsonl"));
            assert_eq!(h["client"]["name"], name, "{h}");
            assert!(h["client"]["version"]
                .as_str()
                .is_some_and(|v| !v.is_empty()));
            let ops = support::events(&dir.join("history.jsonl"))
                .iter()
                .filter(|e| e["type"] == "ok")
                .count();
            assert!(ops > 1000, "{name} {server}: only {ops} ok ops");
        }
    }
}

/// The counter through redis-rs while masters pause past the request timeout: the INCRs caught
/// in a pause end `info`, never `fail`; if the library's resends applied one twice, the checker
/// says `duplicated-increment`.
#[test]
fn redis_rs_counter_under_pauses_records_info_and_judges_resends() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let out = run(slotcheck().args([
        "test",
        "--server",
        "redis",
        "--workload",
        "counter",
        "--client",
        "redis-rs",
        "--clients",
        "8",
        "--keys",
        "5",
        // One slot a key, so that the keys spread over every master and each pause stalls some.
        "--slots",
        "0",
        "--rate",
        "1000",
        "--duration",
        "10s",
        "--nemesis",
        "pause",
        "--nemesis-interval",
        "2s",
        "--fault-hold",
        "3s",
        "--timeout",
        "500ms",
        "--seed",
        "4",
        "--json",
        "--output",
        dir.to_str().unwrap(),
    ]));
    let results: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON value");
    let evs = support::events(&dir.join("history.jsonl"));
    let info_incrs = evs
        .iter()
        .filter(|e| e["type"] == "info" && e["f"] == "incr")
        .count();
    assert!(info_incrs > 0, "no INCR ended info under pauses: {results}");
    let failed_timeouts = evs.iter().filter(|e| {
        e["type"] == "fail" && e["error"].as_str().is_some_and(|t| t.contains("timed out"))
    });
    assert_eq!(
        failed_timeouts.count(),
        0,
        "a timeout must be info, never fail"
    );
    if results["valid"] == Value::Bool(false) {
        let detection: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("detection.json")).unwrap())
                .unwrap();
        assert!(
            detection["classes"]["duplicated-increment"].as_u64() > Some(0),
            "an invalid counter run must name its class: {detection}"
        );
    }
}

/// `slotcheck clients` prints one row per server, scenario and client, and writes clients.json.
#[test]
fn comparison_prints_a_row_per_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("clients");
    let out = run(slotcheck().args([
        "clients",
        "--server",
        "redis",
        "--client",
        "slotcheck",
        "--scenario",
        "migrate",
        "--duration",
        "5s",
        "--output",
        dir.to_str().unwrap(),
    ]));
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("clients.json")).unwrap()).unwrap();
    let rows = saved["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["scenario"], "migrate");
    assert!(rows[0]["ops"].as_u64().unwrap() > 100, "{saved}");
    assert!(rows[0]["redirects"].as_u64().unwrap() > 0, "{saved}");
    assert!(
        table.contains("migrate") && table.contains("slotcheck"),
        "{table}"
    );
}
