//! The detection matrix's CI subset, against real servers: an injected client bug, an injected
//! server bug, a real scenario, and a clean run, each through `slotcheck test` and its `detection.json`. The whole
//! matrix (every bug and scenario, both servers, several seeds) is `scripts/matrix.sh`.
//!
//! Run with `-- --test-threads=1`: each case starts a cluster and keeps both cores busy.

use serde_json::Value;
use std::path::Path;

mod support;

/// One case of the subset: what to run and what its detection summary must say.
struct Case {
    server: &'static str,
    args: &'static [&'static str],
    /// The class that must be found; `None` for a clean run, which must find nothing.
    expected: Option<&'static str>,
    /// The verdict the run must end with (its exit code follows from it).
    verdict: &'static str,
}

/// Runs `slotcheck test` for `case` and returns its `detection.json`.
fn run(case: &Case, dir: &Path) -> Value {
    let out = support::slotcheck()
        .args([
            "test",
            "--server",
            case.server,
            "--seed",
            "3",
            "--duration",
            "12s",
        ])
        .args(case.args)
        .arg("--output")
        .arg(dir)
        .output()
        .expect("run slotcheck");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let want_code = match case.verdict {
        "valid" => 0,
        "invalid" => 1,
        _ => 2,
    };
    assert_eq!(out.status.code(), Some(want_code), "{stdout}");
    support::assert_no_server_left(&dir.join("history.jsonl"));
    let text = std::fs::read_to_string(dir.join("detection.json")).expect("detection.json");
    serde_json::from_str(&text).expect("detection.json is JSON")
}

fn check(case: Case) {
    let tmp = tempfile::tempdir().unwrap();
    let d = run(&case, tmp.path());
    assert_eq!(d["verdict"], case.verdict, "{d:#}");
    let classes = d["classes"].as_object().expect("classes");
    match case.expected {
        Some(class) => {
            assert_eq!(d["expected"], class, "{d:#}");
            assert_eq!(d["detected"], true, "{class} not found: {d:#}");
            assert!(classes.contains_key(class), "{d:#}");
        }
        None => assert!(classes.is_empty(), "a clean run raised {classes:?}"),
    }
    if !d["scenario"].is_null() {
        assert_eq!(d["precondition"]["occurred"], true, "{d:#}");
    }
}

/// A client bug: resending after a timeout and recording `fail` makes values appear whose
/// writes "failed" (pauses of up to 1.5 s against a 250 ms client timeout cause the timeouts).
#[test]
fn client_bug_retry_without_info_is_an_aborted_read() {
    check(Case {
        server: "redis",
        args: &[
            "--client-bug",
            "retry-without-info",
            "--nemesis",
            "pause",
            "--nemesis-interval",
            "3s",
            "--fault-hold",
            "1500ms",
            "--timeout",
            "250ms",
        ],
        expected: Some("aborted-read"),
        verdict: "invalid",
    });
}

/// A client bug the servers refuse: the history's hops still show the stale slot map, and every
/// anomaly counts in the verdict.
#[test]
fn client_bug_stale_moved_is_a_stale_route() {
    check(Case {
        server: "valkey",
        args: &[
            "--client-bug",
            "stale-moved",
            "--migrate-interval",
            "1500ms",
        ],
        expected: Some("stale-route"),
        verdict: "invalid",
    });
}

/// A client that follows ASK without ASKING: the importing node sends it back, and the class
/// names the client's mistake.
#[test]
fn client_bug_ask_without_asking_is_named_and_blamed_on_the_client() {
    let tmp = tempfile::tempdir().unwrap();
    let case = Case {
        server: "redis",
        args: &["--client-bug", "ask-without-asking"],
        expected: Some("ask-without-asking"),
        verdict: "invalid",
    };
    let d = run(&case, tmp.path());
    assert_eq!(d["verdict"], "invalid", "{d:#}");
    assert!(
        d["causes"]["client"]["ask-without-asking"].as_u64() > Some(0),
        "{d:#}"
    );
    assert!(d["causes"].get("unexplained").is_none(), "{d:#}");
}

/// A client that takes ASK for a reason to refresh its map and goes back to the source (old
/// redis-rs): the return to the source is named after the mistake and blamed on the client.
#[test]
fn client_bug_ask_as_moved_is_named_and_blamed_on_the_client() {
    let tmp = tempfile::tempdir().unwrap();
    let case = Case {
        server: "valkey",
        args: &["--client-bug", "ask-as-moved"],
        expected: Some("ask-as-moved"),
        verdict: "invalid",
    };
    let d = run(&case, tmp.path());
    assert!(
        d["causes"]["client"]["ask-as-moved"].as_u64() > Some(0),
        "{d:#}"
    );
    assert!(d["causes"].get("unexplained").is_none(), "{d:#}");
}

/// A real scenario: finalizing a migration early makes the source drop the keys it held.
#[test]
fn scenario_finalize_early_loses_writes() {
    check(Case {
        server: "valkey",
        args: &["--scenario", "finalize-early"],
        expected: Some("lost-write"),
        verdict: "invalid",
    });
}

/// A clean run: migrations only, no alarm of any class.
#[test]
fn clean_migrations_raise_no_alarm() {
    check(Case {
        server: "redis",
        args: &["--nemesis", "migrate", "--migrate-interval", "1500ms"],
        expected: None,
        verdict: "valid",
    });
}

/// A server bug: the proxy in front of each node acknowledges some `SET`s without forwarding
/// them; the writes are gone, and the run says how often the bug fired.
#[test]
fn server_bug_lost_write_is_a_lost_write() {
    let tmp = tempfile::tempdir().unwrap();
    let case = Case {
        server: "redis",
        args: &["--server-bug", "lost-write", "--migrate-interval", "1500ms"],
        expected: Some("lost-write"),
        verdict: "invalid",
    };
    let d = run(&case, tmp.path());
    assert_eq!(d["server_bug"], "lost-write", "{d:#}");
    assert!(d["server_bug_injected"].as_u64() > Some(0), "{d:#}");
    assert_eq!(d["expected"], "lost-write", "{d:#}");
    assert_eq!(d["detected"], true, "{d:#}");
}
