//! Just enough RESP for the bug-injecting relay: where one complete value (a client's command or
//! a server's reply, RESP2 or RESP3) ends in a buffer, and a command's arguments.

/// Why bytes are not RESP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed RESP: {0}")]
pub(super) struct RespError(pub(super) String);

/// Length of the line starting at `at`, CRLF included, or `None` if it is not complete yet.
fn line_end(buf: &[u8], at: usize) -> Option<usize> {
    buf.get(at..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| at + p + 2)
}

/// The integer of the header line `buf[at+1..end-2]`.
fn header_int(buf: &[u8], at: usize, end: usize) -> Result<i64, RespError> {
    let text = std::str::from_utf8(&buf[at + 1..end - 2]).unwrap_or("");
    text.parse()
        .map_err(|_| RespError(format!("bad length {text:?}")))
}

/// Where the value starting at `at` ends, or `None` if `buf` does not hold all of it yet.
fn value_end(buf: &[u8], at: usize) -> Result<Option<usize>, RespError> {
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some(end) = line_end(buf, at) else {
        return Ok(None);
    };
    match kind {
        b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => Ok(Some(end)),
        b'$' | b'!' | b'=' => {
            let n = header_int(buf, at, end)?;
            if n < 0 {
                return Ok(Some(end));
            }
            let stop = end + n as usize + 2;
            Ok((buf.len() >= stop).then_some(stop))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = header_int(buf, at, end)?;
            let items = match kind {
                b'%' => n.max(0) * 2,
                // An attribute map is followed by the value it annotates.
                b'|' => n.max(0) * 2 + 1,
                _ => n.max(0),
            };
            let mut next = end;
            for _ in 0..items {
                match value_end(buf, next)? {
                    Some(e) => next = e,
                    None => return Ok(None),
                }
            }
            Ok(Some(next))
        }
        other => Err(RespError(format!("unknown type byte {:?}", other as char))),
    }
}

/// Length of the first complete value in `buf` (an inline command counts as one line), or
/// `None` if more bytes are needed.
pub(super) fn frame_len(buf: &[u8]) -> Result<Option<usize>, RespError> {
    match buf.first() {
        None => Ok(None),
        Some(
            b'*' | b'+' | b'-' | b':' | b'$' | b'_' | b'#' | b',' | b'(' | b'!' | b'=' | b'~'
            | b'>' | b'%' | b'|',
        ) => value_end(buf, 0),
        Some(_) => Ok(buf.iter().position(|&b| b == b'\n').map(|p| p + 1)),
    }
}

/// The arguments of one complete command frame: an array of bulk strings, or an inline line.
pub(super) fn args(frame: &[u8]) -> Vec<Vec<u8>> {
    if frame.first() != Some(&b'*') {
        let line = String::from_utf8_lossy(frame);
        return line
            .split_whitespace()
            .map(|w| w.as_bytes().to_vec())
            .collect();
    }
    let mut out = Vec::new();
    let Some(mut at) = line_end(frame, 0) else {
        return out;
    };
    while at < frame.len() && frame[at] == b'$' {
        let Some(end) = line_end(frame, at) else {
            break;
        };
        let Ok(n) = header_int(frame, at, end) else {
            break;
        };
        let stop = end + n.max(0) as usize;
        if stop > frame.len() {
            break;
        }
        out.push(frame[end..stop].to_vec());
        at = stop + 2;
    }
    out
}

/// A command frame of bulk strings, as clients send them.
#[cfg(test)]
pub(super) fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A bulk string reply.
pub(super) fn bulk(value: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", value.len()).into_bytes();
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_end_where_their_value_ends() {
        let set = command(&[b"SET", b"k", b"12"]);
        assert_eq!(frame_len(&set).unwrap(), Some(set.len()));
        assert_eq!(frame_len(&set[..set.len() - 1]).unwrap(), None);
        let mut two = set.clone();
        two.extend_from_slice(b"+OK\r\n");
        assert_eq!(frame_len(&two).unwrap(), Some(set.len()));
        assert_eq!(
            args(&set),
            vec![b"SET".to_vec(), b"k".to_vec(), b"12".to_vec()]
        );
        for reply in [
            &b"+OK\r\n"[..],
            b"-MOVED 1 a:1\r\n",
            b":1\r\n",
            b"$-1\r\n",
            b"$3\r\nabc\r\n",
            b"*2\r\n$1\r\na\r\n*1\r\n:5\r\n",
            b"%1\r\n+a\r\n:1\r\n",
            b"_\r\n",
        ] {
            assert_eq!(frame_len(reply).unwrap(), Some(reply.len()), "{reply:?}");
            assert_eq!(frame_len(&reply[..reply.len() - 1]).unwrap(), None);
        }
        assert_eq!(frame_len(b"PING\r\n").unwrap(), Some(6));
        assert_eq!(args(b"PING x\r\n"), vec![b"PING".to_vec(), b"x".to_vec()]);
        assert!(frame_len(b"$x\r\n").is_err());
        assert_eq!(bulk(b"7"), b"$1\r\n7\r\n");
    }
}
