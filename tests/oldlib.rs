//! `clients/oldlib`, our stdlib-only client that makes one old library's mistake on purpose,
//! through `slotcheck test --client exec:...` against real Redis 7.0 and Valkey 9.1 clusters
//! under migrations: the hops each mistake leaves in history.jsonl, and the structured give-up
//! (`gave_up`) on the ops it abandoned at its hop limit.
//!
//! Runs are serialized (each starts a cluster and keeps both cores busy).

use serde_json::Value;
use std::path::Path;
use std::sync::Mutex;

mod support;

/// One cluster at a time, whatever the test threads.
static ONE_RUN: Mutex<()> = Mutex::new(());

/// oldlib's hop limit: it gives up on the 17th redirect reply.
const HOPS_MAX: u64 = 16;

/// A hop as `(kind, from, to)`.
type Hop = (String, String, String);

/// Runs `slotcheck test` through oldlib with `mistake` on `server` (register workload, a
/// migration every 700 ms) and returns its exit code and completion events.
fn run(server: &str, mistake: &str, seed: &str, dir: &Path) -> (Option<i32>, Vec<Value>) {
    let _one = ONE_RUN.lock().unwrap_or_else(|p| p.into_inner());
    let client = format!("exec:python3 clients/oldlib/adapter.py --mistake {mistake}");
    let out = support::slotcheck()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["test", "--server", server, "--client", &client])
        .args(["--clients", "8", "--keys", "10", "--rate", "1000"])
        .args(["--duration", "5s", "--nemesis", "migrate"])
        .args(["--migrate-interval", "700ms", "--seed", seed])
        .arg("--output")
        .arg(dir)
        .output()
        .expect("run slotcheck");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail: Vec<&str> = stdout.lines().rev().take(12).collect();
    eprintln!(
        "{server} {mistake}: exit {:?}; {:?}",
        out.status.code(),
        tail
    );
    let header = support::header(&dir.join("history.jsonl"));
    assert_eq!(header["client"]["name"], "oldlib", "{header}");
    assert_eq!(header["client"]["redirects"], "seen", "{header}");
    let completions = support::events(&dir.join("history.jsonl"))
        .into_iter()
        .filter(|e| e["process"].is_u64() && e["type"] != "invoke")
        .collect();
    (out.status.code(), completions)
}

fn hops(e: &Value) -> Vec<Hop> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    e["redirects"]
        .as_array()
        .map(|hops| {
            hops.iter()
                .map(|h| (text(&h["kind"]), text(&h["from"]), text(&h["to"])))
                .collect()
        })
        .unwrap_or_default()
}

/// `ASK A→B` followed by `MOVED B→A`: the target was sent the command without `ASKING`.
fn ask_then_moved_back(path: &[Hop]) -> bool {
    path.windows(2).any(|w| {
        let ((k1, a, b), (k2, from, to)) = (&w[0], &w[1]);
        k1 == "ask" && k2 == "moved" && from == b && to == a
    })
}

/// `ASK A→B` followed by a hop that starts at A again: the target was never visited.
fn ask_then_source(path: &[Hop]) -> bool {
    path.windows(2)
        .any(|w| w[0].0 == "ask" && w[1].1 == w[0].1 && w[1].0 == "ask")
}

/// An `ok` op whose last hop is an `ASK` to the node that answered: ASKING worked.
fn ask_then_ok(e: &Value) -> bool {
    let path = hops(e);
    e["type"] == "ok"
        && path
            .last()
            .is_some_and(|(k, _, to)| k == "ask" && e["node"].as_str() == Some(to))
}

/// Every `gave_up` sits on a `fail` after exactly [`HOPS_MAX`] hops, names the kind of the
/// redirect reply it quotes, and the error keeps the text; returns how many ops gave up.
fn check_gave_up(server: &str, mistake: &str, completions: &[Value]) -> usize {
    let mut given_up = 0;
    for e in completions.iter().filter(|e| !e["gave_up"].is_null()) {
        let g = &e["gave_up"];
        let kind = g["kind"].as_str().unwrap();
        let reply = g["reply"].as_str().unwrap();
        assert_eq!(e["type"], "fail", "{server} {mistake}: {e}");
        assert_eq!(g["hops"], HOPS_MAX, "{server} {mistake}: {e}");
        assert_eq!(hops(e).len() as u64, HOPS_MAX, "{server} {mistake}: {e}");
        assert!(["ask", "moved"].contains(&kind), "{server} {mistake}: {e}");
        assert!(reply.starts_with(&kind.to_uppercase()), "{e}");
        assert!(reply.len() <= 200, "{e}");
        assert!(e["error"].as_str().unwrap().contains(reply), "{e}");
        given_up += 1;
    }
    given_up
}

fn mistakes_show_in_the_hops(server: &str, seed: &str) {
    let tmp = tempfile::tempdir().unwrap();
    // A correct client: ASK hops that end in success, neither pattern, no give-up, valid.
    let (code, ops) = run(server, "none", seed, &tmp.path().join("none"));
    assert_eq!(code, Some(0), "{server} none: the run must be valid");
    assert!(ops.iter().any(ask_then_ok), "{server} none: no ASK hop");
    for e in &ops {
        let path = hops(e);
        assert!(!ask_then_moved_back(&path), "{server} none: {e}");
        assert!(!ask_then_source(&path), "{server} none: {e}");
    }
    assert_eq!(check_gave_up(server, "none", &ops), 0, "{server} none");

    // The verdict of the two mistakes depends on the checker's classes (redirect-loop today,
    // ask-without-asking / ask-as-moved with the new redirect analysis): valid or invalid.
    let (code, ops) = run(
        server,
        "ask-without-asking",
        seed,
        &tmp.path().join("without"),
    );
    assert!(matches!(code, Some(0 | 1)), "{server}: exit {code:?}");
    let bounced = ops.iter().filter(|e| ask_then_moved_back(&hops(e))).count();
    assert!(
        bounced > 0,
        "{server} ask-without-asking: no ASK then MOVED back"
    );
    let given_up = check_gave_up(server, "ask-without-asking", &ops);
    assert!(given_up > 0, "{server} ask-without-asking: no give-up");
    eprintln!("{server} ask-without-asking: {bounced} ops bounced, {given_up} gave up");

    let (code, ops) = run(server, "ask-refresh", seed, &tmp.path().join("refresh"));
    assert!(matches!(code, Some(0 | 1)), "{server}: exit {code:?}");
    let back = ops.iter().filter(|e| ask_then_source(&hops(e))).count();
    assert!(
        back > 0,
        "{server} ask-refresh: no ASK then the source again"
    );
    for e in &ops {
        assert!(!ask_then_moved_back(&hops(e)), "{server} ask-refresh: {e}");
    }
    let given_up = check_gave_up(server, "ask-refresh", &ops);
    assert!(given_up > 0, "{server} ask-refresh: no give-up");
    eprintln!("{server} ask-refresh: {back} ops back at the source, {given_up} gave up");
}

#[test]
fn oldlib_mistakes_show_in_the_hops_redis() {
    mistakes_show_in_the_hops("redis", "1");
}

#[test]
fn oldlib_mistakes_show_in_the_hops_valkey() {
    mistakes_show_in_the_hops("valkey", "1");
}

/// Runs the counter workload through oldlib with `mistake` under pauses of 1.5 s against a 250 ms
/// timeout (the shape of the redis-py run the issue saw); returns the exit code and detection.
fn counter_under_pauses(server: &str, mistake: &str, dir: &Path) -> (Option<i32>, Value) {
    let _one = ONE_RUN.lock().unwrap_or_else(|p| p.into_inner());
    let client = format!("exec:python3 clients/oldlib/adapter.py --mistake {mistake}");
    let out = support::slotcheck()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["test", "--server", server, "--client", &client])
        .args(["--workload", "counter", "--clients", "8", "--keys", "10"])
        .args(["--duration", "6s", "--nemesis", "pause"])
        .args(["--nemesis-interval", "2s", "--fault-hold", "1500ms"])
        .args(["--timeout", "250ms", "--seed", "1"])
        .arg("--output")
        .arg(dir)
        .output()
        .expect("run slotcheck");
    let text = std::fs::read_to_string(dir.join("detection.json")).expect("detection.json");
    let detection: Value = serde_json::from_str(&text).unwrap();
    eprintln!(
        "{server} {mistake}: exit {:?}: {detection}",
        out.status.code()
    );
    (out.status.code(), detection)
}

/// resend-incr resends an `INCR` that timed out and reports the resent reply: the counter model
/// sees an increment applied twice. The correct client under the same run says `info` and stays
/// valid.
#[test]
fn oldlib_resend_incr_duplicates_increments() {
    let tmp = tempfile::tempdir().unwrap();
    for server in ["redis", "valkey"] {
        let dir = tmp.path().join(format!("{server}-resend"));
        let (code, d) = counter_under_pauses(server, "resend-incr", &dir);
        assert_eq!(code, Some(1), "{server}: {d}");
        assert!(
            d["classes"]["duplicated-increment"].as_u64() > Some(0),
            "{server}: {d}"
        );
    }
    let (code, d) = counter_under_pauses("redis", "none", &tmp.path().join("none"));
    assert_eq!(
        (code, &d["verdict"]),
        (Some(0), &Value::from("valid")),
        "{d}"
    );
}
