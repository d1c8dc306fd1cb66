//! The checks behind "ready" (bring-up) and "stable" (after faults): each returns the first problem it
//! sees as text, which becomes the `last_state` of a timeout error.

use super::admin::Admin;
use super::cluster::Role;
use super::error::HarnessError;
use super::view::{self, SlotMap, SLOT_COUNT};

/// A node as bring-up intends it: used to check that every node sees the intended cluster.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub addr: String,
    pub id: String,
    pub role: Role,
    /// The slot range of a master.
    pub slots: Option<(u16, u16)>,
}

/// The slot map every node must report once bring-up is done.
pub(crate) fn planned_map(plan: &[Planned]) -> SlotMap {
    let mut map: SlotMap = plan
        .iter()
        .filter_map(|p| p.slots.map(|(s, e)| (s, e, p.id.clone())))
        .collect();
    map.sort();
    map
}

/// Whether `admin`'s node knows every planned node by id, with no handshake left.
pub(crate) async fn knows_all(
    admin: &mut Admin,
    plan: &[Planned],
) -> Result<Option<String>, HarnessError> {
    let lines = nodes(admin).await?;
    if let Some(line) = lines
        .iter()
        .find(|l| l.has_flag("handshake") || l.has_flag("noaddr"))
    {
        return Ok(Some(format!(
            "{} is still flagged {}",
            line.addr,
            line.flags.join(",")
        )));
    }
    let missing: Vec<&str> = plan
        .iter()
        .filter(|p| !lines.iter().any(|l| l.id == p.id))
        .map(|p| p.addr.as_str())
        .collect();
    if missing.is_empty() {
        Ok(None)
    } else {
        Ok(Some(format!("does not know {}", missing.join(", "))))
    }
}

/// Whether `me` sees exactly the planned cluster: state ok, all slots as planned, every node healthy in
/// its planned role, and (for a replica) its link to the master up.
pub(crate) async fn ready_problem(
    admin: &mut Admin,
    me: &Planned,
    plan: &[Planned],
    map: &SlotMap,
) -> Result<Option<String>, HarnessError> {
    let info = view::parse_info(&admin.text(&["CLUSTER", "INFO"]).await?);
    let state = info.get("cluster_state").map(String::as_str).unwrap_or("?");
    let known = info
        .get("cluster_known_nodes")
        .map(String::as_str)
        .unwrap_or("?");
    let assigned = info
        .get("cluster_slots_assigned")
        .map(String::as_str)
        .unwrap_or("?");
    if state != "ok" || known != plan.len().to_string() || assigned != SLOT_COUNT.to_string() {
        return Ok(Some(format!(
            "cluster_state:{state} cluster_known_nodes:{known}/{} cluster_slots_assigned:{assigned}",
            plan.len()
        )));
    }
    let lines = nodes(admin).await?;
    for planned in plan {
        let Some(line) = lines.iter().find(|l| l.id == planned.id) else {
            return Ok(Some(format!("does not list {}", planned.addr)));
        };
        let role_ok = match &planned.role {
            Role::Master => line.has_flag("master"),
            Role::Replica { master_id } => {
                line.is_replica() && line.master_id.as_deref() == Some(master_id.as_str())
            }
        };
        if line.troubled() || !role_ok {
            return Ok(Some(format!(
                "sees {} as {} (master {})",
                planned.addr,
                line.flags.join(","),
                line.master_id.as_deref().unwrap_or("-")
            )));
        }
    }
    let seen = view::slot_map(&lines);
    if &seen != map {
        return Ok(Some(format!(
            "slot map {seen:?} differs from planned {map:?}"
        )));
    }
    if let Role::Replica { .. } = me.role {
        let info = view::parse_info(&admin.text(&["INFO", "replication"]).await?);
        let link = info
            .get("master_link_status")
            .map(String::as_str)
            .unwrap_or("?");
        if link != "up" {
            return Ok(Some(format!("master_link_status:{link}")));
        }
    }
    Ok(None)
}

/// The node's slot map if it is settled (state ok, every slot assigned, no slot importing or migrating),
/// else the problem.
pub(crate) async fn settled_map(
    admin: &mut Admin,
) -> Result<Result<SlotMap, String>, HarnessError> {
    let info = view::parse_info(&admin.text(&["CLUSTER", "INFO"]).await?);
    let state = info.get("cluster_state").map(String::as_str).unwrap_or("?");
    if state != "ok" {
        return Ok(Err(format!("cluster_state:{state}")));
    }
    let lines = nodes(admin).await?;
    if let Some(line) = lines.iter().find(|l| !l.open_slots.is_empty()) {
        return Ok(Err(format!(
            "{} has open slots {}",
            line.addr,
            line.open_slots.join(" ")
        )));
    }
    let map = view::slot_map(&lines);
    let assigned = view::slots_assigned(&map);
    if assigned != SLOT_COUNT {
        return Ok(Err(format!("{assigned} of {SLOT_COUNT} slots assigned")));
    }
    Ok(Ok(map))
}

async fn nodes(admin: &mut Admin) -> Result<Vec<view::NodeLine>, HarnessError> {
    let text = admin.text(&["CLUSTER", "NODES"]).await?;
    view::parse_nodes(&text).ok_or_else(|| HarnessError::Reply {
        addr: admin.addr().to_string(),
        command: "CLUSTER NODES".to_string(),
        detail: format!("malformed: {:?}", text.lines().next().unwrap_or("")),
    })
}
