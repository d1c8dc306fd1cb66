//! Process faults as recorded verbs in named pairs: `kill`/`restart`, `shutdown`/`restart`,
//! `pause`/`resume`. Each writes `f` = the verb with `value.node` = the address, `phase` `begin` and
//! `end` (with `pid`, and `error` if it failed), around the harness call that does the work.
//! `kill` and `shutdown` also carry `signal` (`KILL` or `TERM`), `pause` and `resume` theirs
//! (`STOP`, `CONT`), so a checker can tell a crash from a graceful stop.
//!
//! Traps the team measured: with persistence off, a master killed and restarted within the node
//! timeout comes back *empty but still owning its slots* (its replica then resyncs the empty data
//! set); a master paused longer than the node timeout is failed over and, once resumed, rejoins as a
//! replica of its former replica.

use std::future::Future;

use serde_json::{json, Value};

use super::error::NemesisError;
use super::Ctx;
use crate::harness::ServerFamily;

/// SIGKILLs the node at `addr` and reaps it: no save, no goodbye; its port refuses connections.
pub async fn kill(ctx: &Ctx, addr: &str) -> Result<(), NemesisError> {
    let call = ServerFamily::kill(&*ctx.cluster, addr);
    signalled(ctx, "kill", addr, "KILL", call).await
}

/// Stops the node at `addr` gracefully (SIGTERM: the AOF is flushed), the polite twin of `kill`.
pub async fn shutdown(ctx: &Ctx, addr: &str) -> Result<(), NemesisError> {
    let call = ServerFamily::shutdown(&*ctx.cluster, addr);
    signalled(ctx, "shutdown", addr, "TERM", call).await
}

/// Starts the node at `addr` again (same port, data dir and `nodes.conf`, so the same node id) and
/// waits until it answers; `end` carries the new `pid`. Rejoining the cluster takes longer: see
/// `failover::wait_rejoined`.
pub async fn restart(ctx: &Ctx, addr: &str) -> Result<(), NemesisError> {
    let servers = &*ctx.cluster;
    act(ctx, "restart", json!({"node": addr}), async {
        ServerFamily::restart(servers, addr).await.map(Some)
    })
    .await
}

/// Freezes the node at `addr` with SIGSTOP: clients and peers get no answer until `resume`.
pub async fn pause(ctx: &Ctx, addr: &str) -> Result<(), NemesisError> {
    let call = ServerFamily::pause(&*ctx.cluster, addr);
    signalled(ctx, "pause", addr, "STOP", call).await
}

/// Lets a paused node at `addr` run again with SIGCONT; the inverse of `pause`.
pub async fn resume(ctx: &Ctx, addr: &str) -> Result<(), NemesisError> {
    let call = ServerFamily::resume(&*ctx.cluster, addr);
    signalled(ctx, "resume", addr, "CONT", call).await
}

/// Records verb `f` on `addr` by `signal` (with the pid it hits, read before `call` runs) around
/// the family's `call`.
async fn signalled<E>(
    ctx: &Ctx,
    f: &str,
    addr: &str,
    signal: &str,
    call: impl Future<Output = Result<(), E>>,
) -> Result<(), NemesisError>
where
    E: std::error::Error,
    NemesisError: From<E>,
{
    let pid = ServerFamily::pid(&*ctx.cluster, addr);
    let value = json!({"node": addr, "pid": pid, "signal": signal});
    act(ctx, f, value, async { call.await.map(|()| None) }).await
}

/// Records `begin`, runs the family's process verb, records `end` with the pid it returned (if
/// any) or its error.
async fn act<E>(
    ctx: &Ctx,
    f: &str,
    value: Value,
    call: impl Future<Output = Result<Option<u32>, E>>,
) -> Result<(), NemesisError>
where
    E: std::error::Error,
    NemesisError: From<E>,
{
    ctx.begin(f, value.clone());
    match call.await {
        Ok(pid) => {
            let mut value = value;
            if let Some(pid) = pid {
                value["pid"] = json!(pid);
            }
            ctx.end(f, value, None);
            Ok(())
        }
        Err(e) => {
            ctx.end(f, value, Some(&e.to_string()));
            Err(e.into())
        }
    }
}
