//! The relay of a connection accepted while a server bug is on (see [`super::bug`]): one RESP
//! request at a time, each forwarded, answered by the proxy, or both, as the bug says.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::bug::{BugConfig, Request, ServerBug};
use super::relay::{Shared, CHUNK_BYTES_MAX};
use super::resp;

/// Both ends of one relayed connection and what was read from each but not yet used.
struct Conn {
    client: TcpStream,
    node: TcpStream,
    from_client: Vec<u8>,
    from_node: Vec<u8>,
}

fn malformed(e: resp::RespError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl Conn {
    /// The client's next complete command, or `None` once it closed.
    async fn command(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; CHUNK_BYTES_MAX];
        loop {
            if let Some(n) = resp::frame_len(&self.from_client).map_err(malformed)? {
                return Ok(Some(self.from_client.drain(..n).collect()));
            }
            let n = self.client.read(&mut buf).await?;
            if n == 0 {
                return Ok(None);
            }
            self.from_client.extend_from_slice(&buf[..n]);
        }
    }

    /// Sends `frame` to the node and returns its complete reply; stops early if the client
    /// closes meanwhile (what it sends meanwhile is kept for later).
    async fn exchange(&mut self, frame: &[u8]) -> io::Result<Vec<u8>> {
        self.node.write_all(frame).await?;
        let Conn {
            client,
            node,
            from_client,
            from_node,
        } = self;
        let (mut a, mut b) = (vec![0u8; CHUNK_BYTES_MAX], vec![0u8; CHUNK_BYTES_MAX]);
        loop {
            if let Some(n) = resp::frame_len(from_node).map_err(malformed)? {
                return Ok(from_node.drain(..n).collect());
            }
            tokio::select! {
                read = node.read(&mut a) => match read? {
                    0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                    n => from_node.extend_from_slice(&a[..n]),
                },
                read = client.read(&mut b) => match read? {
                    0 => return Err(io::ErrorKind::ConnectionAborted.into()),
                    n => from_client.extend_from_slice(&b[..n]),
                },
            }
        }
    }

    /// From the replication handshake on, a plain byte relay in both directions.
    async fn plain(mut self, frame: &[u8]) -> io::Result<()> {
        self.node.write_all(frame).await?;
        self.node.write_all(&self.from_client).await?;
        self.client.write_all(&self.from_node).await?;
        tokio::io::copy_bidirectional(&mut self.client, &mut self.node).await?;
        Ok(())
    }
}

/// Relays connection number `n` until either side closes, injecting the bug in force at each
/// request (none: forwarded as it is).
pub(super) async fn relay(client: TcpStream, node: TcpStream, shared: Arc<Shared>, n: u64) {
    let conn = Conn {
        client,
        node,
        from_client: Vec::new(),
        from_node: Vec::new(),
    };
    if let Err(error) = run(conn, &shared, n).await {
        tracing::debug!(%error, "bug-injecting relay ended");
    }
}

async fn run(mut conn: Conn, shared: &Shared, n: u64) -> io::Result<()> {
    let mut rng = None;
    let mut after_prefix = false;
    while let Some(frame) = conn.command().await? {
        let request = Request::of(&resp::args(&frame));
        if request == Request::Replication {
            return conn.plain(&frame).await;
        }
        let config = shared.bug();
        let hit = match &config {
            Some(cfg) if request.key().is_some() && !after_prefix => {
                let rng = rng.get_or_insert_with(|| cfg.rng(n));
                cfg.draw(rng)
            }
            _ => false,
        };
        let (reply, again) = match &config {
            Some(cfg) => answer(&mut conn, shared, cfg, &request, &frame, hit).await?,
            None => (conn.exchange(&frame).await?, None),
        };
        conn.client.write_all(&reply).await?;
        if let Some(dup) = again {
            let reply = conn.exchange(&dup).await?;
            if reply == b"+OK\r\n" {
                let key = request.key().unwrap_or_default();
                injected(shared, ServerBug::DuplicateWrite, key);
            }
        }
        after_prefix = request == Request::Prefix;
    }
    Ok(())
}

fn injected(shared: &Shared, bug: ServerBug, key: &[u8]) {
    shared.injected.fetch_add(1, Ordering::Relaxed);
    let key = String::from_utf8_lossy(key);
    tracing::info!(%bug, %key, "server bug injected");
}

/// The reply the client gets to `frame`, and a request to send to the node once it has it.
async fn answer(
    conn: &mut Conn,
    shared: &Shared,
    cfg: &BugConfig,
    request: &Request,
    frame: &[u8],
    hit: bool,
) -> io::Result<(Vec<u8>, Option<Vec<u8>>)> {
    let state = || shared.bug_state.lock().unwrap_or_else(|e| e.into_inner());
    let (key, value) = match request {
        Request::Write { key, value } | Request::Cas { key, value } => (key, value),
        Request::Read { key } => {
            if hit && cfg.bug == ServerBug::StaleRead {
                let stale = state().stale(key);
                if let Some(old) = stale {
                    injected(shared, cfg.bug, key);
                    return Ok((resp::bulk(&old), None));
                }
            }
            return Ok((conn.exchange(frame).await?, None));
        }
        _ => return Ok((conn.exchange(frame).await?, None)),
    };
    let is_set = matches!(request, Request::Write { .. });
    if cfg.bug == ServerBug::MovedAfterApply && state().is_moved_resend(key, frame) {
        return Ok((moved(cfg, key), None));
    }
    if hit && is_set && cfg.bug == ServerBug::LostWrite {
        injected(shared, cfg.bug, key);
        return Ok((b"+OK\r\n".to_vec(), None));
    }
    let reply = conn.exchange(frame).await?;
    let applied = reply == b"+OK\r\n" || (!is_set && reply == b":1\r\n");
    if !applied {
        return Ok((reply, None));
    }
    let mut state = state();
    state.written(key, value);
    let again = match cfg.bug {
        ServerBug::DuplicateWrite => {
            let again = state.take_duplicate(key, frame);
            if hit && is_set && again.is_none() {
                state.duplicate_later(key, frame);
            }
            again
        }
        ServerBug::MovedAfterApply if hit => {
            state.moved(key, frame);
            drop(state);
            injected(shared, cfg.bug, key);
            return Ok((moved(cfg, key), None));
        }
        _ => None,
    };
    Ok((reply, again))
}

/// A `MOVED` reply for `key` to one of the other nodes (the same one for every resend).
fn moved(cfg: &BugConfig, key: &[u8]) -> Vec<u8> {
    let slot = workloads::key_slot(key);
    let to = match cfg.peers.len() {
        0 => "127.0.0.1:1",
        n => cfg.peers[usize::from(slot) % n].as_str(),
    };
    format!("-MOVED {slot} {to}\r\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::super::bug::{BugConfig, ServerBug};
    use super::super::resp;
    use super::super::Proxy;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A node that answers `+OK` to every command but `GET` (`$-1`), noting each command's name.
    async fn fake_node(seen: Arc<Mutex<Vec<String>>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 4096];
            loop {
                while let Some(n) = resp::frame_len(&buf).unwrap() {
                    let frame: Vec<u8> = buf.drain(..n).collect();
                    let name = String::from_utf8(resp::args(&frame)[0].clone()).unwrap();
                    let reply: &[u8] = if name == "GET" {
                        b"$-1\r\n"
                    } else {
                        b"+OK\r\n"
                    };
                    seen.lock().unwrap().push(name);
                    s.write_all(reply).await.unwrap();
                }
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        });
        addr
    }

    /// With `lost-write` at p = 1, pipelined `SET`s are acknowledged in order and never reach
    /// the node; the `GET` behind them does.
    #[tokio::test]
    async fn lost_writes_are_acknowledged_in_order_and_not_forwarded() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let proxy = Proxy::start("127.0.0.1", 0, &fake_node(seen.clone()).await)
            .await
            .unwrap();
        proxy.set_bug(Some(BugConfig {
            bug: ServerBug::LostWrite,
            p: 1.0,
            seed: 1,
            peers: vec![],
        }));
        let mut client = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
        let mut sent = resp::command(&[b"SET", b"k", b"1"]);
        sent.extend(resp::command(&[b"SET", b"k", b"2"]));
        sent.extend(resp::command(&[b"GET", b"k"]));
        client.write_all(&sent).await.unwrap();
        let want = b"+OK\r\n+OK\r\n$-1\r\n";
        let mut back = vec![0u8; want.len()];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(back, want);
        assert_eq!(*seen.lock().unwrap(), vec!["GET".to_string()]);
        assert_eq!(proxy.take_injected(), 2);
    }
}
