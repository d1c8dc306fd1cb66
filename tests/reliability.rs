//! Issue 21, the run side: bad arguments and environments exit 254 before anything is created,
//! `verify` with an unreachable node, SIGTERM during a partition, `soak --check --window`, and
//! the bound on `--keys`.

use std::path::Path;
use std::process::{Command, Output};

use support::slotcheck;

mod support;

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `slotcheck test ARGS --output DIR` and returns its output.
fn test_run(args: &[&str], dir: &Path) -> Output {
    slotcheck()
        .arg("test")
        .args(args)
        .arg("--output")
        .arg(dir)
        .output()
        .expect("run slotcheck")
}

#[test]
fn bad_arguments_exit_254_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[&[&str]] = &[
        &["--masters", "0"],
        &["--clients", "0"],
        &["--keys", "0"],
        &["--migrate-batch", "0"],
        &["--replicas", "5", "--masters", "1"],
        &["--nemesis", "bogus"],
        &["--nemesis", ""],
        &["--scenario", "bogus"],
        &["--client-bug", "bogus"],
        &["--timeout", "0s"],
        &["--masters", "1000"],
        &["--keys", "10000000", "--duration", "3s"],
        &[
            "--server",
            "pikiwidb",
            "--server-binary",
            "/nonexistent/pika",
        ],
        &["--server", "pikiwidb", "--clients", "0"],
    ];
    for (i, args) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("run{i}"));
        let out = test_run(args, &dir);
        assert_eq!(out.status.code(), Some(254), "{args:?}: {}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("[ERR]"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Some("), "no debug text: {stderr}");
        assert!(!dir.exists(), "{args:?} created {}", dir.display());
    }
}

#[test]
fn a_missing_or_wrong_server_binary_exits_254() {
    let tmp = tempfile::tempdir().unwrap();
    for binary in ["/nonexistent/redis-server", "/bin/true"] {
        let dir = tmp.path().join("run");
        let out = slotcheck()
            .args(["test", "--duration", "1s", "--output"])
            .arg(&dir)
            .env("SLOTCHECK_REDIS_SERVER", binary)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(254), "{binary}: {}", show(&out));
        assert!(!dir.exists(), "{binary}: the output directory was created");
    }
}

#[test]
fn an_unusable_output_exits_254_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under_file = file.join("run");
    let proc_dir = Path::new("/proc");
    for dir in [file.as_path(), under_file.as_path(), proc_dir] {
        let out = test_run(&["--duration", "1s"], dir);
        assert_eq!(
            out.status.code(),
            Some(254),
            "{}: {}",
            dir.display(),
            show(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("--output {}", dir.display())),
            "names the path: {stderr}"
        );
    }
    // An existing directory nothing can be written in (root ignores permissions, not `chattr
    // +i`): named, where it used to say only "Operation not permitted (os error 1)".
    let immutable = tmp.path().join("immutable");
    std::fs::create_dir(&immutable).unwrap();
    let Some(_guard) = Immutable::set(&immutable) else {
        eprintln!("chattr +i unavailable here: the immutable case is skipped");
        return;
    };
    let out = test_run(&["--duration", "1s"], &immutable);
    assert_eq!(out.status.code(), Some(254), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("--output {}: cannot write", immutable.display())),
        "{stderr}"
    );
}

/// `chattr +i` on a directory, undone on drop (also when the test fails).
struct Immutable(std::path::PathBuf);

impl Immutable {
    fn set(dir: &Path) -> Option<Immutable> {
        let done = Command::new("chattr").arg("+i").arg(dir).status();
        done.is_ok_and(|s| s.success())
            .then(|| Immutable(dir.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn an_earlier_run_is_kept_unless_force() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("history.jsonl"), "earlier\n").unwrap();
    let args = [
        "--nemesis",
        "none",
        "--masters",
        "1",
        "--clients",
        "2",
        "--keys",
        "4",
        "--duration",
        "1s",
        "--seed",
        "1",
    ];
    let out = test_run(&args, &dir);
    assert_eq!(out.status.code(), Some(254), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(
        std::fs::read_to_string(dir.join("history.jsonl")).unwrap(),
        "earlier\n",
        "the earlier run is untouched"
    );
    let mut forced = args.to_vec();
    forced.push("--force");
    let out = test_run(&forced, &dir);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(dir.join("results.json").is_file());
    assert_ne!(
        std::fs::read_to_string(dir.join("history.jsonl")).unwrap(),
        "earlier\n"
    );
}

#[test]
fn soak_check_takes_window() {
    let tmp = tempfile::tempdir().unwrap();
    let segments = tmp.path().join("segments");
    std::fs::create_dir_all(&segments).unwrap();
    // A history whose header has no soak_window_ms: only --window can say how to cut it.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("histories/register-ok.jsonl");
    std::fs::copy(&fixture, segments.join("000001.jsonl")).unwrap();
    let out = slotcheck()
        .args(["soak", "--check"])
        .arg(tmp.path())
        .args(["--window", "30s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(tmp.path().join("check-windows.jsonl").is_file());
    let out = slotcheck()
        .args(["soak", "--check"])
        .arg(tmp.path())
        .args(["--window", "10ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254), "{}", show(&out));
    // Without --window and without soak_window_ms in the header, or without segments: bad input.
    let out = slotcheck()
        .args(["soak", "--check"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --window"));
    let empty = tempfile::tempdir().unwrap();
    let out = slotcheck()
        .args(["soak", "--check"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254), "{}", show(&out));
}

/// A cluster from `slotcheck cluster up`, with one node paused; resumed and stopped on drop,
/// also when the test fails.
struct PausedCluster {
    dir: std::path::PathBuf,
    paused: Option<u32>,
}

impl Drop for PausedCluster {
    fn drop(&mut self) {
        if let Some(pid) = self.paused {
            let _ = Command::new("kill")
                .args(["-CONT", &pid.to_string()])
                .status();
        }
        let _ = slotcheck()
            .args(["cluster", "down", "--dir"])
            .arg(&self.dir)
            .output();
    }
}

#[test]
fn verify_names_an_unreachable_node_and_checks_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let mut cluster = PausedCluster {
        dir: dir.clone(),
        paused: None,
    };
    let up = slotcheck()
        .args(["cluster", "up", "--masters", "3", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    // Lines `ADDR ID pid PID`, masters in slot order: the second owns 5461-10922.
    let nodes: Vec<(String, u32)> = String::from_utf8_lossy(&up.stdout)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() == 4 && w[2] == "pid").then(|| (w[0].to_string(), w[3].parse().unwrap()))
        })
        .collect();
    assert_eq!(nodes.len(), 3, "{}", show(&up));
    let (stopped, pid) = nodes[1].clone();
    let status = Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    cluster.paused = Some(pid);

    let out = slotcheck()
        .args(["verify", "--json", &nodes[0].0])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let anomalies = v["anomalies"].as_array().unwrap();
    let classes: Vec<&str> = anomalies
        .iter()
        .map(|a| a["class"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["node-unreachable"], "{}", show(&out));
    let text = anomalies[0]["explanation"].as_str().unwrap();
    assert!(text.contains(&stopped), "names the node: {text}");
    assert_eq!(anomalies[0]["data"]["node"], stopped.as_str());
    let all = String::from_utf8_lossy(&out.stdout);
    assert!(!all.contains("Some("), "no debug text: {all}");
    assert_eq!(v["slots_covered"], 16384);
}

fn iptables_rules() -> String {
    let out = Command::new("iptables")
        .args(["-w", "5", "-S"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// SIGTERM while a partition is in force: the run heals, stops its servers, checks and prints a
/// verdict, writes results.json, and leaves no iptables chain; a chain left by a dead run is
/// removed at its start.
#[test]
fn sigterm_during_a_partition_stops_gracefully() {
    if let Err(e) = slotcheck::nemesis::net::available() {
        eprintln!("skipped: {e}");
        return;
    }
    // A chain of a run that died: its pid is gone.
    let dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    let _ = { dead }.wait();
    let stale = format!("SLOTCHECK-{dead_pid}-0");
    let made = Command::new("iptables")
        .args(["-w", "5", "-N", &stale])
        .status();
    assert!(made.unwrap().success());

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let mut child = slotcheck()
        .args([
            "test",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "300ms",
            "--fault-hold",
            "3s",
            "--duration",
            "60s",
            "--clients",
            "5",
            "--keys",
            "10",
            "--seed",
            "21",
            "--output",
        ])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let history = dir.join("history.jsonl");
    let ours = format!("SLOTCHECK-{pid}-");
    // Wait until a partition is in force: our chain holds a DROP rule.
    let start = std::time::Instant::now();
    loop {
        let rules = iptables_rules();
        let active = rules
            .lines()
            .any(|l| l.starts_with(&format!("-A {ours}")) && l.contains("DROP"));
        if active {
            assert!(
                !rules.contains(&stale),
                "the dead run's chain is removed at start"
            );
            break;
        }
        if start.elapsed() > std::time::Duration::from_secs(40)
            || child.try_wait().unwrap().is_some()
        {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("no partition came into force: {}", show(&out));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "a verdict's exit code, not death by SIGTERM: {}",
        show(&out)
    );
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    assert!(
        stdout.contains(": valid") || stdout.contains(": invalid") || stdout.contains(": unknown"),
        "a verdict is printed: {stdout}"
    );
    assert!(stdout.contains("(interrupted)"), "{stdout}");
    assert!(dir.join("results.json").is_file(), "results.json written");
    // No server of the run is left.
    assert_eq!(support::node_pids(&history).len(), 3);
    support::assert_no_server_left(&history);
    let rules = iptables_rules();
    assert!(!rules.contains(&ours), "our chain is left: {rules}");
    assert!(
        !rules.contains(&stale),
        "the dead run's chain is left: {rules}"
    );
}

/// SIGHUP (a closed terminal) stops a run as Ctrl-C does: a verdict and results.json.
#[test]
fn sighup_stops_gracefully() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let child = slotcheck()
        .args([
            "test",
            "--nemesis",
            "none",
            "--masters",
            "1",
            "--clients",
            "2",
            "--keys",
            "4",
            "--duration",
            "60s",
            "--seed",
            "3",
            "--output",
        ])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The workload has started once the history has events past its header.
    let history = dir.join("history.jsonl");
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&history).map_or(0, |t| t.lines().count()) < 3 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(40),
            "no workload"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let sent = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SIGHUP"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(interrupted)"));
    assert!(dir.join("results.json").is_file());
}
