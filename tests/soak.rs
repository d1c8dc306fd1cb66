//! `slotcheck soak` against real servers (no mocks): the rolling checker raises an alarm in the
//! window where a server bug starts and not before; a soak killed with SIGKILL is checked
//! afterwards to the verdict of its joined segments and can be resumed.

use serde_json::Value;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};
use support::slotcheck;

mod support;

fn show(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn windows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `soak` arguments for a short soak of 4 s windows with migrations every second.
fn short(dir: &Path, duration: &str) -> Vec<String> {
    let args = [
        "soak",
        "--duration",
        duration,
        "--window",
        "4s",
        "--keys",
        "12",
        "--clients",
        "8",
        "--rate",
        "2000",
        "--nemesis",
        "migrate",
        "--migrate-interval",
        "1s",
        "--seed",
        "5",
        "--output",
    ];
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    v.push(dir.to_str().unwrap().to_string());
    v
}

#[test]
fn an_injected_lost_write_raises_an_alarm_in_its_window() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("soak");
    let out = slotcheck()
        .args(short(&dir, "40s"))
        .args([
            "--server-bug",
            "lost-write",
            "--bug-after",
            "9s",
            "--until-anomaly",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let ws = windows(&dir.join("windows.jsonl"));
    let first = ws
        .iter()
        .find(|w| w["verdict"] != "valid")
        .expect("an invalid window");
    // 9 s falls in window 2 (8-12 s): windows 0 and 1 are clean, window 2 has the first loss.
    assert_eq!(first["window"], 2, "{ws:#?}");
    assert!(ws
        .iter()
        .take_while(|w| w["window"] != 2)
        .all(|w| w["verdict"] == "valid"));
    assert!(
        first["classes"]["lost-write"].as_u64() > Some(0),
        "{first:#}"
    );
    // Raised as soon as the window and its margin (3 x 1 s timeout + 2 s) were closed, plus
    // at most a segment (1 s) and a poll.
    let raised = first["checked_at_ms"].as_u64().unwrap();
    assert!(
        (12_000 + 5_000..=12_000 + 5_000 + 3_000).contains(&raised),
        "{first:#}"
    );
    let alarm = Path::new(first["alarm"].as_str().unwrap());
    assert!(alarm.join("report.html").is_file());
    assert!(show(&out).contains("ALARM window 2"), "{}", show(&out));
    // The alarm directory is a run directory: `slotcheck report` rebuilds its verdict.
    let again = slotcheck().arg("report").arg(alarm).output().unwrap();
    assert_eq!(again.status.code(), Some(1), "{}", show(&again));
}

#[test]
fn a_killed_soak_is_checked_from_its_segments_and_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("soak");
    let mut child = slotcheck()
        .args(short(&dir, "60s"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once two windows have been checked online.
    let start = Instant::now();
    while windows(&dir.join("windows.jsonl")).len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "no window checked"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let online = windows(&dir.join("windows.jsonl"));

    let checked = slotcheck()
        .args(["soak", "--check"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(checked.status.code(), Some(0), "{}", show(&checked));
    let offline = windows(&dir.join("check-windows.jsonl"));
    assert!(
        offline.len() > online.len(),
        "the windows after the kill are checked too"
    );
    for (a, b) in online.iter().zip(&offline) {
        assert_eq!(
            (&a["window"], &a["ops"], &a["verdict"]),
            (&b["window"], &b["ops"], &b["verdict"])
        );
    }
    // The segments joined are one history with the same ops and verdict.
    let mut joined = Vec::new();
    let seg = dir.join("segments");
    let mut names: Vec<_> = std::fs::read_dir(&seg)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for name in &names {
        joined.extend(std::fs::read(name).unwrap());
    }
    let whole = tmp.path().join("whole.jsonl");
    std::fs::write(&whole, joined).unwrap();
    let out = slotcheck()
        .args(["check", "--json"])
        .arg(&whole)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ops: u64 = offline.iter().map(|w| w["ops"].as_u64().unwrap()).sum();
    let total = &report["ops"];
    let all = ["ok", "fail", "info"]
        .iter()
        .map(|k| total[k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(
        ops, all,
        "every op of the joined history is in exactly one window"
    );

    // Resume: a new cluster; segment numbers and the time line go on.
    let out = slotcheck()
        .args(short(&dir, "6s"))
        .arg("--resume")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let mut after: Vec<_> = std::fs::read_dir(&seg)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    after.sort();
    assert!(after.len() > names.len());
    let resumed = windows(&dir.join("windows.jsonl"));
    let last_before = offline.last().unwrap()["window"].as_u64().unwrap();
    assert!(resumed.last().unwrap()["window"].as_u64().unwrap() > last_before);
    assert!(
        resumed.iter().all(|w| w["verdict"] == "valid"),
        "{resumed:#?}"
    );
}
