//! One request on one node's connection, with the outcome sorted into what the router needs.
//!
//! A router's connection is direct: a TCP stream it owns, one request at a time, written and
//! read by the task that sends it. (A multiplexed connection hands every request to a driver
//! task and the reply back through a channel; at 50 clients that doubled the median latency
//! against `redis-benchmark`, see `slotcheck bench client`.) Framing is done here, parsing by
//! `redis::parse_redis_value`, so replies mean exactly what they mean to redis-rs.

use redis::{Cmd, RedisError, Value};
use std::io::{Error as IoError, ErrorKind as IoKind};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// What came back from sending one request to one node.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The server answered with a value (not an error).
    Value(Value),
    /// The server answered with an error reply, or the client met an error after sending.
    Error(RedisError),
    /// No answer within the timeout, or an answer of the wrong shape: the request may have run.
    Lost(String),
}

impl Reply {
    /// Whether the connection is still in step after this reply: the server answered it whole.
    /// After a timeout or an I/O or parse error a late or partial reply may follow, so the
    /// connection must be dropped.
    pub(crate) fn keeps_connection(&self) -> bool {
        match self {
            Reply::Value(_) => true,
            Reply::Error(e) => matches!(
                e.kind(),
                redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
            ),
            Reply::Lost(_) => false,
        }
    }
}

/// A connection to one node, owned by one router: requests go out one at a time.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: BufReader<TcpStream>,
    /// The raw bytes of the reply being read, reused between requests.
    frame: Vec<u8>,
    /// The packed request being written, reused between requests.
    request: Vec<u8>,
}

/// Opens a connection to `addr` (`host:port`), giving up after `timeout`.
pub(crate) async fn connect(addr: &str, timeout: Duration) -> Result<Conn, RedisError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(result) => result?,
        Err(_) => {
            let text = format!("connect timed out after {} ms", timeout.as_millis());
            return Err(IoError::new(IoKind::TimedOut, text).into());
        }
    };
    stream.set_nodelay(true)?;
    Ok(Conn {
        stream: BufReader::new(stream),
        frame: Vec::new(),
        request: Vec::new(),
    })
}

/// Sends `cmd`, preceded in the same write by `prefix` (`ASKING`, or `READONLY` for the
/// `write-to-replica` test aid) if given, and waits at most `timeout` for the reply to `cmd` (the
/// prefix's reply is read and dropped).
///
/// `ASKING` and the command go out as one write, so that no retry or other request can come
/// between them and consume or lose the one-shot `ASKING` flag.
pub(crate) async fn send(
    conn: &mut Conn,
    cmd: &Cmd,
    prefix: Option<&str>,
    timeout: Duration,
) -> Reply {
    conn.request.clear();
    if let Some(prefix) = prefix {
        redis::cmd(prefix).write_packed_command(&mut conn.request);
    }
    cmd.write_packed_command(&mut conn.request);
    let request = async {
        conn.stream.get_mut().write_all(&conn.request).await?;
        if prefix.is_some() {
            read_frame(&mut conn.stream, &mut conn.frame).await?;
        }
        read_frame(&mut conn.stream, &mut conn.frame).await?;
        redis::parse_redis_value(&conn.frame)
    };
    match tokio::time::timeout(timeout, request).await {
        Err(_) => Reply::Lost(format!("timeout after {} ms", timeout.as_millis())),
        Ok(Err(e)) => Reply::Error(e),
        Ok(Ok(Value::ServerError(e))) => Reply::Error(e.into()),
        Ok(Ok(value)) => Reply::Value(value),
    }
}

/// Sends every command of `cmds` in one write (a pipeline), preceded by `prefix` if given, and
/// reads one reply per command, in order, within `timeout` for the whole batch. `Err` means the
/// batch as a whole got no usable answer (a timeout, an I/O or parse error): any of its commands
/// may have run, and the connection must be dropped. Error replies are per command, in the vector.
pub(crate) async fn send_pipeline(
    conn: &mut Conn,
    cmds: &[&Cmd],
    prefix: Option<&str>,
    timeout: Duration,
) -> Result<Vec<Result<Value, RedisError>>, String> {
    conn.request.clear();
    if let Some(prefix) = prefix {
        redis::cmd(prefix).write_packed_command(&mut conn.request);
    }
    for cmd in cmds {
        cmd.write_packed_command(&mut conn.request);
    }
    let request = async {
        conn.stream.get_mut().write_all(&conn.request).await?;
        if prefix.is_some() {
            read_frame(&mut conn.stream, &mut conn.frame).await?;
        }
        let mut replies = Vec::with_capacity(cmds.len());
        for _ in cmds {
            read_frame(&mut conn.stream, &mut conn.frame).await?;
            replies.push(match redis::parse_redis_value(&conn.frame)? {
                Value::ServerError(e) => Err(e.into()),
                value => Ok(value),
            });
        }
        Ok::<_, RedisError>(replies)
    };
    match tokio::time::timeout(timeout, request).await {
        Err(_) => Err(format!("timeout after {} ms", timeout.as_millis())),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(replies)) => Ok(replies),
    }
}

/// Reads the raw bytes of one whole RESP2 or RESP3 value into `frame` (cleared first).
async fn read_frame(
    stream: &mut BufReader<TcpStream>,
    frame: &mut Vec<u8>,
) -> Result<(), RedisError> {
    frame.clear();
    let mut pending: u64 = 1; // values still to read, nested aggregates included
    while pending > 0 {
        pending -= 1;
        let start = frame.len();
        if stream.read_until(b'\n', frame).await? == 0 {
            return Err(IoError::new(IoKind::UnexpectedEof, "connection closed").into());
        }
        match frame_header(&frame[start..])? {
            Header::Line => {}
            Header::Blob(len) => {
                let at = frame.len();
                frame.resize(at + len + 2, 0);
                stream.read_exact(&mut frame[at..]).await?;
            }
            Header::Aggregate(values) => pending += values,
        }
    }
    Ok(())
}

/// What follows one RESP header line.
#[derive(Debug, PartialEq, Eq)]
enum Header {
    /// Nothing: the line is the whole value.
    Line,
    /// `len` bytes and a CRLF.
    Blob(usize),
    /// This many more values.
    Aggregate(u64),
}

/// Reads one header line (with its CRLF): the type byte and, for blobs and aggregates, the length.
fn frame_header(line: &[u8]) -> Result<Header, RedisError> {
    let bad = |why: &str| {
        let text = format!("{why}: {:?}", String::from_utf8_lossy(line));
        RedisError::from((redis::ErrorKind::Parse, "bad reply", text))
    };
    let body = line
        .strip_suffix(b"\r\n")
        .ok_or_else(|| bad("line without CRLF"))?;
    let (&kind, rest) = body.split_first().ok_or_else(|| bad("empty line"))?;
    let length = || -> Result<i64, RedisError> {
        std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad length"))
    };
    let count = |per: u64| -> Result<Header, RedisError> {
        let n = length()?;
        Ok(Header::Aggregate(if n < 0 { 0 } else { n as u64 * per }))
    };
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Header::Line),
        b'$' | b'=' | b'!' => match length()? {
            n if n < 0 => Ok(Header::Line),
            n => Ok(Header::Blob(n as usize)),
        },
        b'*' | b'~' | b'>' => count(1),
        b'%' => count(2),
        // An attribute map, then the value it describes.
        b'|' => count(2).map(|h| match h {
            Header::Aggregate(n) => Header::Aggregate(n + 1),
            other => other,
        }),
        _ => Err(bad("unknown type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_say_what_follows() {
        let table: &[(&[u8], Header)] = &[
            (b"+OK\r\n", Header::Line),
            (b"-MOVED 1 127.0.0.1:1\r\n", Header::Line),
            (b":42\r\n", Header::Line),
            (b"$5\r\n", Header::Blob(5)),
            (b"$0\r\n", Header::Blob(0)),
            (b"$-1\r\n", Header::Line),
            (b"*3\r\n", Header::Aggregate(3)),
            (b"*-1\r\n", Header::Aggregate(0)),
            (b"*0\r\n", Header::Aggregate(0)),
            (b"%2\r\n", Header::Aggregate(4)),
            (b"|1\r\n", Header::Aggregate(3)),
            (b"_\r\n", Header::Line),
        ];
        for (line, want) in table {
            assert_eq!(&frame_header(line).unwrap(), want, "{line:?}");
        }
        for bad in [&b"+OK"[..], b"\r\n", b"$x\r\n", b"?1\r\n"] {
            let err = frame_header(bad).unwrap_err();
            assert_eq!(err.kind(), redis::ErrorKind::Parse, "{bad:?}");
        }
    }
}
