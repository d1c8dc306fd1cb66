//! `slotcheck test --nemesis all` on a real Valkey cluster with replicas: every kind of action
//! runs and is recorded with its beginning and end, nothing is left behind, and the schedule is
//! a function of the seed alone.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use support::slotcheck;

mod support;

const ARGS: &[&str] = &[
    "--server",
    "valkey",
    "--masters",
    "3",
    "--replicas",
    "1",
    "--clients",
    "8",
    "--keys",
    "30",
    "--nemesis",
    "all",
    "--duration",
    "45s",
    "--nemesis-interval",
    "2500ms",
    "--fault-hold",
    "1500ms",
    "--migrate-interval",
    "1s",
    "--seed",
    "21",
];

fn plan(seed: &str) -> Value {
    let mut args: Vec<&str> = ARGS.to_vec();
    let n = args.len();
    args[n - 1] = seed;
    let out = slotcheck()
        .arg("test")
        .args(&args)
        .arg("--plan-only")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_schedule_depends_on_the_seed_alone() {
    assert_eq!(plan("21"), plan("21"));
    assert_ne!(
        plan("21")["nemesis_schedule"],
        plan("22")["nemesis_schedule"]
    );
}

fn iptables_rules() -> String {
    Command::new("iptables")
        .arg("-S")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[test]
fn every_nemesis_kind_runs_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let out = slotcheck()
        .arg("test")
        .args(ARGS)
        .args(["--output", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    // Aborted and early-finalized migrations really lose writes: `invalid` is a right answer.
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "a verdict, not an error: {stderr}"
    );

    let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0]["nemesis_schedule"],
        plan("21")["nemesis_schedule"],
        "the run followed the planned schedule"
    );
    let events: Vec<&Value> = lines.iter().filter(|l| l["process"] == "nemesis").collect();
    let seen: BTreeSet<(String, String)> = events
        .iter()
        .map(|e| {
            let phase = e["value"]["phase"].as_str().unwrap_or("").to_string();
            (e["f"].as_str().unwrap().to_string(), phase)
        })
        .collect();
    let has = |f: &str, phase: &str| seen.contains(&(f.to_string(), phase.to_string()));
    for verb in [
        "kill",
        "restart",
        "pause",
        "resume",
        "failover",
        "partition",
        "heal",
    ] {
        assert!(
            has(verb, "begin") && has(verb, "end"),
            "{verb} begins and ends: {seen:?}"
        );
    }
    assert!(
        has("migrate-start", "stable") && has("migrate-end", "stable"),
        "classic"
    );
    assert!(has("migrate-end", "aborted"), "abort");
    assert!(has("migrate-end", "finalized-early"), "finalize-early");
    assert!(has("migrate-cancel", "requested"), "cancel");
    let atomic = events.iter().any(|e| {
        e["f"] == "migrate-end"
            && e["value"]["mode"] == "atomic"
            && e["value"]["phase"]
                .as_str()
                .unwrap_or("")
                .starts_with("atomic-")
    });
    assert!(atomic, "atomic migration recorded to its end");
    let graceful = lines[0]["nemesis_schedule"]["faults"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["kind"] == "kill" && p["variant"].as_u64().unwrap() % 2 == 1);
    if graceful {
        assert!(
            has("shutdown", "begin") && has("shutdown", "end"),
            "graceful"
        );
    }
    assert!(has("heal-all", "end"), "healed at the end");
    let healed = events
        .iter()
        .find(|e| e["f"] == "heal-all" && e["value"]["phase"] == "end")
        .unwrap();
    assert!(
        healed["value"].get("error").is_none(),
        "cluster settled: {healed}"
    );

    // Nothing left: no iptables chain, no server answering on any node address.
    assert!(
        !iptables_rules().contains("SLOTCHECK"),
        "{}",
        iptables_rules()
    );
    for node in lines[0]["nodes"].as_array().unwrap() {
        let addr = node["addr"].as_str().unwrap();
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "a server still listens on {addr}"
        );
    }
    assert!(Path::new(&dir.join("run.log")).exists());
    let log = std::fs::read_to_string(dir.join("run.log")).unwrap();
    assert!(
        log.contains("migration: completed")
            && log.contains("keys_moved=")
            && log.contains("duration_ms="),
        "the run log names each migration's slot, nodes, keys moved and duration"
    );
    assert!(
        log.contains(" mid-migration; repair moved "),
        "a struck migration was repaired: {log}"
    );
}
