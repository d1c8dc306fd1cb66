//! The network under a cluster on loopback, cut with iptables: the plumbing of the nemesis's
//! `partition` / `heal` (`nemesis::net`).
//!
//! Needs a cluster started with `ClusterSpec::distinct_hosts`: node i then listens on, and connects
//! from, its own `127.0.0.(10+i)`, while clients connect from 127.0.0.1, so a rule can tell
//! node-to-node traffic (cluster bus and replication) from client traffic by address. Every rule also
//! names the nodes' ports, so two clusters on the same addresses (parallel tests) never cut each other.
//!
//! A [`Chain`] owns one iptables chain, `SLOTCHECK-<pid>-<n>`, hooked into INPUT for loopback
//! packets; it removes chain and hook when dropped (also on panic). A run that died without
//! dropping it (SIGKILL, a second Ctrl-C) leaves a chain whose pid is dead: the next `Chain::new`
//! (or `cleanup_stale`) removes it.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Serialize;

use super::error::HarnessError;
use super::ports::BUS_PORT_OFFSET;
use super::process::pid_alive;
use super::Node;

/// Our chains are named `SLOTCHECK-<pid>-<n>`: the pid tells a later run whether the owner is gone.
const CHAIN_PREFIX: &str = "SLOTCHECK-";
/// Seconds iptables may wait for the xtables lock (`-w`), so a stuck holder cannot hang us.
const LOCK_WAIT_S: &str = "5";
/// Where clients connect from.
const CLIENT_HOST: &str = "127.0.0.1";
/// Numbers the chains of one process, so several chains (parallel tests) never share one.
static NEXT_CHAIN: AtomicU32 = AtomicU32::new(0);

/// Who cannot reach whom. Nodes are named by `Node::addr`. `one_way` cuts only the packets *from* the
/// first party (`a`, `node`, the clients) to the second; note that TCP needs both directions, so a
/// one-way cut also stalls connections the second party opens (its SYN-ACKs or ACKs get lost).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Partition {
    /// Nodes in `a` and nodes in `b` cannot reach each other: cluster bus and data ports.
    Nodes {
        /// One side.
        a: Vec<String>,
        /// The other side.
        b: Vec<String>,
        /// Cut only packets from `a` to `b`.
        one_way: bool,
    },
    /// `node` and every other node of the cluster cannot reach each other.
    Isolate {
        /// The node cut off.
        node: String,
        /// Cut only packets from `node` to the others.
        one_way: bool,
    },
    /// Clients (at 127.0.0.1) cannot reach `node`'s data port; nodes still can.
    ClientsFrom {
        /// The node clients lose.
        node: String,
        /// Cut only packets from clients to `node` (its replies would still flow).
        one_way: bool,
    },
}

/// What [`Partition::sides`] calls the clients (at 127.0.0.1).
pub const CLIENTS: &str = "clients";

impl Partition {
    /// The side cut off and what it is cut off from, as node addresses (or [`CLIENTS`]): for
    /// `nodes`, `a` and `b`; for `isolate`, the node and every other node of `nodes`; for
    /// `clients_from`, the node and the clients.
    pub fn sides(&self, nodes: &[Node]) -> (Vec<String>, Vec<String>) {
        match self {
            Partition::Nodes { a, b, .. } => (a.clone(), b.clone()),
            Partition::Isolate { node, .. } => {
                let rest = nodes.iter().map(|n| n.addr.clone());
                (vec![node.clone()], rest.filter(|a| a != node).collect())
            }
            Partition::ClientsFrom { node, .. } => (vec![node.clone()], vec![CLIENTS.to_string()]),
        }
    }
}

/// Whether this machine can make partitions: root, and a working `iptables` / `iptables-restore`.
pub fn available() -> Result<(), HarnessError> {
    let unavailable = |why: String| HarnessError::Unavailable {
        what: "network partitions (iptables)".to_string(),
        why,
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Err(unavailable(format!("not running as root (euid {euid})")));
    }
    iptables(&["-S", "INPUT"]).map_err(|e| unavailable(e.to_string()))?;
    run("iptables-restore", &["--version"], None).map_err(|e| unavailable(e.to_string()))?;
    Ok(())
}

/// Removes `SLOTCHECK-<pid>-*` chains (and their hooks) whose process is gone; returns how many.
/// Chains of live processes, this one included, are left alone.
pub fn cleanup_stale() -> Result<usize, HarnessError> {
    let rules = iptables(&["-S"])?;
    let stale: Vec<&str> = rules
        .lines()
        .filter_map(|line| line.strip_prefix("-N "))
        .map(str::trim)
        .filter(|chain| chain_pid(chain).is_some_and(|pid| !pid_alive(pid)))
        .collect();
    for chain in &stale {
        tracing::warn!(
            chain,
            "removing an iptables chain left by a dead slotcheck run"
        );
        remove_chain(chain, &rules)?;
    }
    Ok(stale.len())
}

/// The pid in a chain name of ours, `SLOTCHECK-<pid>-<n>` (or `SLOTCHECK-<pid>`).
fn chain_pid(chain: &str) -> Option<u32> {
    let rest = chain.strip_prefix(CHAIN_PREFIX)?;
    rest.split('-').next()?.parse().ok()
}

/// Unhooks (every `-A <builtin> ... -j chain` line of `rules`), flushes and deletes `chain`.
fn remove_chain(chain: &str, rules: &str) -> Result<(), HarnessError> {
    let jump = format!("-j {chain}");
    for line in rules
        .lines()
        .filter(|l| l.starts_with("-A ") && l.ends_with(&jump))
    {
        let mut words: Vec<&str> = line.split_whitespace().collect();
        words[0] = "-D";
        iptables(&words)?;
    }
    iptables(&["-F", chain])?;
    iptables(&["-X", chain])?;
    Ok(())
}

/// One iptables chain of ours, `SLOTCHECK-<pid>-<n>`, hooked into INPUT for loopback packets;
/// dropping it removes chain and hook (also on panic).
#[derive(Debug)]
pub struct Chain {
    name: String,
}

impl Chain {
    /// Checks `available`, removes stale chains of dead runs, and creates and hooks a new chain.
    pub fn new() -> Result<Chain, HarnessError> {
        available()?;
        // A failed cleanup (say, another run removing the same chain) must not stop this run.
        if let Err(e) = cleanup_stale() {
            tracing::warn!(error = %e, "could not remove stale iptables chains");
        }
        let n = NEXT_CHAIN.fetch_add(1, Ordering::Relaxed);
        let name = format!("{CHAIN_PREFIX}{}-{n}", std::process::id());
        iptables(&["-N", &name])?;
        // From here on Drop removes the chain, also if hooking fails.
        let chain = Chain { name };
        // Only INPUT: on loopback every packet passes OUTPUT and then INPUT, so either hook sees it.
        // A DROP in OUTPUT fails the sender's send/connect at once with EPERM, which no real network
        // does; a DROP in INPUT loses the packet after it was "sent", so the sender sees what a real
        // partition looks like: silence, retransmissions, a timeout.
        iptables(&["-I", "INPUT", "1", "-i", "lo", "-j", &chain.name])?;
        Ok(chain)
    }

    /// The chain's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Cuts the network between `nodes` (and clients) as `p` says, in addition to cuts already in
    /// force; all rules of one partition go in at once (`iptables-restore --noflush`), so no
    /// half-made partition is seen.
    pub fn cut(&self, nodes: &[Node], p: &Partition) -> Result<(), HarnessError> {
        let rules = rules(nodes, p)?;
        let mut input = String::from("*filter\n");
        for rule in rules {
            input.push_str(&format!("-A {} {}\n", self.name, rule.join(" ")));
        }
        input.push_str("COMMIT\n");
        run(
            "iptables-restore",
            &["-w", LOCK_WAIT_S, "--noflush"],
            Some(&input),
        )
        .map(drop)
    }

    /// Removes every cut in force (flushes the chain); the chain stays, ready for the next.
    pub fn flush(&self) -> Result<(), HarnessError> {
        iptables(&["-F", &self.name]).map(drop)
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        let result = iptables(&["-S"]).and_then(|rules| remove_chain(&self.name, &rules));
        if let Err(e) = result {
            tracing::error!(chain = %self.name, error = %e, "could not remove our iptables chain");
            eprintln!(
                "[ERR] could not remove iptables chain {}: {e}; the next run removes it",
                self.name
            );
        }
    }
}

/// Who a partition cuts off from whom, by node.
pub(crate) enum Sides<'n> {
    /// Packets from each node of the first side to each of the second are dropped (and back,
    /// unless one way).
    Nodes(Vec<&'n Node>, Vec<&'n Node>, bool),
    /// The clients are cut off from this node (and it from them, unless one way).
    Clients(&'n Node, bool),
}

/// The nodes on each side of `p`, found among `nodes`: the one reading of a partition that the
/// local (loopback) and the remote (per host) rules share.
pub(crate) fn sides<'n>(nodes: &'n [Node], p: &Partition) -> Result<Sides<'n>, HarnessError> {
    let find = |addr: &String| {
        nodes.iter().find(|n| &n.addr == addr).ok_or_else(|| {
            HarnessError::InvalidFault(format!("{addr} is not a node of this cluster"))
        })
    };
    Ok(match p {
        Partition::Nodes { a, b, one_way } => {
            let a = a.iter().map(find).collect::<Result<Vec<_>, _>>()?;
            let b = b.iter().map(find).collect::<Result<Vec<_>, _>>()?;
            Sides::Nodes(a, b, *one_way)
        }
        Partition::Isolate { node, one_way } => {
            let node = find(node)?;
            let rest = nodes.iter().filter(|n| n.addr != node.addr).collect();
            Sides::Nodes(vec![node], rest, *one_way)
        }
        Partition::ClientsFrom { node, one_way } => Sides::Clients(find(node)?, *one_way),
    })
}

/// The DROP rules for `p`, each as the words after `-A <chain>`.
fn rules(nodes: &[Node], p: &Partition) -> Result<Vec<Vec<String>>, HarnessError> {
    let (from, to, one_way) = match sides(nodes, p)? {
        Sides::Nodes(from, to, one_way) => (from, to, one_way),
        Sides::Clients(node, one_way) => return clients_rules(node, one_way),
    };
    if from.is_empty() || to.is_empty() {
        return Err(HarnessError::InvalidFault(format!(
            "{p:?} has an empty side"
        )));
    }
    let mut out = Vec::new();
    for x in &from {
        for y in &to {
            if x.host == y.host {
                return Err(HarnessError::InvalidFault(format!(
                    "{} and {} share the address {}: start the cluster with distinct_hosts",
                    x.addr, y.addr, x.host
                )));
            }
            out.extend(drop_rules(x, y));
            if !one_way {
                out.extend(drop_rules(y, x));
            }
        }
    }
    Ok(out)
}

/// Drops every packet from node `x` to node `y`: on connections `x` opened to `y`'s ports, and on
/// connections `y` opened to `x`'s ports (`x`'s replies).
fn drop_rules(x: &Node, y: &Node) -> [Vec<String>; 2] {
    let ports = |n: &Node| format!("{},{}", n.port, n.port + BUS_PORT_OFFSET);
    let rule = |dir: &str, ports: String| -> Vec<String> {
        let words = [
            "-s",
            &x.host,
            "-d",
            &y.host,
            "-p",
            "tcp",
            "-m",
            "multiport",
            dir,
            &ports,
            "-j",
            "DROP",
        ];
        words.iter().map(|w| w.to_string()).collect()
    };
    [rule("--dports", ports(y)), rule("--sports", ports(x))]
}

/// Drops client packets to `node`'s data port and, unless `one_way`, its replies to clients.
fn clients_rules(node: &Node, one_way: bool) -> Result<Vec<Vec<String>>, HarnessError> {
    if node.host == CLIENT_HOST {
        return Err(HarnessError::InvalidFault(format!(
            "{} listens on the clients' address {CLIENT_HOST}, so its peers would be cut too: \
             start the cluster with distinct_hosts",
            node.addr
        )));
    }
    let port = node.port.to_string();
    let words = |s: &str, d: &str, dir: &str| -> Vec<String> {
        ["-s", s, "-d", d, "-p", "tcp", dir, &port, "-j", "DROP"]
            .iter()
            .map(|w| w.to_string())
            .collect()
    };
    let mut out = vec![words(CLIENT_HOST, &node.host, "--dport")];
    if !one_way {
        out.push(words(&node.host, CLIENT_HOST, "--sport"));
    }
    Ok(out)
}

/// Runs `iptables -w <LOCK_WAIT_S> <args>` and returns its stdout.
fn iptables(args: &[&str]) -> Result<String, HarnessError> {
    let mut all = vec!["-w", LOCK_WAIT_S];
    all.extend_from_slice(args);
    run("iptables", &all, None)
}

/// Runs a command to completion (iptables is bounded by its `-w` lock wait), feeding `stdin` if
/// given; a non-zero exit becomes `HarnessError::Tool` with its stderr.
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, HarnessError> {
    let cmd = format!("{program} {}", args.join(" "));
    let failed = |stderr: String| HarnessError::Tool {
        cmd: cmd.clone(),
        stderr,
    };
    let out = output_with(Command::new(program).args(args), stdin).map_err(failed)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(failed(format!("{}: {stderr}", out.status)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `command` to completion, writing `stdin` (if given) to it, and returns its output; an
/// error says which step failed (start, stdin, wait). Shared by the local tools and `ssh`.
pub(crate) fn output_with(
    command: &mut Command,
    stdin: Option<&str>,
) -> Result<std::process::Output, String> {
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("writing stdin: {e}"))?;
    }
    child
        .wait_with_output()
        .map_err(|e| format!("waiting: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::Role;

    fn node(i: u8, host: &str) -> Node {
        Node {
            addr: format!("{host}:2000{i}"),
            host: host.to_string(),
            port: 20000 + u16::from(i),
            id: format!("{i:040}"),
            pid: 1,
            role: Role::Master,
            dir: "/tmp".into(),
            log: "/tmp/log".into(),
        }
    }

    fn lines(rules: &[Vec<String>]) -> Vec<String> {
        rules.iter().map(|r| r.join(" ")).collect()
    }

    #[test]
    fn sides_name_the_cut_off_nodes_and_what_they_lose() {
        let nodes = [
            node(1, "127.0.0.11"),
            node(2, "127.0.0.12"),
            node(3, "127.0.0.13"),
        ];
        let addr = |i: usize| nodes[i].addr.clone();
        let isolate = Partition::Isolate {
            node: addr(1),
            one_way: false,
        };
        assert_eq!(
            isolate.sides(&nodes),
            (vec![addr(1)], vec![addr(0), addr(2)])
        );
        let clients = Partition::ClientsFrom {
            node: addr(0),
            one_way: true,
        };
        assert_eq!(
            clients.sides(&nodes),
            (vec![addr(0)], vec![CLIENTS.to_string()])
        );
        let halves = Partition::Nodes {
            a: vec![addr(0), addr(1)],
            b: vec![addr(2)],
            one_way: false,
        };
        assert_eq!(
            halves.sides(&nodes),
            (vec![addr(0), addr(1)], vec![addr(2)])
        );
    }

    #[test]
    fn one_way_cuts_only_packets_from_a_to_b() {
        let nodes = [node(1, "127.0.0.11"), node(2, "127.0.0.12")];
        let p = Partition::Nodes {
            a: vec![nodes[0].addr.clone()],
            b: vec![nodes[1].addr.clone()],
            one_way: true,
        };
        assert_eq!(
            lines(&rules(&nodes, &p).unwrap()),
            [
                "-s 127.0.0.11 -d 127.0.0.12 -p tcp -m multiport --dports 20002,30002 -j DROP",
                "-s 127.0.0.11 -d 127.0.0.12 -p tcp -m multiport --sports 20001,30001 -j DROP",
            ]
        );
    }

    #[test]
    fn isolate_cuts_both_ways_to_every_other_node() {
        let nodes = [
            node(1, "127.0.0.11"),
            node(2, "127.0.0.12"),
            node(3, "127.0.0.13"),
        ];
        let p = Partition::Isolate {
            node: nodes[0].addr.clone(),
            one_way: false,
        };
        let rules = lines(&rules(&nodes, &p).unwrap());
        assert_eq!(rules.len(), 8);
        assert!(rules.iter().all(|r| r.contains("127.0.0.11")));
    }

    #[test]
    fn clients_rules_name_the_data_port_only() {
        let n = node(1, "127.0.0.11");
        assert_eq!(
            lines(&clients_rules(&n, false).unwrap()),
            [
                "-s 127.0.0.1 -d 127.0.0.11 -p tcp --dport 20001 -j DROP",
                "-s 127.0.0.11 -d 127.0.0.1 -p tcp --sport 20001 -j DROP",
            ]
        );
    }

    #[test]
    fn shared_addresses_and_unknown_nodes_are_refused() {
        let nodes = [node(1, "127.0.0.1"), node(2, "127.0.0.1")];
        let isolate = Partition::Isolate {
            node: nodes[0].addr.clone(),
            one_way: false,
        };
        assert!(matches!(
            rules(&nodes, &isolate),
            Err(HarnessError::InvalidFault(_))
        ));
        let clients = Partition::ClientsFrom {
            node: nodes[0].addr.clone(),
            one_way: false,
        };
        assert!(matches!(
            rules(&nodes, &clients),
            Err(HarnessError::InvalidFault(_))
        ));
        let unknown = Partition::ClientsFrom {
            node: "127.0.0.9:1".to_string(),
            one_way: true,
        };
        assert!(matches!(
            rules(&nodes, &unknown),
            Err(HarnessError::InvalidFault(_))
        ));
    }

    #[test]
    fn chain_names_carry_the_pid() {
        assert_eq!(chain_pid("SLOTCHECK-1234-0"), Some(1234));
        assert_eq!(chain_pid("SLOTCHECK-1234"), Some(1234));
        assert_eq!(chain_pid("DOCKER-USER"), None);
    }
}
