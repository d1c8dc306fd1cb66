//! Latency, loss and resets between clients and a node, made by a userspace TCP proxy of ours
//! (the harness's side of the nemesis's `slow` / `fast`).
//!
//! `tc netem` is not available in this kernel, so with `ClusterSpec::proxy` the harness starts one
//! [`Proxy`] per node, on the node's own address and another port, and the node announces it with
//! `cluster-announce-port` (its bus port stays its own port + 10000, so the cluster bus is direct).
//! `CLUSTER SLOTS`/`SHARDS`, `MOVED` and `ASK` then send clients through the proxy, and so is a
//! replica's replication link (a replica connects to its master's announced port); the harness and
//! the nemesis keep talking to the node's own port (`Node::addr`).
//!
//! What a relay can do to a TCP stream, per chunk read from one side (at most 16 KiB):
//! - **delay**: the chunk is written to the other side `delay_ms ± jitter_ms` after it was read, but
//!   never before the chunk read before it (TCP delivers in order): jitter bunches, never reorders.
//! - **loss**: a relay sees a byte stream, not packets; the kernel under it has already recovered
//!   every lost segment. What a lost segment does to a TCP connection, seen from above, is arrive one
//!   retransmission timeout late (Linux's minimum RTO is 200 ms) and hold up everything behind it.
//!   So with probability `loss` a chunk is held `rto_ms` longer, and the chunks after it wait.
//! - **reset**: with probability `reset` the chunk is not forwarded; both connections are closed
//!   with RST instead. A client that sent a request sees a lost connection: its operation is `info`.
//!
//! With a server bug on (`Proxy::set_bug`, module [`bug`]), connections accepted meanwhile are
//! relayed RESP-aware, one request at a time, and some requests are answered wrongly on purpose.
//!
//! Deterministic given a seed: each direction of each connection draws its fates from its own
//! ChaCha8 stream, keyed by the faults' `seed`, the connection's number (in accept order) and the
//! direction, restarted whenever the faults change.
//!
//! The proxy connects to the node from the client's own address, so iptables partitions that name
//! client or node addresses cut proxied traffic as they cut direct traffic. Dropping a `Proxy` (or
//! stopping its `Cluster`) aborts its listener and every connection: nothing outlives the run.
//!
//! The nemesis's `slow` / `fast` verbs (`nemesis::link`) set and clear a node's faults:
//!
//! ```no_run
//! # fn demo(cluster: &slotcheck::harness::Cluster) -> Result<(), slotcheck::harness::HarnessError> {
//! use slotcheck::harness::proxy::Faults;
//! let proxy = cluster.proxy(&cluster.nodes[0].addr).expect("started with proxies");
//! proxy.set_faults(Faults { delay_ms: 50, jitter_ms: 10, ..Faults::NONE })?;
//! proxy.set_faults(Faults::NONE)?;
//! eprintln!("relayed {:?}", proxy.take_stats());
//! # Ok(()) }
//! ```

pub mod bug;
mod inject;
mod relay;
mod resp;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::error::HarnessError;
use bug::BugConfig;
use relay::Shared;

/// Linux's minimum retransmission timeout: how late a "lost" chunk arrives by default.
pub const RTO_MS_DEFAULT: u64 = 200;
/// Longest delay or RTO we accept: anything longer is a partition, not a slow link.
const DELAY_MS_MAX: u64 = 10_000;

/// What the proxy does to every chunk it relays; `Faults::NONE` forwards at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Faults {
    /// Added latency per direction, in milliseconds.
    pub delay_ms: u64,
    /// Each chunk's delay is uniform in `delay_ms ± jitter_ms` (at most `delay_ms`).
    pub jitter_ms: u64,
    /// Probability that a chunk is "lost": held `rto_ms` longer, as a retransmitted segment is.
    pub loss: f64,
    /// The retransmission timeout a lost chunk waits.
    pub rto_ms: u64,
    /// Probability that a chunk resets the connection instead of being forwarded.
    pub reset: f64,
    /// Seeds the fate of every chunk.
    pub seed: u64,
}

impl Faults {
    /// No fault: every chunk is forwarded as soon as it is read.
    pub const NONE: Faults = Faults {
        delay_ms: 0,
        jitter_ms: 0,
        loss: 0.0,
        rto_ms: RTO_MS_DEFAULT,
        reset: 0.0,
        seed: 0,
    };

    /// Refuses faults outside our limits (probabilities outside 0..=1, delays past 10 s).
    pub fn validate(&self) -> Result<(), HarnessError> {
        let problem = if self.delay_ms > DELAY_MS_MAX || self.rto_ms > DELAY_MS_MAX {
            Some(format!(
                "delay_ms and rto_ms must be at most {DELAY_MS_MAX}"
            ))
        } else if self.jitter_ms > self.delay_ms {
            Some("jitter_ms must be at most delay_ms".to_string())
        } else if !(0.0..=1.0).contains(&self.loss) || !(0.0..=1.0).contains(&self.reset) {
            Some("loss and reset are probabilities, in 0..=1".to_string())
        } else {
            None
        };
        match problem {
            Some(p) => Err(HarnessError::InvalidFault(format!("{self:?}: {p}"))),
            None => Ok(()),
        }
    }
}

impl std::fmt::Display for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "delay {} ± {} ms, loss {} (RTO {} ms), reset {}, seed {}",
            self.delay_ms, self.jitter_ms, self.loss, self.rto_ms, self.reset, self.seed
        )
    }
}

/// What a proxy did since its counters were last taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProxyStats {
    /// Client connections accepted.
    pub connections: u64,
    /// Chunks read, both directions.
    pub chunks: u64,
    /// Chunks held for the RTO (emulated loss).
    pub held: u64,
    /// Connections reset.
    pub resets: u64,
}

/// A TCP proxy in front of one node, with faults that can be changed while it runs.
#[derive(Debug)]
pub struct Proxy {
    addr: String,
    upstream: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on `host:port` (port 0: any free port) and relays every connection to `upstream`
    /// (`ip:port`), faultless until `set_faults`. Must be called within a tokio runtime, on which
    /// the proxy runs.
    pub async fn start(host: &str, port: u16, upstream: &str) -> io::Result<Proxy> {
        let target: SocketAddr = upstream.parse().map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{upstream:?}: {e}"))
        })?;
        let listener = TcpListener::bind((host, port)).await?;
        let addr = listener.local_addr()?.to_string();
        let shared = Arc::new(Shared::new());
        let task = tokio::spawn(relay::accept_loop(listener, target, shared.clone()));
        Ok(Proxy {
            addr,
            upstream: upstream.to_string(),
            shared,
            task,
        })
    }

    /// Where clients connect: `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The node it relays to.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.shared.faults().0
    }

    /// Applies `faults` to every chunk read from now on (chunks already queued keep their time).
    pub fn set_faults(&self, faults: Faults) -> Result<(), HarnessError> {
        faults.validate()?;
        self.shared.set_faults(faults);
        Ok(())
    }

    /// Puts a server bug in force (see [`bug`]) for every request read from now on; `None` takes
    /// it off. Connections accepted while a bug is on relay RESP one request at a time and
    /// ignore chunk faults.
    pub fn set_bug(&self, bug: Option<BugConfig>) {
        self.shared.set_bug(bug);
    }

    /// How many requests the server bug hit since the last call, which zeroes the count.
    pub fn take_injected(&self) -> u64 {
        self.shared.injected.swap(0, Ordering::Relaxed)
    }

    /// The counters since the last call, which zeroes them.
    pub fn take_stats(&self) -> ProxyStats {
        self.shared.take_stats()
    }

    /// Closes the listener and every connection; dropping the proxy does the same.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    #[test]
    fn faults_outside_the_limits_are_refused() {
        let ok = Faults {
            delay_ms: 100,
            jitter_ms: 100,
            loss: 1.0,
            reset: 0.0,
            ..Faults::NONE
        };
        assert!(ok.validate().is_ok());
        for bad in [
            Faults {
                jitter_ms: 1,
                ..Faults::NONE
            },
            Faults {
                loss: 1.5,
                ..Faults::NONE
            },
            Faults {
                reset: f64::NAN,
                ..Faults::NONE
            },
            Faults {
                delay_ms: DELAY_MS_MAX + 1,
                ..Faults::NONE
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    /// An echo server behind a jittery proxy still gets every byte back, in order.
    #[tokio::test]
    async fn jitter_never_reorders_a_stream() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = echo.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let (mut r, mut w) = s.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        });
        let proxy = Proxy::start("127.0.0.1", 0, &upstream).await.unwrap();
        let f = Faults {
            delay_ms: 10,
            jitter_ms: 10,
            loss: 0.2,
            rto_ms: 30,
            seed: 5,
            ..Faults::NONE
        };
        proxy.set_faults(f).unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        client.set_nodelay(true).unwrap();
        let sent: Vec<u8> = (0..200u32).flat_map(|i| i.to_be_bytes()).collect();
        for piece in sent.chunks(4) {
            client.write_all(piece).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut back = vec![0u8; sent.len()];
        tokio::time::timeout(Duration::from_secs(20), client.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back, sent);
        let stats = proxy.take_stats();
        assert_eq!(stats.connections, 1);
        assert!(stats.held > 0, "{stats:?}");
    }
}
