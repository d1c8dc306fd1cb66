//! The cluster commands every migration variant sends: `SETSLOT`, `GETKEYSINSLOT`,
//! `COUNTKEYSINSLOT` and `MIGRATE`, plus telling the other masters a slot's new owner.

use super::{MigrateError, MigrateOptions, Peer};
use crate::harness::{Admin, HarnessError};

/// The `CLUSTER SETSLOT <slot> <state> [<id>]` command.
pub(crate) fn setslot(slot: u16, state: &str, id: Option<&str>) -> redis::Cmd {
    let mut c = redis::cmd("CLUSTER");
    c.arg("SETSLOT").arg(slot).arg(state);
    if let Some(id) = id {
        c.arg(id);
    }
    c
}

/// Tells every peer in `others` that `owner_id` now owns `slot`.
pub(crate) async fn tell_others(
    slot: u16,
    owner_id: &str,
    others: &[Peer],
    opts: &MigrateOptions,
) -> Result<(), MigrateError> {
    let step_err = |step| move |source| MigrateError::Step { slot, step, source };
    for other in others {
        let mut admin = Admin::connect_with_timeout(&other.addr, opts.response_timeout_ms())
            .await
            .map_err(step_err("connect"))?;
        admin
            .query::<()>(&setslot(slot, "NODE", Some(owner_id)))
            .await
            .map_err(step_err("node-other"))?;
    }
    Ok(())
}

/// `CLUSTER GETKEYSINSLOT slot count`.
pub(crate) async fn keys_in_slot(
    admin: &mut Admin,
    slot: u16,
    count: usize,
) -> Result<Vec<String>, HarnessError> {
    admin.query(&keys_in_slot_cmd(slot, count)).await
}

/// The `CLUSTER GETKEYSINSLOT slot count` command.
pub(crate) fn keys_in_slot_cmd(slot: u16, count: usize) -> redis::Cmd {
    let mut c = redis::cmd("CLUSTER");
    c.arg("GETKEYSINSLOT").arg(slot).arg(count);
    c
}

/// `CLUSTER COUNTKEYSINSLOT slot`.
pub(crate) async fn count_keys_in_slot(
    admin: &mut Admin,
    slot: u16,
) -> Result<usize, HarnessError> {
    admin
        .query(redis::cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(slot))
        .await
}

/// `MIGRATE host port "" 0 timeout [REPLACE] KEYS k...`.
pub(crate) fn migrate_cmd(
    host: &str,
    port: &str,
    timeout_ms: u64,
    replace: bool,
    keys: &[String],
) -> redis::Cmd {
    let mut migrate = redis::cmd("MIGRATE");
    migrate.arg(host).arg(port).arg("").arg(0).arg(timeout_ms);
    if replace {
        migrate.arg("REPLACE");
    }
    migrate.arg("KEYS").arg(keys);
    migrate
}

/// Splits `host:port`; the port is kept as text since it only goes back on the wire.
pub(crate) fn split_addr(addr: &str) -> (&str, &str) {
    addr.rsplit_once(':').unwrap_or((addr, "6379"))
}
