//! Partitions on remote hosts, Jepsen style: each host drops, in its own iptables chain, the
//! packets that reach it from the hosts it is cut off from. The chain, `SLOTCHECK-R<pid>`
//! (`pid`: slotcheck's on the control node), is hooked into the host's INPUT and OUTPUT; it is
//! flushed by `heal` and removed from every host when dropped (at the end of the run, on error,
//! after Ctrl-C or SIGTERM). Chains of control processes that are gone are removed when the
//! next one is made.
//!
//! Node `x` cut off from node `y`: on `y`'s host, `-s x -j DROP` (and the same on `x`'s host
//! unless one-way). Clients cut off from node `x`: on `x`'s host, packets from the client
//! address to `x`'s port, and (unless one-way) packets from `x`'s port to the client address.
//! SSH from the control node is never matched (another source, another port).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::super::error::HarnessError;
use super::super::net::{sides, Partition, Sides};
use super::super::process::pid_alive;
use super::super::Node;
use super::ssh::Ssh;
use super::Remote;

/// Our chains on the hosts are named `SLOTCHECK-R<pid>`.
const CHAIN_PREFIX: &str = "SLOTCHECK-R";

/// One chain of ours on every host; dropping it removes them all.
#[derive(Debug)]
pub struct RemoteChains {
    remote: Arc<Remote>,
    name: String,
}

impl RemoteChains {
    /// Removes chains of dead control processes and makes and hooks ours on every host.
    pub fn new(remote: Arc<Remote>) -> Result<RemoteChains, HarnessError> {
        let name = format!("{CHAIN_PREFIX}{}", std::process::id());
        let chains = RemoteChains { remote, name };
        remove_stale_chains(&chains.remote)?;
        for spec in chains.remote.specs() {
            let ssh = chains.remote.ssh(&spec.addr)?;
            let n = &chains.name;
            ssh.run(&format!(
                "iptables -w 5 -N {n} && iptables -w 5 -I INPUT 1 -j {n} && iptables -w 5 -I OUTPUT 1 -j {n}"
            ))?;
        }
        Ok(chains)
    }

    /// The chain's name on every host.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Cuts the network as `p` says: each affected host gets its rules in one
    /// `iptables-restore --noflush`.
    pub fn cut(&self, nodes: &[Node], p: &Partition) -> Result<(), HarnessError> {
        let client = self.remote.file.client_addr.as_deref();
        for (addr, rules) in host_rules(nodes, p, client)? {
            let mut input = String::from("*filter\n");
            for rule in rules {
                input.push_str(&format!("-A {} {rule}\n", self.name));
            }
            input.push_str("COMMIT\n");
            self.remote
                .ssh(&addr)?
                .run_with("iptables-restore -w 5 --noflush", Some(&input))?;
        }
        Ok(())
    }

    /// Removes every cut in force on every host (flushes the chains).
    pub fn flush(&self) -> Result<(), HarnessError> {
        for spec in self.remote.specs() {
            self.remote
                .ssh(&spec.addr)?
                .run(&format!("iptables -w 5 -F {}", self.name))?;
        }
        Ok(())
    }
}

impl Drop for RemoteChains {
    fn drop(&mut self) {
        for spec in self.remote.specs() {
            let result = self
                .remote
                .ssh(&spec.addr)
                .and_then(|ssh| ssh.run(&remove_script(&self.name)));
            if let Err(e) = result {
                eprintln!(
                    "[ERR] could not remove iptables chain {} on {}: {e}; the next run removes it",
                    self.name, spec.name
                );
            }
        }
    }
}

/// Removes, from every host of `remote`, the chains of ours whose control process is gone (a
/// run SIGKILLed during a partition leaves its rules in force); returns how many.
pub fn remove_stale_chains(remote: &Remote) -> Result<usize, HarnessError> {
    let mut removed = 0;
    for spec in remote.specs() {
        removed += remove_stale(remote.ssh(&spec.addr)?)?;
    }
    Ok(removed)
}

/// Unhooks, flushes and deletes `chain` (each step may find it gone).
fn remove_script(chain: &str) -> String {
    format!(
        "iptables -w 5 -D INPUT -j {c} 2>/dev/null; iptables -w 5 -D OUTPUT -j {c} 2>/dev/null; \
         iptables -w 5 -F {c} 2>/dev/null; iptables -w 5 -X {c} 2>/dev/null; true",
        c = chain
    )
}

/// Removes the host's chains of ours whose control process is gone; returns how many.
fn remove_stale(ssh: &Ssh) -> Result<usize, HarnessError> {
    let rules = ssh.run("iptables -w 5 -S")?;
    let mut removed = 0;
    for chain in rules.lines().filter_map(|l| l.strip_prefix("-N ")) {
        let pid = chain
            .strip_prefix(CHAIN_PREFIX)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|pid| !pid_alive(pid)) {
            tracing::warn!(
                chain,
                "removing an iptables chain left by a dead slotcheck run"
            );
            ssh.run(&remove_script(chain))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The rules of `p` per host (by the node address living there), as words after `-A <chain>`.
fn host_rules(
    nodes: &[Node],
    p: &Partition,
    client: Option<&str>,
) -> Result<BTreeMap<String, Vec<String>>, HarnessError> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (from, to, one_way) = match sides(nodes, p)? {
        Sides::Nodes(from, to, one_way) => (from, to, one_way),
        Sides::Clients(node, one_way) => {
            let client = client.ok_or_else(|| {
                HarnessError::InvalidFault(
                    "a client partition needs `client_addr` in the hosts file".to_string(),
                )
            })?;
            let port = node.port;
            let mut rules = vec![format!("-s {client} -p tcp --dport {port} -j DROP")];
            if !one_way {
                rules.push(format!("-d {client} -p tcp --sport {port} -j DROP"));
            }
            out.insert(node.addr.clone(), rules);
            return Ok(out);
        }
    };
    for x in &from {
        for y in &to {
            if x.host == y.host {
                return Err(HarnessError::InvalidFault(format!(
                    "{} and {} share the host {}: a host partition needs one node per host",
                    x.addr, y.addr, x.host
                )));
            }
            let drop_from = |n: &Node| format!("-s {} -j DROP", n.host);
            out.entry(y.addr.clone()).or_default().push(drop_from(x));
            if !one_way {
                out.entry(x.addr.clone()).or_default().push(drop_from(y));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::Role;

    fn node(i: u8) -> Node {
        Node {
            addr: format!("198.18.0.{i}:6379"),
            host: format!("198.18.0.{i}"),
            port: 6379,
            id: format!("{i:040}"),
            pid: 1,
            role: Role::Master,
            dir: "/tmp".into(),
            log: "/tmp/log".into(),
        }
    }

    #[test]
    fn each_host_drops_what_reaches_it_from_the_other_side() {
        let nodes = [node(1), node(2), node(3)];
        let isolate = Partition::Isolate {
            node: nodes[0].addr.clone(),
            one_way: false,
        };
        let rules = host_rules(&nodes, &isolate, None).unwrap();
        assert_eq!(
            rules[&nodes[0].addr],
            ["-s 198.18.0.2 -j DROP", "-s 198.18.0.3 -j DROP"]
        );
        assert_eq!(rules[&nodes[1].addr], ["-s 198.18.0.1 -j DROP"]);
        let one_way = Partition::Isolate {
            node: nodes[0].addr.clone(),
            one_way: true,
        };
        let rules = host_rules(&nodes, &one_way, None).unwrap();
        assert!(!rules.contains_key(&nodes[0].addr));
        let clients = Partition::ClientsFrom {
            node: nodes[2].addr.clone(),
            one_way: false,
        };
        assert!(host_rules(&nodes, &clients, None).is_err());
        let rules = host_rules(&nodes, &clients, Some("198.18.0.254")).unwrap();
        assert_eq!(
            rules[&nodes[2].addr],
            [
                "-s 198.18.0.254 -p tcp --dport 6379 -j DROP",
                "-d 198.18.0.254 -p tcp --sport 6379 -j DROP"
            ]
        );
    }
}
