//! A cluster on other machines, on a bed of network namespaces (`scripts/hosts.sh`): three hosts
//! with their own address in 198.18.0.0/15 and their own sshd; `slotcheck cluster up --hosts`
//! starts the servers there over SSH, `slotcheck test --hosts` kills, pauses and partitions them
//! there (iptables inside each host), `slotcheck test --attach` runs against the cluster by
//! address only; Redis 7.0, then Valkey 9.1.
//!
//! Needs root, `ip`, iptables and Debian's openssh-server (scripts/setup.sh installs it);
//! elsewhere it prints why it is skipped and passes. The bed is removed by a Drop guard, also
//! when an assertion fails, and the test checks that nothing is left: namespaces, bridge, sshd,
//! servers, iptables chains.
//!
//! Each `test` run lasts `SLOTCHECK_REMOTE_DURATION` (default 30s, issue 23's acceptance run; the
//! suite runs this test beside the others, so its length costs CI little wall time).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use slotcheck::harness::{find_server, pid_alive, ServerKind};

mod support;

/// The bed script.
const HOSTS_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/hosts.sh");

/// Why this machine cannot hold the bed, if it cannot.
fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".to_string());
    }
    for tool in [
        "/usr/sbin/sshd",
        "/usr/bin/ssh",
        "/usr/sbin/ip",
        "/usr/sbin/iptables",
    ] {
        if !Path::new(tool).exists() {
            return Some(format!("{tool} missing (scripts/setup.sh installs it)"));
        }
    }
    None
}

/// A bed of hosts; dropping it runs `hosts.sh down`, then removes its directory.
struct Bed {
    dir: tempfile::TempDir,
    /// Pids of the bed's sshds and servers, read while it ran.
    pids: Vec<u32>,
}

impl Bed {
    /// Three hosts that run `kind`'s server.
    fn up(kind: ServerKind) -> Bed {
        let binary = find_server(kind).expect("a server binary");
        let dir = tempfile::Builder::new()
            .prefix("slotcheck-bed-")
            .tempdir()
            .expect("a temp dir");
        let out = Command::new(HOSTS_SH)
            .args(["up", "3"])
            .arg(dir.path())
            .args(["--server", &kind.to_string(), "--binary"])
            .arg(&binary.path)
            .output()
            .expect("hosts.sh runs");
        let bed = Bed {
            dir,
            pids: Vec::new(),
        };
        assert_success("hosts.sh up", &out);
        bed
    }

    fn hosts(&self) -> PathBuf {
        self.dir.path().join("hosts.toml")
    }

    /// `key=value` lines of bed.env.
    fn env(&self, key: &str) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("bed.env")).expect("bed.env");
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .expect("key in bed.env");
        line.trim_matches('"').to_string()
    }

    /// Runs `script` on host `i` (1-based) over SSH, as the bed's client key.
    fn ssh(&self, i: usize, script: &str) -> String {
        let net = self.env("BED_NET");
        let ssh = self.dir.path().join("ssh");
        let out = Command::new("ssh")
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                ssh.join("known_hosts").display()
            ))
            .arg("-i")
            .arg(ssh.join("id_ed25519"))
            .arg(format!("root@198.18.{net}.{i}"))
            .arg(script)
            .output()
            .expect("ssh runs");
        assert_success(script, &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Remembers every pid the bed runs (sshds, servers) to check they are gone after `down`.
    fn note_pids(&mut self) {
        for i in 1..=3 {
            for file in ["sshd.pid", "server.pid"] {
                let path = self.dir.path().join(format!("host{i}")).join(file);
                if let Some(pid) = std::fs::read_to_string(path)
                    .ok()
                    .and_then(|p| p.trim().parse().ok())
                {
                    self.pids.push(pid);
                }
            }
        }
    }

    /// Takes the bed down and checks that nothing it made is left.
    fn down_and_check(mut self) {
        self.note_pids();
        let (tag, bridge) = (self.env("BED_TAG"), self.env("BED_BRIDGE"));
        let out = Command::new(HOSTS_SH)
            .arg("down")
            .arg(self.dir.path())
            .output()
            .expect("hosts.sh runs");
        assert_success("hosts.sh down", &out);
        let netns = run("ip", &["netns", "list"]);
        assert!(
            !netns.contains(&format!("sc{tag}-")),
            "namespaces left: {netns}"
        );
        let links = run("ip", &["-o", "link", "show"]);
        assert!(!links.contains(&bridge), "bridge {bridge} left");
        assert!(!links.contains(&format!("scv{tag}")), "veths left");
        let rules = run("iptables", &["-S"]);
        assert!(
            !rules.contains("SLOTCHECK-R"),
            "a host chain in the root namespace:\n{rules}"
        );
        for pid in &self.pids {
            assert!(
                !pid_alive(*pid),
                "pid {pid} (sshd or server) outlived the bed"
            );
        }
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = Command::new(HOSTS_SH)
            .arg("down")
            .arg(self.dir.path())
            .output();
    }
}

/// Runs a command and returns its stdout.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect("runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `slotcheck` with `args`; returns its output.
fn slotcheck(args: &[&str]) -> Output {
    support::slotcheck()
        .args(args)
        .output()
        .expect("slotcheck runs")
}

/// The run's duration.
fn duration() -> String {
    std::env::var("SLOTCHECK_REMOTE_DURATION").unwrap_or_else(|_| "30s".to_string())
}

/// Nemesis events of a history: `(f, phase, value)`.
fn nemesis(history: &Path) -> Vec<(String, String, Value)> {
    support::events(history)
        .into_iter()
        .filter(|e| e["process"] == "nemesis")
        .map(|e| {
            let f = e["f"].as_str().unwrap_or_default().to_string();
            let phase = e["value"]["phase"].as_str().unwrap_or_default().to_string();
            (f, phase, e["value"].clone())
        })
        .collect()
}

/// Keys on the node at `addr`.
fn dbsize(addr: &str) -> u64 {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let cli = slotcheck::harness::find_cli().expect("redis-cli");
    let out = Command::new(cli)
        .args(["-h", host, "-p", port, "DBSIZE"])
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a number")
}

/// The faults run on the hosts: every kind was done (begin and end without error; the kill
/// fault is a SIGKILL or, as the schedule draws it, a graceful SIGTERM `shutdown`), kills and
/// pauses name the pid they hit, partitions name who was cut off.
fn assert_faults_done(history: &Path) {
    let events = nemesis(history);
    let kinds: [&[&str]; 6] = [
        &["kill", "shutdown"],
        &["restart"],
        &["pause"],
        &["resume"],
        &["partition"],
        &["heal"],
    ];
    for fs in kinds {
        let ends: Vec<_> = events
            .iter()
            .filter(|(g, p, _)| fs.contains(&g.as_str()) && p == "end")
            .collect();
        assert!(!ends.is_empty(), "no {fs:?} ended in {}", history.display());
        for (f, _, value) in &ends {
            assert!(value.get("error").is_none(), "{f} failed: {value}");
        }
    }
    for (f, _, value) in &events {
        if ["kill", "shutdown", "pause", "resume"].contains(&f.as_str()) {
            assert!(value["pid"].as_u64().is_some(), "{f} names no pid: {value}");
        }
        if f == "partition" {
            assert!(value["isolated"].is_array(), "{value}");
        }
    }
}

/// One server family on a fresh bed: cluster up over SSH, a run with every host fault, (for
/// Redis) an attached run, cluster down, bed down, nothing left.
fn on_bed(kind: ServerKind, attach_too: bool) {
    let bed = Bed::up(kind);
    let hosts = bed.hosts();
    let hosts = hosts.to_str().expect("utf-8 path");
    assert_success(
        "cluster up",
        &slotcheck(&["cluster", "up", "--hosts", hosts, "--masters", "3"]),
    );
    let out_dir = bed.dir.path().join("run");
    let out = out_dir.to_str().expect("utf-8 path");
    let duration = duration();
    let run = slotcheck(&[
        "test",
        "--hosts",
        hosts,
        "--nemesis",
        "migrate,kill,pause,partition",
        "--replicas",
        "0",
        "--duration",
        &duration,
        "--nemesis-interval",
        "2s",
        "--fault-hold",
        "2s",
        "--seed",
        "1",
        "--output",
        out,
    ]);
    assert_success("test --hosts (verdict valid)", &run);
    let history = out_dir.join("history.jsonl");
    let header = support::header(&history);
    assert_eq!(header["server"], kind.to_string());
    assert!(
        header["attached"]["versions"]
            .as_object()
            .is_some_and(|v| v.len() == 3),
        "{header}"
    );
    assert_faults_done(&history);
    for i in 1..=3 {
        let log = out_dir.join("nodes").join(format!("n{i}.log"));
        assert!(
            std::fs::metadata(&log).is_ok_and(|m| m.len() > 0),
            "{} not copied",
            log.display()
        );
        let rules = bed.ssh(i, "iptables -S");
        assert!(
            !rules.contains("SLOTCHECK"),
            "host {i} kept rules:\n{rules}"
        );
    }
    let addrs: Vec<String> = (1..=3)
        .map(|i| format!("198.18.{}.{i}:6379", bed.env("BED_NET")))
        .collect();
    for addr in &addrs {
        assert_eq!(dbsize(addr), 0, "{addr} kept the run's keys");
    }
    if attach_too {
        attached_run(&bed, &addrs[1]);
        unreachable_host(&bed);
    }
    assert_success(
        "cluster down",
        &slotcheck(&["cluster", "down", "--hosts", hosts, "--wipe"]),
    );
    bed.down_and_check();
}

/// `--attach` by address alone: a valid run, recorded as attached, its keys removed; process
/// faults refused without hosts.
fn attached_run(bed: &Bed, addr: &str) {
    let out_dir = bed.dir.path().join("attached");
    let out = out_dir.to_str().expect("utf-8 path");
    let refused = slotcheck(&[
        "test",
        "--attach",
        addr,
        "--nemesis",
        "kill",
        "--output",
        out,
    ]);
    assert_eq!(
        refused.status.code(),
        Some(254),
        "kill without --hosts must be refused"
    );
    let run = slotcheck(&[
        "test",
        "--attach",
        addr,
        "--nemesis",
        "migrate",
        "--duration",
        "6s",
        "--seed",
        "5",
        "--output",
        out,
        "--force",
    ]);
    assert_success("test --attach (verdict valid)", &run);
    let header = support::header(&out_dir.join("history.jsonl"));
    assert_eq!(header["attached"]["seeds"][0], addr);
    assert!(nemesis(&out_dir.join("history.jsonl"))
        .iter()
        .any(|(f, _, _)| f == "migrate-end"));
    assert_eq!(dbsize(addr), 0, "{addr} kept the attached run's keys");
}

/// A host that cannot be reached is an error naming it before anything runs.
fn unreachable_host(bed: &Bed) {
    let net = bed.env("BED_NET");
    let text = std::fs::read_to_string(bed.hosts()).expect("hosts file");
    let bad = text.replace(
        &format!("host = \"198.18.{net}.3\""),
        &format!("host = \"198.18.{net}.99\""),
    );
    assert_ne!(bad, text, "the hosts file names host 3's SSH address");
    let path = bed.dir.path().join("bad-hosts.toml");
    std::fs::write(&path, bad).expect("write");
    let out_dir = bed.dir.path().join("unreachable");
    let run = slotcheck(&[
        "test",
        "--hosts",
        path.to_str().expect("utf-8 path"),
        "--duration",
        "3s",
        "--output",
        out_dir.to_str().expect("utf-8 path"),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        !run.status.success(),
        "an unreachable host must fail the run"
    );
    assert!(
        stderr.contains("reaching the hosts") && stderr.contains("host n3"),
        "{stderr}"
    );
    assert!(
        !out_dir.join("history.jsonl").exists(),
        "a run started anyway"
    );
}

#[test]
fn remote_hosts_redis_then_valkey() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    on_bed(ServerKind::Redis, true);
    match find_server(ServerKind::Valkey) {
        Ok(_) => on_bed(ServerKind::Valkey, false),
        Err(e) => eprintln!("valkey skipped: {e}"),
    }
}
