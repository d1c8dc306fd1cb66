//! Free port pairs for cluster nodes: `port` for clients and `port + 10000` for the cluster bus.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Mutex;

use super::error::HarnessError;

/// Lowest client port we hand out.
const PORT_MIN: u16 = 20000;
/// Highest client port we hand out; the bus port is at most 39999.
const PORT_MAX: u16 = 29999;
/// Redis derives the cluster bus port as `port + 10000`.
pub(crate) const BUS_PORT_OFFSET: u16 = 10000;

/// Ports leased to clusters of this process and not yet released, so concurrent tests never share one.
static LEASED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Client ports reserved for one cluster in this process; released when dropped.
#[derive(Debug)]
pub(crate) struct PortLease {
    ports: Vec<u16>,
}

impl PortLease {
    /// The leased client ports, in the order nodes use them.
    pub(crate) fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// No ports: a cluster we did not start (attached, or on other hosts) leases none.
    pub(crate) fn none() -> PortLease {
        PortLease { ports: Vec::new() }
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let mut leased = LEASED.lock().unwrap_or_else(|e| e.into_inner());
        for port in &self.ports {
            leased.remove(port);
        }
    }
}

/// Leases one client port per host (node i listens on `hosts[i]`) whose port and bus port are both
/// bindable now on that host, scanning from a random base so that concurrent processes rarely collide
/// (a collision that still happens is retried by the caller). Ports stay distinct across hosts, so a
/// port alone still names a node of this process.
pub(crate) fn lease_ports(hosts: &[String]) -> Result<PortLease, HarnessError> {
    let count = hosts.len();
    let range_len = usize::from(PORT_MAX - PORT_MIN) + 1;
    assert!(
        count > 0 && count <= range_len,
        "port count {count} out of range"
    );
    let base = rand::random_range(PORT_MIN..=PORT_MAX);
    let mut leased = LEASED.lock().unwrap_or_else(|e| e.into_inner());
    let mut ports = Vec::with_capacity(count);
    // The scan is bounded by the size of the range: every candidate is tried at most once.
    for offset in 0..range_len {
        let port = PORT_MIN + ((usize::from(base - PORT_MIN) + offset) % range_len) as u16;
        let host = hosts[ports.len()].as_str();
        if !leased.contains(&port)
            && bindable_on(host, port)
            && bindable_on(host, port + BUS_PORT_OFFSET)
        {
            ports.push(port);
            if ports.len() == count {
                break;
            }
        }
    }
    if ports.len() < count {
        return Err(HarnessError::NoFreePorts {
            count,
            attempts: range_len,
        });
    }
    leased.extend(ports.iter().copied());
    Ok(PortLease { ports })
}

/// Whether we can bind `host`:`port` right now (the listener is closed again at once).
pub(crate) fn bindable_on(host: &str, port: u16) -> bool {
    TcpListener::bind((host, port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_distinct_and_released_on_drop() {
        let hosts = vec!["127.0.0.1".to_string(); 4];
        let a = lease_ports(&hosts).unwrap();
        let distinct: Vec<String> = (10..14).map(|i| format!("127.0.0.{i}")).collect();
        let b = lease_ports(&distinct).unwrap();
        let all: BTreeSet<u16> = a.ports().iter().chain(b.ports()).copied().collect();
        assert_eq!(all.len(), 8);
        assert!(all.iter().all(|p| (PORT_MIN..=PORT_MAX).contains(p)));
        let first = a.ports()[0];
        drop(a);
        assert!(!LEASED.lock().unwrap().contains(&first));
    }
}
