//! A throwaway Redis Cluster of masters on free local ports, stopped (by pid) when dropped.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const REDIS_SERVER: &str = "/usr/bin/redis-server";
pub const REDIS_CLI: &str = "/usr/bin/redis-cli";

/// Next port to try; shared so that tests in one binary never pick the same ports.
static NEXT_PORT: Mutex<u16> = Mutex::new(0);

/// A running cluster; dropping it kills every server it started and removes its directory.
pub struct Cluster {
    pub ports: Vec<u16>,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Cluster {
    /// Starts `masters` servers and joins them into a cluster, or `None` without redis-server.
    pub fn start(masters: usize) -> Option<Cluster> {
        if !Path::new(REDIS_SERVER).exists() || !Path::new(REDIS_CLI).exists() {
            eprintln!("skipping: {REDIS_SERVER} or {REDIS_CLI} not found");
            return None;
        }
        let ports = free_ports(masters);
        let name = format!("slotcheck-wl-{}-{}", std::process::id(), ports[0]);
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = Cluster {
            ports: ports.clone(),
            dir: dir.clone(),
            children: Vec::new(),
        };
        for &port in &ports {
            let log = std::fs::File::create(dir.join(format!("{port}.log"))).unwrap();
            let child = Command::new(REDIS_SERVER)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--cluster-node-timeout", "5000"])
                .args(["--dir", dir.to_str().unwrap()])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .stdout(log)
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            cluster.children.push(child);
        }
        for &port in &ports {
            wait_for(|| cli(port, &["PING"]).trim() == "PONG", "server up");
        }
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new(REDIS_CLI)
            .args(["--cluster", "create"])
            .args(&addrs)
            .arg("--cluster-yes")
            .output()
            .expect("redis-cli --cluster create");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        for &port in &ports {
            let ok = || cli(port, &["CLUSTER", "INFO"]).contains("cluster_state:ok");
            wait_for(ok, "cluster_state:ok");
        }
        Some(cluster)
    }

    /// Every node's `host:port`.
    pub fn seeds(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs one redis-cli command against a local port and returns its output.
pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new(REDIS_CLI)
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(mut ok: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `n` ports in 30000..31999 whose client and bus ports (+10000) are free.
fn free_ports(n: usize) -> Vec<u16> {
    let mut next = NEXT_PORT.lock().unwrap_or_else(|p| p.into_inner());
    if *next == 0 {
        *next = 30000 + (std::process::id() % 1900) as u16;
    }
    let mut ports = Vec::new();
    for _ in 0..2000 {
        let candidate = *next;
        *next = if candidate >= 31999 {
            30000
        } else {
            candidate + 1
        };
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(candidate) && free(candidate + 10000) {
            ports.push(candidate);
            if ports.len() == n {
                return ports;
            }
        }
    }
    panic!("no {n} free ports in 30000..31999");
}
