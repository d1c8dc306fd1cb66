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
    let servers = &*ctx.cluster;
    let value = json!({"node": addr, "pid": servers.pid(addr), "signal": "KILL"});
    act(ctx, "kill", value, async {
        ServerFamily::kill(servers, addr).await.map(|()| None)
    })
    .await
}

/// Stops the node at `addr` gracefully (SIGTERM: the AOF is flushed), the polite twin of `kill`.
pub async fn shutdown(ctx: &Ctx, addr: &str) -> Result<(), NemesisError> {
    let servers = &*ctx.cluster;
    let value = json!({"node": addr, "pid": servers.pid(addr), "signal": "TERM"});
    act(ctx, "shutdown", value, async {
        ServerFamily::shutdown(servers, addr).await.map(|()| None)
    })
    .await
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
    let servers = &*ctx.cluster;
    let value = json!({"node": addr, "pid": servers.pid(addr), "signal": "STOP"});
    act(ctx, "pause", value, async {
        ServerFamily::pause(servers, addr).await.map(|()| None)
    })
    .await
}

/// Lets a paused node at `addr` run again with SIGCONT; the inverse of `pause`.
pub async fn resume(ctx: &Ctx, addr: &str) -> Result<(), NemesisError> {
    let servers = &*ctx.cluster;
    let value = json!({"node": addr, "pid": servers.pid(addr), "signal": "CONT"});
    act(ctx, "resume", value, async {
        ServerFamily::resume(servers, addr).await.map(|()| None)
    })
    .await
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
