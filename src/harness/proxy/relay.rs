//! The relay behind a [`Proxy`](super::Proxy): accepts clients, connects each to the node from the
//! client's own address, and copies both directions chunk by chunk, each chunk at the time its fate
//! (drawn from a seeded stream) says, never before the chunk read before it.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::bug::{BugConfig, BugState};
use super::{Faults, ProxyStats};

/// Largest chunk read at once.
pub(super) const CHUNK_BYTES_MAX: usize = 16 * 1024;
/// Chunks in flight per direction before the reader stops reading (TCP backpressure takes over).
const QUEUE_CHUNKS_MAX: usize = 1024;
/// Connections one proxy relays at once; more are closed at accept.
const CONNECTIONS_MAX: usize = 4096;
/// How long the proxy tries to reach the node for a new client connection.
const CONNECT_TIMEOUT_MS: u64 = 5000;

/// What the relays did since the counters were last taken (see `ProxyStats`).
#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    chunks: AtomicU64,
    held: AtomicU64,
    resets: AtomicU64,
}

/// State shared by a proxy's handle and its tasks.
#[derive(Debug)]
pub(super) struct Shared {
    /// The faults in force and their generation (bumped by every change, so connections reseed).
    faults: Mutex<(Faults, u64)>,
    /// Every connection ever accepted, to number them.
    accepted: AtomicU64,
    counters: Counters,
    /// The server bug in force, if any (connections accepted meanwhile relay RESP).
    bug: Mutex<Option<Arc<BugConfig>>>,
    /// What the bug remembers across connections.
    pub(super) bug_state: Mutex<BugState>,
    /// Requests the bug hit since the count was last taken.
    pub(super) injected: AtomicU64,
}

impl Shared {
    /// No faults, no connections yet.
    pub(super) fn new() -> Shared {
        Shared {
            faults: Mutex::new((Faults::NONE, 0)),
            accepted: AtomicU64::new(0),
            counters: Counters::default(),
            bug: Mutex::new(None),
            bug_state: Mutex::new(BugState::default()),
            injected: AtomicU64::new(0),
        }
    }

    /// The server bug in force.
    pub(super) fn bug(&self) -> Option<Arc<BugConfig>> {
        self.bug.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `bug` in force for every request read from now on (`None`: none).
    pub(super) fn set_bug(&self, bug: Option<BugConfig>) {
        *self.bug.lock().unwrap_or_else(|e| e.into_inner()) = bug.map(Arc::new);
    }

    /// The faults in force and their generation.
    pub(super) fn faults(&self) -> (Faults, u64) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `faults` in force for every chunk read from now on.
    pub(super) fn set_faults(&self, faults: Faults) {
        let mut guard = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        *guard = (faults, guard.1 + 1);
    }

    /// The counters since the last call, which zeroes them.
    pub(super) fn take_stats(&self) -> ProxyStats {
        let c = &self.counters;
        ProxyStats {
            connections: c.connections.swap(0, Ordering::Relaxed),
            chunks: c.chunks.swap(0, Ordering::Relaxed),
            held: c.held.swap(0, Ordering::Relaxed),
            resets: c.resets.swap(0, Ordering::Relaxed),
        }
    }
}

/// Accepts clients until aborted; aborting drops the `JoinSet`, which aborts every relay.
pub(super) async fn accept_loop(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    let mut relays = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) if relays.len() < CONNECTIONS_MAX => {
                    let conn = shared.accepted.fetch_add(1, Ordering::Relaxed);
                    shared.counters.connections.fetch_add(1, Ordering::Relaxed);
                    relays.spawn(relay(client, peer.ip(), target, shared.clone(), conn));
                }
                Ok(_) => tracing::warn!(%target, "proxy at {CONNECTIONS_MAX} connections: refused one"),
                Err(error) => {
                    // Out of file descriptors, most likely: let relays end before trying again.
                    tracing::warn!(%error, %target, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = relays.join_next(), if !relays.is_empty() => {}
        }
    }
}

/// Which way a chunk travels; also names the RNG stream of each direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToNode = 0,
    ToClient = 1,
}

/// How one direction of a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The sender closed its side; everything read was delivered and the side closed after it.
    Eof,
    /// A fate said reset.
    Reset,
    /// A read or write failed, or the other direction stopped the relay.
    Stopped,
}

/// Relays one client connection to the node in both directions.
async fn relay(client: TcpStream, from: IpAddr, target: SocketAddr, shared: Arc<Shared>, n: u64) {
    let node = match connect_from(from, target).await {
        Ok(node) => node,
        Err(error) => {
            // As close as a relay gets to "connection refused": the client's connection is reset.
            tracing::debug!(%error, %target, "proxy cannot reach the node");
            let _ = client.set_zero_linger();
            return;
        }
    };
    let _ = (client.set_nodelay(true), node.set_nodelay(true));
    if shared.bug().is_some() {
        return super::inject::relay(client, node, shared, n).await;
    }
    let (mut client_r, mut client_w) = client.into_split();
    let (mut node_r, mut node_w) = node.into_split();
    let stop = CancellationToken::new();
    let (up, down) = tokio::join!(
        pipe(
            &mut client_r,
            &mut node_w,
            Direction::ToNode,
            n,
            &shared,
            &stop
        ),
        pipe(
            &mut node_r,
            &mut client_w,
            Direction::ToClient,
            n,
            &shared,
            &stop
        ),
    );
    if up == End::Reset || down == End::Reset {
        shared.counters.resets.fetch_add(1, Ordering::Relaxed);
        // Zero linger makes the close an RST; `forget` skips the FIN a write half sends on drop.
        let _ = client_r.as_ref().set_zero_linger();
        let _ = node_r.as_ref().set_zero_linger();
        client_w.forget();
        node_w.forget();
    }
}

/// Connects to `target` from `ip` (a loopback address: the client's), bounded in time.
async fn connect_from(ip: IpAddr, target: SocketAddr) -> io::Result<TcpStream> {
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if ip.is_loopback() && ip.is_ipv4() == target.is_ipv4() {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let timeout = Duration::from_millis(CONNECT_TIMEOUT_MS);
    tokio::time::timeout(timeout, socket.connect(target))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// Copies `from` to `to`, each chunk at the time its fate says, in order.
async fn pipe(
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    dir: Direction,
    conn: u64,
    shared: &Shared,
    stop: &CancellationToken,
) -> End {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE_CHUNKS_MAX);
    let read = async move {
        let mut rng: Option<(ChaCha8Rng, u64)> = None;
        let mut last_due = Instant::now();
        let mut buf = vec![0u8; CHUNK_BYTES_MAX];
        loop {
            let n = tokio::select! {
                _ = stop.cancelled() => return End::Stopped,
                read = from.read(&mut buf) => match read {
                    Ok(0) => return End::Eof,
                    Ok(n) => n,
                    Err(_) => { stop.cancel(); return End::Stopped }
                },
            };
            let now = Instant::now();
            let (faults, generation) = shared.faults();
            let rng = match &mut rng {
                Some((rng, g)) if *g == generation => rng,
                slot => {
                    &mut slot
                        .insert((stream_rng(faults.seed, conn, dir), generation))
                        .0
                }
            };
            shared.counters.chunks.fetch_add(1, Ordering::Relaxed);
            let Fate::Forward { delay_ms, held } = fate(rng, &faults) else {
                stop.cancel();
                return End::Reset;
            };
            if held {
                shared.counters.held.fetch_add(1, Ordering::Relaxed);
            }
            let due = (now + Duration::from_millis(delay_ms)).max(last_due);
            last_due = due;
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                return End::Stopped;
            }
        }
    };
    let write = async {
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return End::Stopped,
                next = rx.recv() => next,
            };
            let Some((due, chunk)) = next else {
                let _ = to.shutdown().await;
                return End::Eof;
            };
            let deliver = async {
                // The timer ticks in whole milliseconds: a chunk due now must not wait for a tick.
                if due > Instant::now() {
                    tokio::time::sleep_until(due).await;
                }
                to.write_all(&chunk).await
            };
            tokio::select! {
                _ = stop.cancelled() => return End::Stopped,
                written = deliver => if written.is_err() {
                    stop.cancel();
                    return End::Stopped;
                },
            }
        }
    };
    match tokio::join!(read, write) {
        (End::Reset, _) => End::Reset,
        (End::Eof, End::Eof) => End::Eof,
        _ => End::Stopped,
    }
}

/// What happens to one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Forward it `delay_ms` after it was read (and not before the chunk before it); `held` if it
    /// was "lost", its delay then including the RTO.
    Forward { delay_ms: u64, held: bool },
    /// Reset the connection instead.
    Reset,
}

/// The fate of the next chunk, drawn from `rng`.
fn fate(rng: &mut ChaCha8Rng, f: &Faults) -> Fate {
    if f.reset > 0.0 && rng.random_bool(f.reset) {
        return Fate::Reset;
    }
    let mut delay_ms = f.delay_ms;
    if f.jitter_ms > 0 {
        delay_ms = (delay_ms + rng.random_range(0..=2 * f.jitter_ms)).saturating_sub(f.jitter_ms);
    }
    let held = f.loss > 0.0 && rng.random_bool(f.loss);
    if held {
        delay_ms += f.rto_ms;
    }
    Fate::Forward { delay_ms, held }
}

/// The RNG of one direction of connection `conn`: its own ChaCha8 stream under `seed`.
fn stream_rng(seed: u64, conn: u64, dir: Direction) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(conn.wrapping_mul(2) + dir as u64);
    rng
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fates(f: &Faults, conn: u64, n: usize) -> Vec<Fate> {
        let mut rng = stream_rng(f.seed, conn, Direction::ToNode);
        (0..n).map(|_| fate(&mut rng, f)).collect()
    }

    fn delays(fates: &[Fate]) -> Vec<u64> {
        fates
            .iter()
            .map(|f| match f {
                Fate::Forward { delay_ms, .. } => *delay_ms,
                Fate::Reset => panic!("unexpected reset"),
            })
            .collect()
    }

    #[test]
    fn no_faults_forward_at_once() {
        let all = fates(&Faults::NONE, 0, 100);
        assert!(all.iter().all(|f| *f
            == Fate::Forward {
                delay_ms: 0,
                held: false
            }));
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_the_seed_decides() {
        let f = Faults {
            delay_ms: 50,
            jitter_ms: 10,
            seed: 7,
            ..Faults::NONE
        };
        let d = delays(&fates(&f, 3, 2000));
        assert!(d.iter().all(|&ms| (40..=60).contains(&ms)), "{d:?}");
        assert!(d.contains(&40) && d.contains(&60), "both ends are reached");
        assert_eq!(d, delays(&fates(&f, 3, 2000)), "same seed and connection");
        assert_ne!(d, delays(&fates(&f, 4, 2000)), "another connection");
        let other = Faults { seed: 8, ..f };
        assert_ne!(d, delays(&fates(&other, 3, 2000)), "another seed");
    }

    #[test]
    fn loss_holds_about_p_of_the_chunks_for_the_rto() {
        let f = Faults {
            delay_ms: 5,
            loss: 0.1,
            rto_ms: 200,
            seed: 1,
            ..Faults::NONE
        };
        let all = fates(&f, 0, 10_000);
        let held = all
            .iter()
            .filter(|x| {
                **x == Fate::Forward {
                    delay_ms: 205,
                    held: true,
                }
            })
            .count();
        let on_time = all
            .iter()
            .filter(|x| {
                **x == Fate::Forward {
                    delay_ms: 5,
                    held: false,
                }
            })
            .count();
        assert_eq!(held + on_time, all.len());
        assert!(
            (800..=1200).contains(&held),
            "{held} of 10000 held at p = 0.1"
        );
    }

    #[test]
    fn reset_one_always_resets() {
        let f = Faults {
            reset: 1.0,
            ..Faults::NONE
        };
        assert!(fates(&f, 0, 50).iter().all(|x| *x == Fate::Reset));
    }
}
