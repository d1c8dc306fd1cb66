//! What one node believes about the cluster, parsed from `CLUSTER NODES` and `CLUSTER INFO`.
//!
//! Pure parsing, so the readiness rules are unit-tested without servers. The `CLUSTER NODES` format is
//! the same in Redis 7.0 and Valkey 9.1: `<id> <ip:port@cport[,hostname]> <flags> <master|-> <ping-sent>
//! <pong-recv> <config-epoch> <link-state> <slot ranges and open slots...>`.

use std::collections::BTreeMap;

use super::ports::BUS_PORT_OFFSET;

/// Number of hash slots in a Redis Cluster.
pub const SLOT_COUNT: u32 = checker::slot::SLOT_COUNT as u32;
/// The most lines we accept in one `CLUSTER NODES` reply; a limit on what we parse.
const NODE_LINES_MAX: usize = 1000;

/// One line of `CLUSTER NODES`: one node as seen by the node we asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLine {
    /// The cluster node id.
    pub id: String,
    /// `ip:port` of the node itself, where admin connections go (`Node::addr`): the bus port minus
    /// 10000, as the harness always sets it, so that a node announcing a proxy is still named by
    /// its own port.
    pub addr: String,
    /// `ip:port` as the node announces it to clients (`CLUSTER SLOTS`, `MOVED`): its proxy's with
    /// `ClusterSpec::proxy`, else `addr`.
    pub client_addr: String,
    /// Flags such as `myself`, `master`, `slave`, `fail?`, `handshake`.
    pub flags: Vec<String>,
    /// The master's id for a replica, `None` for `-`.
    pub master_id: Option<String>,
    /// Owned slot ranges, inclusive.
    pub slots: Vec<(u16, u16)>,
    /// Raw `[slot->-id]` / `[slot-<-id]` entries: slots being migrated or imported.
    pub open_slots: Vec<String>,
}

impl NodeLine {
    /// Whether the line carries `flag`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// A flag that means this node is not (yet) a healthy, known member.
    pub fn troubled(&self) -> bool {
        ["handshake", "fail", "fail?", "noaddr"]
            .iter()
            .any(|f| self.has_flag(f))
    }

    /// Whether this line is a replica (Redis says `slave`; Valkey 9 also says `slave`, accept both).
    pub fn is_replica(&self) -> bool {
        self.has_flag("slave") || self.has_flag("replica")
    }

    /// Whether this node serves `slot`.
    pub fn owns(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(lo, hi)| lo <= slot && slot <= hi)
    }
}

/// Parses a `CLUSTER NODES` reply; `None` if a line is malformed.
pub fn parse_nodes(text: &str) -> Option<Vec<NodeLine>> {
    let mut lines = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if lines.len() == NODE_LINES_MAX {
            return None;
        }
        lines.push(parse_node_line(line)?);
    }
    Some(lines)
}

fn parse_node_line(line: &str) -> Option<NodeLine> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 8 {
        return None;
    }
    let endpoint = fields[1].split(',').next()?;
    let (client_addr, bus_port) = match endpoint.split_once('@') {
        Some((addr, bus)) => (addr, bus.parse::<u16>().ok()),
        None => (endpoint, None),
    };
    let addr = match (client_addr.rsplit_once(':'), bus_port) {
        (Some((ip, _)), Some(bus)) if bus > BUS_PORT_OFFSET => {
            format!("{ip}:{}", bus - BUS_PORT_OFFSET)
        }
        _ => client_addr.to_string(),
    };
    let mut slots = Vec::new();
    let mut open_slots = Vec::new();
    for entry in &fields[8..] {
        if entry.starts_with('[') {
            open_slots.push(entry.to_string());
        } else if let Some((start, end)) = entry.split_once('-') {
            slots.push((start.parse().ok()?, end.parse().ok()?));
        } else {
            let slot = entry.parse().ok()?;
            slots.push((slot, slot));
        }
    }
    Some(NodeLine {
        id: fields[0].to_string(),
        addr,
        client_addr: client_addr.to_string(),
        flags: fields[2].split(',').map(str::to_string).collect(),
        master_id: (fields[3] != "-").then(|| fields[3].to_string()),
        slots,
        open_slots,
    })
}

/// Slot ranges and their owners' ids, sorted and merged: two nodes agree iff their maps are equal.
pub(crate) type SlotMap = Vec<(u16, u16, String)>;

/// The slot map in a `CLUSTER NODES` view.
pub(crate) fn slot_map(lines: &[NodeLine]) -> SlotMap {
    let mut ranges: Vec<(u16, u16, String)> = lines
        .iter()
        .flat_map(|l| l.slots.iter().map(|&(s, e)| (s, e, l.id.clone())))
        .collect();
    ranges.sort();
    let mut merged: SlotMap = Vec::with_capacity(ranges.len());
    for (start, end, owner) in ranges {
        match merged.last_mut() {
            Some(last) if last.2 == owner && u32::from(last.1) + 1 == u32::from(start) => {
                last.1 = end
            }
            _ => merged.push((start, end, owner)),
        }
    }
    merged
}

/// How many slots a map assigns (overlaps counted twice, which makes a broken map visible).
pub(crate) fn slots_assigned(map: &SlotMap) -> u32 {
    map.iter()
        .map(|(s, e, _)| u32::from(*e) - u32::from(*s) + 1)
        .sum()
}

/// Parses `key:value` lines of `CLUSTER INFO` or `INFO`, skipping `#` headers.
pub(crate) fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Splits all slots evenly over `masters` masters: master `i` gets one contiguous range.
pub(crate) fn even_ranges(masters: usize) -> Vec<(u16, u16)> {
    assert!(masters > 0 && masters as u32 <= SLOT_COUNT);
    let masters = masters as u32;
    (0..masters)
        .map(|i| {
            let start = i * SLOT_COUNT / masters;
            let end = (i + 1) * SLOT_COUNT / masters - 1;
            (start as u16, end as u16)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
a1 127.0.0.1:20001@30001 myself,master - 0 0 1 connected 0-5460 [5461->-b2]
b2 127.0.0.1:20002@30002,host master - 0 1700000000000 2 connected 5461-10922
c3 127.0.0.1:20003@30003 master - 0 1700000000000 3 connected 10923-16383
d4 127.0.0.1:20004@30004 slave a1 0 1700000000000 1 connected
e5 127.0.0.1:20005@30005 handshake - 0 0 0 disconnected
";

    #[test]
    fn nodes_lines_parse_into_ids_roles_slots_and_open_slots() {
        let lines = parse_nodes(NODES).unwrap();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0].addr, "127.0.0.1:20001");
        assert_eq!(lines[1].addr, "127.0.0.1:20002");
        assert_eq!(lines[1].client_addr, "127.0.0.1:20002");
        assert_eq!(lines[0].open_slots, vec!["[5461->-b2]".to_string()]);
        assert!(lines[3].is_replica());
        assert_eq!(lines[3].master_id.as_deref(), Some("a1"));
        assert!(lines[4].troubled());
        assert!(!lines[0].troubled());
        let map = slot_map(&lines);
        assert_eq!(map.len(), 3);
        assert_eq!(slots_assigned(&map), SLOT_COUNT);
    }

    #[test]
    fn a_node_announcing_a_proxy_is_named_by_its_own_port() {
        let line = "a1 127.0.0.10:41234@30001 myself,master - 0 0 1 connected 0-16383\n";
        let lines = parse_nodes(line).unwrap();
        assert_eq!(lines[0].addr, "127.0.0.10:20001");
        assert_eq!(lines[0].client_addr, "127.0.0.10:41234");
        let noaddr = parse_nodes("b2 :0@0 master,noaddr - 0 0 2 disconnected\n").unwrap();
        assert_eq!(noaddr[0].addr, ":0");
    }

    #[test]
    fn adjacent_ranges_of_one_owner_merge() {
        let lines =
            parse_nodes("x 1.2.3.4:1@2 master - 0 0 1 connected 0-9 10 11-20 30\n").unwrap();
        assert_eq!(
            slot_map(&lines),
            vec![(0, 20, "x".to_string()), (30, 30, "x".to_string())]
        );
    }

    #[test]
    fn malformed_lines_are_rejected() {
        assert!(parse_nodes("too few fields\n").is_none());
        assert!(parse_nodes("x 1.2.3.4:1@2 master - 0 0 1 connected zz\n").is_none());
    }

    #[test]
    fn even_ranges_cover_every_slot_once() {
        for masters in [1, 3, 5, 7] {
            let ranges = even_ranges(masters);
            assert_eq!(ranges[0].0, 0);
            assert_eq!(ranges[masters - 1].1 as u32, SLOT_COUNT - 1);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].1 + 1, pair[1].0);
            }
        }
    }

    #[test]
    fn info_lines_become_a_map() {
        let info = parse_info("# Cluster\r\ncluster_state:ok\r\ncluster_known_nodes:3\r\n");
        assert_eq!(info["cluster_state"], "ok");
        assert_eq!(info["cluster_known_nodes"], "3");
    }
}
