//! Who is in the cluster and which slots each master owns, from every reachable node's own view:
//! the map most nodes agree on is the reference, and any node that sees it otherwise is a finding.
//! A node that does not answer is a finding of its own (`node-unreachable`); the slots it owns in
//! the reference stay covered, and the others are checked among themselves.

use crate::harness::{parse_nodes, Admin, NodeLine, SLOT_COUNT};
use serde_json::json;
use std::collections::BTreeMap;

use super::finding::Finding;
use super::VerifyError;

/// Replies to large pipelines (16,384 counts, thousands of keys) may take a few seconds.
const RESPONSE_TIMEOUT_MS: u64 = 30_000;
/// How long a node may take to connect and answer `CLUSTER NODES` before it counts as
/// unreachable (a paused process accepts the connection but never answers).
const DISCOVER_TIMEOUT_MS: u64 = 5_000;

/// One reachable node: its connection, its own line, and the whole view it reported.
pub struct Member {
    /// Admin connection to the node.
    pub admin: Admin,
    /// The node's `myself` line.
    pub line: NodeLine,
    /// Every line it reported.
    pub view: Vec<NodeLine>,
}

impl Member {
    /// The node's `ip:port` (its own port, not an announced proxy's).
    pub fn addr(&self) -> &str {
        self.admin.addr()
    }

    /// Whether it is a replica.
    pub fn is_replica(&self) -> bool {
        self.line.is_replica()
    }
}

/// The cluster as verify sees it: members, the reference slot owners, and topology findings.
pub struct Topology {
    /// Every node that answered, masters first, each group by address.
    pub members: Vec<Member>,
    /// The owner's index in `members` of every slot (`None`: not covered, or its owner did not
    /// answer; [`Topology::reference`] tells which).
    pub owner: Vec<Option<usize>>,
    /// The owner's node id of every slot in the reference map (`None`: not covered).
    pub reference: Vec<Option<String>>,
    /// Nodes listed by some view that could not be reached (address and why).
    pub unreachable: Vec<(String, String)>,
}

impl Topology {
    /// Index of the member with cluster id `id`.
    pub fn by_id(&self, id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.line.id == id)
    }

    /// Whether `slot` is owned by a node that did not answer (its keys cannot be judged).
    pub fn owner_unreachable(&self, slot: usize) -> bool {
        self.owner[slot].is_none() && self.reference[slot].is_some()
    }

    /// A node as findings name it: its address as any member's view lists it, else its id.
    pub fn describe(&self, id: &str) -> String {
        self.members
            .iter()
            .flat_map(|m| m.view.iter())
            .find(|l| l.id == id)
            .map_or_else(|| format!("node {id}"), |l| l.addr.clone())
    }

    /// Slots owned by member `i`.
    pub fn slots_of(&self, i: usize) -> usize {
        self.owner.iter().filter(|o| **o == Some(i)).count()
    }
}

/// Connects to the seeds, then to every node any of them lists, and reads each one's view.
pub async fn discover(seeds: &[String]) -> Result<Topology, VerifyError> {
    let mut pending: Vec<String> = seeds.to_vec();
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    let mut members = Vec::new();
    let mut unreachable = Vec::new();
    while let Some(addr) = pending.pop() {
        if seen.insert(addr.clone(), ()).is_some() {
            continue;
        }
        let limit = std::time::Duration::from_millis(DISCOVER_TIMEOUT_MS);
        let member = match tokio::time::timeout(limit, connect(&addr)).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                unreachable.push((addr, e.to_string()));
                continue;
            }
            Err(_) => {
                let why = format!("no answer to CLUSTER NODES within {DISCOVER_TIMEOUT_MS} ms");
                unreachable.push((addr, why));
                continue;
            }
        };
        for line in &member.view {
            let usable = !line.has_flag("noaddr") && !line.has_flag("handshake");
            if usable && !seen.contains_key(&line.addr) {
                pending.push(line.addr.clone());
            }
        }
        members.push(member);
    }
    if members.is_empty() {
        return Err(VerifyError::NoNode {
            seeds: seeds.join(", "),
            why: unreachable
                .iter()
                .map(|(_, e)| e.clone())
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    members.sort_by(|a, b| {
        (a.is_replica(), a.addr().to_string()).cmp(&(b.is_replica(), b.addr().to_string()))
    });
    let reference = reference_owners(&members);
    let owner = reference
        .iter()
        .map(|id| {
            id.as_deref()
                .and_then(|id| members.iter().position(|m| m.line.id == id))
        })
        .collect();
    Ok(Topology {
        members,
        owner,
        reference,
        unreachable,
    })
}

async fn connect(addr: &str) -> Result<Member, VerifyError> {
    let mut admin = Admin::connect_with_timeout(addr, RESPONSE_TIMEOUT_MS).await?;
    let text = admin.text(&["CLUSTER", "NODES"]).await?;
    let view = parse_nodes(&text).ok_or_else(|| VerifyError::Reply {
        addr: addr.to_string(),
        detail: "malformed CLUSTER NODES reply".into(),
    })?;
    let line = view
        .iter()
        .find(|l| l.has_flag("myself"))
        .cloned()
        .ok_or_else(|| VerifyError::Reply {
            addr: addr.to_string(),
            detail: "CLUSTER NODES has no `myself` line".into(),
        })?;
    Ok(Member { admin, line, view })
}

/// Each member's slot owners by node id, as its own view says.
fn owners_in_view(view: &[NodeLine]) -> Vec<Option<&str>> {
    let mut owners = vec![None; SLOT_COUNT as usize];
    for line in view.iter().filter(|l| !l.is_replica()) {
        for &(lo, hi) in &line.slots {
            for slot in lo..=hi {
                owners[slot as usize] = Some(line.id.as_str());
            }
        }
    }
    owners
}

/// The slot owners (node ids) most members agree on.
fn reference_owners(members: &[Member]) -> Vec<Option<String>> {
    let views: Vec<Vec<Option<&str>>> = members.iter().map(|m| owners_in_view(&m.view)).collect();
    let mut votes: BTreeMap<&Vec<Option<&str>>, usize> = BTreeMap::new();
    for v in &views {
        *votes.entry(v).or_default() += 1;
    }
    let reference = votes
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(v, _)| (*v).clone())
        .unwrap_or_default();
    reference.iter().map(|id| id.map(str::to_string)).collect()
}

/// Topology findings: nodes that did not answer, members that see another slot map, open
/// slots, slots no one owns.
pub fn findings(topology: &Topology) -> Vec<Finding> {
    let mut found = unreachable(topology);
    for m in &topology.members {
        found.extend(disagreement(topology, m));
        found.extend(open_slots(m));
    }
    found.extend(uncovered(topology));
    found
}

/// A `node-unreachable` finding per listed node that did not answer.
fn unreachable(topology: &Topology) -> Vec<Finding> {
    let mut found = Vec::new();
    for (addr, why) in &topology.unreachable {
        let id = topology
            .members
            .iter()
            .flat_map(|m| m.view.iter())
            .find(|l| l.addr == *addr)
            .map(|l| l.id.as_str());
        let owned = match id {
            Some(id) => topology
                .reference
                .iter()
                .filter(|o| o.as_deref() == Some(id))
                .count(),
            None => 0,
        };
        found.push(Finding {
            class: "node-unreachable",
            node: addr.clone(),
            slot: None,
            keys: Vec::new(),
            text: format!(
                "{addr} is listed in the cluster but could not be checked: {why}{}",
                if owned > 0 {
                    format!(" (it owns {owned} slots, whose keys were not checked)")
                } else {
                    String::new()
                }
            ),
            data: json!({"why": why, "slots_owned": owned}),
        });
    }
    found
}

/// A `slot-map-disagreement` finding if member `m` sees another owner than the other nodes
/// for some slot.
fn disagreement(topology: &Topology, m: &Member) -> Option<Finding> {
    let reference: Vec<Option<&str>> = topology.reference.iter().map(|o| o.as_deref()).collect();
    let name = |id: Option<&str>| id.map_or("no node".to_string(), |id| topology.describe(id));
    let theirs = owners_in_view(&m.view);
    let differing: Vec<u16> = (0..SLOT_COUNT as usize)
        .filter(|&s| theirs[s] != reference[s])
        .map(|s| s as u16)
        .collect();
    if let Some(&first) = differing.first() {
        return Some(Finding {
            class: "slot-map-disagreement",
            node: m.addr().to_string(),
            slot: Some(first),
            keys: Vec::new(),
            text: format!(
                "{} sees another owner than the other nodes for {} slots (first: slot {first}, \
                 which it gives to {} instead of {})",
                m.addr(),
                differing.len(),
                name(theirs[first as usize]),
                name(reference[first as usize])
            ),
            data: json!({"slots": differing.len(), "first": first}),
        });
    }
    None
}

/// An `open-slot` finding per slot member `m` has open (migrating or importing).
fn open_slots(m: &Member) -> Vec<Finding> {
    let mut found = Vec::new();
    for open in &m.line.open_slots {
        let slot = open
            .trim_start_matches('[')
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|s| s.parse::<u16>().ok());
        found.push(Finding {
            class: "open-slot",
            node: m.addr().to_string(),
            slot,
            keys: Vec::new(),
            text: format!(
                "{} has slot {} open: {open} (a migration was started and never finished or \
                 rolled back)",
                m.addr(),
                slot.map_or("?".to_string(), |s| s.to_string())
            ),
            data: json!({"entry": open}),
        });
    }
    found
}

/// An `uncovered-slot` finding if some slot has no owner.
fn uncovered(topology: &Topology) -> Option<Finding> {
    let uncovered: Vec<u16> = (0..SLOT_COUNT as usize)
        .filter(|&s| topology.reference[s].is_none())
        .map(|s| s as u16)
        .collect();
    let first = *uncovered.first()?;
    Some(Finding {
        class: "uncovered-slot",
        node: "-".to_string(),
        slot: Some(first),
        keys: Vec::new(),
        text: format!(
            "{} slots have no owner (first: slot {first}): their keys cannot be served",
            uncovered.len()
        ),
        data: json!({"slots": uncovered.len(), "first": first}),
    })
}
