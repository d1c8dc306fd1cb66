//! The router's one decision point: what a server's or client's error means for the op
//! ([`classify`]), and the error's text as it was on the wire ([`error_text`]).

use redis::{ErrorKind, RedisError, ServerErrorKind};

/// What the router does about an error: the single table-tested decision point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The slot lives at `addr` now: update the slot map and retry there.
    Moved {
        /// The slot the server named.
        slot: u16,
        /// The new owner, `host:port` (the host may be empty: the same host as the sender).
        addr: String,
    },
    /// This key is being imported by `addr`: retry there once with `ASKING`; keep the map.
    Ask {
        /// The slot the server named.
        slot: u16,
        /// The importing node, `host:port` (the host may be empty, as for `Moved`).
        addr: String,
    },
    /// A multi-key op met a half-migrated slot: back off and retry.
    TryAgain,
    /// The cluster cannot serve the slot right now: back off and retry.
    ClusterDown,
    /// The server refused the command: it certainly did not happen.
    Fail,
    /// The connection failed after the request may have been sent: it may have happened.
    Indeterminate,
}

/// Maps a client or server error to the router's action.
pub fn classify(err: &RedisError) -> Action {
    match err.kind() {
        ErrorKind::Server(ServerErrorKind::Moved) => match err.redirect_node() {
            Some((addr, slot)) if (slot as usize) < crate::slot::SLOT_COUNT => Action::Moved {
                slot,
                addr: addr.to_string(),
            },
            _ => Action::Fail,
        },
        ErrorKind::Server(ServerErrorKind::Ask) => match err.redirect_node() {
            Some((addr, slot)) if (slot as usize) < crate::slot::SLOT_COUNT => Action::Ask {
                slot,
                addr: addr.to_string(),
            },
            _ => Action::Fail,
        },
        ErrorKind::Server(ServerErrorKind::TryAgain) => Action::TryAgain,
        ErrorKind::Server(ServerErrorKind::ClusterDown) => Action::ClusterDown,
        // Every other error reply: the server answered and did not run the command.
        ErrorKind::Server(_) | ErrorKind::Extension => Action::Fail,
        // I/O, protocol and client-side errors: we cannot tell whether the command ran.
        _ => Action::Indeterminate,
    }
}

/// The server's error text as it was on the wire (`MOVED 3999 127.0.0.1:6381`), for histories.
pub fn error_text(err: &RedisError) -> String {
    match (err.code(), err.detail()) {
        (Some(code), Some(detail)) if !matches!(err.kind(), ErrorKind::Parse) => {
            format!("{code} {detail}")
        }
        (Some(code), None) => code.to_string(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    /// Parses a RESP error line the way the connection does.
    fn server_error(line: &str) -> RedisError {
        match redis::parse_redis_value(format!("-{line}\r\n").as_bytes()).unwrap() {
            Value::ServerError(e) => e.into(),
            other => panic!("not an error: {other:?}"),
        }
    }

    fn io_error(kind: std::io::ErrorKind) -> RedisError {
        std::io::Error::from(kind).into()
    }

    #[test]
    fn classify_server_replies() {
        let moved = |slot: u16, addr: &str| Action::Moved {
            slot,
            addr: addr.into(),
        };
        let ask = |slot: u16, addr: &str| Action::Ask {
            slot,
            addr: addr.into(),
        };
        let table: &[(&str, Action)] = &[
            ("MOVED 3999 127.0.0.1:6381", moved(3999, "127.0.0.1:6381")),
            ("MOVED 0 :30002", moved(0, ":30002")),
            (
                "MOVED 16383 host.example:7000",
                moved(16383, "host.example:7000"),
            ),
            ("ASK 12182 127.0.0.1:30003", ask(12182, "127.0.0.1:30003")),
            ("MOVED 16384 127.0.0.1:6381", Action::Fail),
            ("MOVED garbage", Action::Fail),
            ("ASK", Action::Fail),
            (
                "TRYAGAIN Multiple keys request during rehashing of slot",
                Action::TryAgain,
            ),
            ("CLUSTERDOWN The cluster is down", Action::ClusterDown),
            ("CLUSTERDOWN Hash slot not served", Action::ClusterDown),
            ("ERR unknown command 'FOO'", Action::Fail),
            (
                "WRONGTYPE Operation against a key holding the wrong kind of value",
                Action::Fail,
            ),
            (
                "CROSSSLOT Keys in request don't hash to the same slot",
                Action::Fail,
            ),
            (
                "READONLY You can't write against a read only replica.",
                Action::Fail,
            ),
            (
                "LOADING Redis is loading the dataset in memory",
                Action::Fail,
            ),
            ("MASTERDOWN Link with MASTER is down", Action::Fail),
            ("NOSCRIPT No matching script", Action::Fail),
            ("BUSY Redis is busy running a script", Action::Fail),
            ("OOM command not allowed", Action::Fail),
        ];
        for (line, want) in table {
            assert_eq!(&classify(&server_error(line)), want, "{line}");
        }
    }

    #[test]
    fn classify_client_errors() {
        use std::io::ErrorKind as Io;
        for kind in [
            Io::BrokenPipe,
            Io::ConnectionReset,
            Io::TimedOut,
            Io::UnexpectedEof,
        ] {
            assert_eq!(classify(&io_error(kind)), Action::Indeterminate, "{kind:?}");
        }
        let parse = RedisError::from((ErrorKind::Parse, "bad reply"));
        assert_eq!(classify(&parse), Action::Indeterminate);
        let built = RedisError::from((
            ErrorKind::Server(ServerErrorKind::Moved),
            "moved",
            "7 10.0.0.1:1".to_string(),
        ));
        assert_eq!(
            classify(&built),
            Action::Moved {
                slot: 7,
                addr: "10.0.0.1:1".into()
            }
        );
    }

    #[test]
    fn error_text_is_the_wire_text() {
        let table = [
            "MOVED 3999 127.0.0.1:6381",
            "CLUSTERDOWN The cluster is down",
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            "ERR unknown command 'FOO'",
        ];
        for line in table {
            assert_eq!(error_text(&server_error(line)), line);
        }
        assert_eq!(error_text(&server_error("TRYAGAIN")), "TRYAGAIN");
    }
}
