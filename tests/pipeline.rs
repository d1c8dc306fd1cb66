//! `--pipeline K` against real Redis 7.0 and Valkey 9.1 clusters with migrations: a clean run
//! is valid and records redirects on pipelined ops, and the `pipeline-ask-drop` client bug (an
//! `ASK` inside a pipeline taken for the command's empty success) is found on every seed.
//!
//! Run with `-- --test-threads=1`: each case starts a cluster and keeps both cores busy.

use serde_json::Value;
use std::path::Path;

mod support;

/// Runs `slotcheck test --pipeline 8` with migrations every 1.5 s on `server` with `seed` and
/// `extra` flags; returns its exit code, `detection.json` and the history's path.
fn run(server: &str, seed: u64, extra: &[&str], dir: &Path) -> (Option<i32>, Value) {
    let seed = seed.to_string();
    let out = support::slotcheck()
        .args([
            "test",
            "--server",
            server,
            "--seed",
            &seed,
            "--duration",
            "12s",
        ])
        .args(["--pipeline", "8", "--migrate-interval", "1500ms"])
        .args(extra)
        .arg("--output")
        .arg(dir)
        .output()
        .expect("run slotcheck");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    support::assert_no_server_left(&dir.join(support::HISTORY));
    let text = std::fs::read_to_string(dir.join("detection.json")).expect("detection.json");
    let detection = serde_json::from_str(&text).expect("detection.json is JSON");
    (out.status.code(), detection)
}

/// The client ops of a history sent in a pipeline, and how many of them met a redirect.
fn pipelined(history: &Path) -> (usize, usize) {
    let done = support::events(history)
        .into_iter()
        .filter(|e| e["type"] != "invoke" && e["batch"] == "pipeline");
    done.fold((0, 0), |(ops, redirected), e| {
        let hops = e["redirects"].as_array().is_some_and(|r| !r.is_empty());
        (ops + 1, redirected + usize::from(hops))
    })
}

fn bug_found_on_every_seed(server: &str) {
    for seed in support::bug_seeds() {
        let tmp = tempfile::tempdir().unwrap();
        let (code, d) = run(
            server,
            seed,
            &["--client-bug", "pipeline-ask-drop"],
            tmp.path(),
        );
        assert_eq!(code, Some(1), "seed {seed}: {d:#}");
        assert_eq!(d["verdict"], "invalid", "seed {seed}: {d:#}");
        assert_eq!(d["expected"], "lost-write", "seed {seed}: {d:#}");
        assert_eq!(d["detected"], true, "seed {seed}: {d:#}");
    }
}

/// An `ASK` inside a pipeline answered `OK` for a `SET` the target never got: writes the
/// client acknowledged vanish (`lost-write`), on every seed of [`support::bug_seeds`] on Redis 7.0.
#[test]
fn pipeline_ask_drop_is_a_lost_write_on_redis() {
    bug_found_on_every_seed("redis");
}

/// The same on Valkey 9.1.
#[test]
fn pipeline_ask_drop_is_a_lost_write_on_valkey() {
    bug_found_on_every_seed("valkey");
}

/// A correct client's pipelines meet the migrations' redirects, record them per op, and the
/// run is valid.
#[test]
fn clean_pipelines_record_redirects_and_are_valid() {
    for server in ["redis", "valkey"] {
        let tmp = tempfile::tempdir().unwrap();
        let (code, d) = run(server, 5, &[], tmp.path());
        assert_eq!(code, Some(0), "{server}: {d:#}");
        assert_eq!(d["verdict"], "valid", "{server}: {d:#}");
        let (ops, redirected) = pipelined(&tmp.path().join(support::HISTORY));
        eprintln!("{server}: {ops} pipelined ops, {redirected} with redirects");
        assert!(ops > 1000, "{server}: only {ops} pipelined ops");
        assert!(redirected > 0, "{server}: no pipelined op met a redirect");
        let header = support::header(&tmp.path().join(support::HISTORY));
        assert_eq!(header["pipeline"], 8, "{header:#}");
    }
}

/// What cannot run pipelined is refused before anything starts (exit 254, as every bad
/// argument), saying why.
#[test]
fn pipelines_are_refused_where_they_cannot_run() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "test",
                "--pipeline",
                "8",
                "--client",
                "redis-rs",
                "--plan-only",
            ],
            "not supported with --client redis-rs",
        ),
        (
            &[
                "test",
                "--pipeline",
                "8",
                "--workload",
                "types",
                "--plan-only",
            ],
            "register and counter workloads, not types",
        ),
        (
            &["test", "--client-bug", "pipeline-ask-drop", "--plan-only"],
            "needs --pipeline 2 or more",
        ),
        (
            &["test", "--pipeline", "0", "--plan-only"],
            "pipeline must be at least 1",
        ),
        (
            &[
                "clients",
                "--pipeline",
                "8",
                "--client",
                "redis-rs,redis-py",
            ],
            "not supported with --client redis-rs",
        ),
        (
            &[
                "clients",
                "--workload",
                "list-append",
                "--client",
                "slotcheck,redis-rs",
            ],
            "redis-rs client does not run MULTI/EXEC",
        ),
    ];
    for (args, want) in cases {
        let out = support::slotcheck()
            .args(*args)
            .arg("--output")
            .arg(tmp.path().join("out"))
            .output()
            .expect("run slotcheck");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}
