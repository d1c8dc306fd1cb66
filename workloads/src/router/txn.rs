//! Transactions through the router: `MULTI`, the commands, `EXEC`, written as one pipeline to the
//! owner of the keys' slot, and what a migration does to them.
//!
//! Redis Cluster checks each queued command's keys as it queues it, and `EXEC`'s keys again when
//! it runs: a queued command answered `-ASK` (its key is not in the migrating slot's source) or
//! `-TRYAGAIN` (some keys are, some are not) marks the transaction, and `EXEC` answers
//! `EXECABORT`; `EXEC` itself may answer `-ASK`, `-TRYAGAIN` or `-MOVED` when keys moved after
//! they were queued. Either way nothing ran, and the router follows the redirect with the whole
//! transaction, as for a single command: `ASK` → the target, `ASKING` first (its flag lasts
//! through `MULTI` until `EXEC` on Redis 7.0 and Valkey 9.1: `tests/txn.rs` sends a
//! transaction to an importing node with and without it); `TRYAGAIN` → back off, resend to the
//! owner; `MOVED` → update the map, resend. Every hop is recorded. `EXECABORT` for any other
//! reason is a `fail` with the queued command's error; no usable answer (a timeout, a lost
//! connection) is `info`: `EXEC` may have run.

use super::{error_text, Execution, Hop, Next, OpError, Router, Trip};
use crate::bugs::Prefix;
use crate::conn;
use crate::slot::key_slot;
use checker::RedirectKind;
use redis::{Cmd, ErrorKind, RedisError, ServerErrorKind, Value};

/// What one attempt of a transaction came back with, as the router decides on it.
#[derive(Debug)]
enum TxnReply {
    /// `EXEC`'s reply: one value per queued command.
    Exec(Value),
    /// The transaction did not run: the error to decide on (a redirect met by a queued command
    /// or by `EXEC`, else `EXEC`'s error), with its text for the history.
    Refused(RedisError, String),
    /// No usable answer: the transaction may have run.
    Lost(String),
}

impl Router {
    /// Sends `cmds` as one `MULTI`/`EXEC` transaction to the owner of `key`'s slot (every
    /// command's keys must be in that slot), following redirects and retries with the whole
    /// transaction up to `hops_max` hops; `Ok` is `EXEC`'s reply (see the module doc).
    pub async fn execute_txn(&mut self, key: &[u8], cmds: &[Cmd]) -> Execution {
        let slot = key_slot(key);
        if std::mem::take(&mut self.stale) {
            // Best effort, as for `execute`.
            let _ = self.refresh_slot_map().await;
        }
        let mut trip = Trip::new(slot, self.config.backoff_ms_first);
        let mut next: Hop = match self.owner(slot).await {
            Ok(addr) => (addr, None),
            Err(e) => return trip.finish(Err(OpError::Fail(e)), String::new()),
        };
        loop {
            next = match self.txn_step(&mut trip, cmds, next).await {
                Next::Hop(hop) => hop,
                Next::Done(done) => return self.bugs.finished(done),
            };
        }
    }

    /// Sends the transaction on `hop` and decides from its replies: the next hop, or its end.
    async fn txn_step(&mut self, trip: &mut Trip, cmds: &[Cmd], (addr, prefix): Hop) -> Next {
        let reply = match self.request_txn(&addr, cmds, prefix).await {
            Ok(reply) => reply,
            Err(e) => {
                let text = format!("connect to {addr}: {e}");
                self.stale = true;
                return Next::Done(trip.finish(Err(OpError::Fail(text)), addr));
            }
        };
        let (err, text) = match reply {
            TxnReply::Exec(v) => return Next::Done(trip.finish(Ok(v), addr)),
            TxnReply::Lost(text) => return self.after_lost(trip, (addr, prefix), text),
            TxnReply::Refused(err, text) => (err, text),
        };
        match self.on_error(trip, &err, text, (addr, prefix)).await {
            Next::Hop((to, Some(_)))
                if self.bugs.txn_drops_asking()
                    && trip.redirects.last().map(|h| h.kind) == Some(RedirectKind::Ask) =>
            {
                Next::Hop((to, None))
            }
            next => next,
        }
    }

    /// Writes `MULTI`, `cmds`, `EXEC` (after `prefix`) in one write on `addr`'s connection and
    /// reads their replies. An error means it could not connect.
    async fn request_txn(
        &mut self,
        addr: &str,
        cmds: &[Cmd],
        prefix: Prefix,
    ) -> Result<TxnReply, RedisError> {
        let timeout = self.timeout();
        if !self.conns.contains_key(addr) {
            let conn = conn::connect(addr, timeout).await?;
            self.conns.insert(addr.to_string(), conn);
        }
        let conn = self.conns.get_mut(addr).expect("opened above");
        let (multi, exec) = (redis::cmd("MULTI"), redis::cmd("EXEC"));
        let mut batch: Vec<&Cmd> = Vec::with_capacity(cmds.len() + 2);
        batch.push(&multi);
        batch.extend(cmds);
        batch.push(&exec);
        match conn::send_pipeline(conn, &batch, prefix, timeout).await {
            Ok(replies) => Ok(txn_reply(replies)),
            Err(text) => {
                self.conns.remove(addr);
                Ok(TxnReply::Lost(text))
            }
        }
    }
}

/// Whether `err` sends the transaction elsewhere or asks for a retry.
fn is_redirect(err: &RedisError) -> bool {
    matches!(
        err.kind(),
        ErrorKind::Server(
            ServerErrorKind::Moved
                | ServerErrorKind::Ask
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
        )
    )
}

/// Reads the replies to `MULTI`, the queued commands and `EXEC` (see the module doc).
fn txn_reply(mut replies: Vec<Result<Value, RedisError>>) -> TxnReply {
    let Some(exec) = replies.pop() else {
        return TxnReply::Lost("no reply to the transaction".into());
    };
    if let Ok(Value::Array(values)) = exec {
        // EXEC ran the transaction, whatever the queued replies said.
        return TxnReply::Exec(Value::Array(values));
    }
    // `MULTI` not answered `OK`, or a command answered other than `QUEUED` or an error: the
    // commands may have run outside a transaction, so the op may have happened.
    let (multi, queued) = replies
        .split_first()
        .map_or((None, &[][..]), |(m, q)| (Some(m), q));
    let ran_alone = !matches!(multi, Some(Ok(Value::Okay)))
        || queued
            .iter()
            .any(|r| matches!(r, Ok(v) if *v != Value::SimpleString("QUEUED".into())));
    if ran_alone {
        return TxnReply::Lost("MULTI or a queued command was not answered as queued".into());
    }
    // A redirect met by a queued command, else `EXEC`'s own.
    let queued_error = replies.iter().find_map(|r| r.as_ref().err());
    if let Some(err) = queued_error.filter(|e| is_redirect(e)) {
        return TxnReply::Refused(err.clone(), error_text(err));
    }
    match exec {
        Ok(Value::Nil) => {
            let text = "EXEC answered nil: the transaction was discarded".to_string();
            let err = RedisError::from((
                ErrorKind::Server(ServerErrorKind::ExecAbort),
                "discarded",
                text.clone(),
            ));
            TxnReply::Refused(err, text)
        }
        Ok(other) => TxnReply::Lost(format!("EXEC answered {other:?}")),
        Err(err) => {
            if let Some(q) = queued_error.filter(|_| !is_redirect(&err)) {
                // EXECABORT: nothing ran. The queued command's refusal decides (a `READONLY`
                // there is the failover signal), and the text says both.
                let text = format!("{} ({})", error_text(&err), error_text(q));
                return TxnReply::Refused(q.clone(), text);
            }
            let text = error_text(&err);
            if matches!(err.kind(), ErrorKind::Server(_) | ErrorKind::Extension) {
                TxnReply::Refused(err, text)
            } else {
                TxnReply::Lost(text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &str) -> RedisError {
        match redis::parse_redis_value(format!("-{line}\r\n").as_bytes()).unwrap() {
            Value::ServerError(e) => e.into(),
            other => panic!("not an error: {other:?}"),
        }
    }

    fn queued() -> Result<Value, RedisError> {
        Ok(Value::SimpleString("QUEUED".into()))
    }

    #[test]
    fn replies_decide_the_transaction() {
        let abort = || {
            Err(err(
                "EXECABORT Transaction discarded because of previous errors.",
            ))
        };
        let ask = || Err(err("ASK 12 127.0.0.1:30002"));
        let ok = Ok(Value::Okay);
        // Ran: EXEC's array.
        let ran = txn_reply(vec![
            ok.clone(),
            queued(),
            Ok(Value::Array(vec![Value::Okay])),
        ]);
        assert!(matches!(ran, TxnReply::Exec(Value::Array(_))), "{ran:?}");
        // A queued command met ASK: the redirect decides, not EXECABORT.
        let r = txn_reply(vec![ok.clone(), queued(), ask(), abort()]);
        assert!(
            matches!(&r, TxnReply::Refused(_, t) if t == "ASK 12 127.0.0.1:30002"),
            "{r:?}"
        );
        // EXEC's own TRYAGAIN.
        let tryagain = Err(err(
            "TRYAGAIN Multiple keys request during rehashing of slot",
        ));
        let r = txn_reply(vec![ok.clone(), queued(), tryagain]);
        assert!(
            matches!(&r, TxnReply::Refused(e, _) if is_redirect(e)),
            "{r:?}"
        );
        // Another refusal: EXECABORT with the queued command's reason.
        let cross = Err(err("CROSSSLOT Keys in request don't hash to the same slot"));
        let r = txn_reply(vec![ok.clone(), cross, abort()]);
        match r {
            TxnReply::Refused(e, text) => {
                assert!(!is_redirect(&e));
                assert!(
                    text.starts_with("EXECABORT") && text.contains("CROSSSLOT"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
        // A demoted master refuses the queued write: READONLY decides, so the router learns of
        // the failover (EXECABORT alone would hide it).
        let readonly = Err(err("READONLY You can't write against a read only replica."));
        match txn_reply(vec![ok, readonly, abort()]) {
            TxnReply::Refused(e, text) => {
                assert_eq!(e.kind(), ErrorKind::Server(ServerErrorKind::ReadOnly));
                assert!(
                    text.contains("EXECABORT") && text.contains("READONLY"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
        // MULTI refused, or a command answered as if run on its own: it may have applied.
        let nested = Err(err("ERR MULTI calls can not be nested"));
        let alone = Ok(Value::Int(1));
        for replies in [
            vec![nested, queued(), abort()],
            vec![Ok(Value::Okay), alone, abort()],
        ] {
            let r = txn_reply(replies);
            assert!(matches!(r, TxnReply::Lost(_)), "{r:?}");
        }
    }
}
