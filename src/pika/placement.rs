//! The end-of-run placement check of a PikiwiDB run: SCAN every server for every key, and compare
//! where each key is with where the slot table says its slot lives. A key only on servers that
//! neither own its slot nor are receiving it is `stranded` (left behind by a migration, e.g. a key
//! pika never put into its slot index, which `SLOTSMGRTTAGSLOT` therefore never moves); a key on
//! more than one server is `duplicated`. Each copy's `TYPE` is returned, so the caller can compare
//! it with the type its workload wrote.

use std::collections::BTreeMap;
use std::time::Duration;

use workloads::codis::CodisTable;

use super::error::PikaError;
use super::link::Link;

/// pika's own slot index keys (sets), which SCAN returns beside user keys.
const INTERNAL_PREFIXES: [&str; 2] = ["_internal:slotkey:4migrate:", "_internal:slottag:4migrate:"];
/// Keys asked per SCAN page.
const SCAN_COUNT: &str = "1000";
/// How long one SCAN page or TYPE batch may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// What is wrong with a key's placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FindingKind {
    /// Only on servers that neither own its slot nor receive it: clients never reach it.
    Stranded,
    /// On more than one server.
    Duplicated,
}

impl FindingKind {
    /// The anomaly class it is reported as (the classes `slotcheck verify` uses on Redis Cluster).
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::Stranded => "stranded-key",
            FindingKind::Duplicated => "duplicated-key",
        }
    }
}

/// One misplaced key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What is wrong.
    pub kind: FindingKind,
    /// The key (lossy UTF-8).
    pub key: String,
    /// Its Codis slot.
    pub slot: u16,
    /// The slot's owner by the table.
    pub owner: String,
    /// The slot's migration target, while one is open.
    pub migrating_to: Option<String>,
    /// The servers holding it, each with the key's `TYPE` there.
    pub found_on: BTreeMap<String, String>,
}

/// Every key seen and every misplaced one.
#[derive(Debug, Clone, Default)]
pub struct PlacementReport {
    /// Each user key with the servers holding it and its `TYPE` on each.
    pub keys: BTreeMap<String, BTreeMap<String, String>>,
    /// The misplaced keys, by key.
    pub findings: Vec<Finding>,
}

impl PlacementReport {
    /// Whether no key is misplaced.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// The findings of one kind.
    pub fn of_kind(&self, kind: FindingKind) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.kind == kind)
    }
}

/// Scans `servers` and checks every user key against `table`.
pub async fn check_placement(
    servers: &[String],
    table: &CodisTable,
) -> Result<PlacementReport, PikaError> {
    let mut report = PlacementReport::default();
    for addr in servers {
        for (key, ty) in scan_with_types(addr).await? {
            report.keys.entry(key).or_default().insert(addr.clone(), ty);
        }
    }
    for (key, found_on) in &report.keys {
        let (slot, route) = table.route_key(key.as_bytes());
        let allowed = |s: &str| &*route.owner == s || route.migrating_to.as_deref() == Some(s);
        let kind = if found_on.len() > 1 {
            FindingKind::Duplicated
        } else if !found_on.keys().any(|s| allowed(s)) {
            FindingKind::Stranded
        } else {
            continue;
        };
        report.findings.push(Finding {
            kind,
            key: key.clone(),
            slot,
            owner: route.owner.to_string(),
            migrating_to: route.migrating_to.as_deref().map(str::to_string),
            found_on: found_on.clone(),
        });
    }
    Ok(report)
}

/// Every user key on `addr` with its `TYPE`, by `SCAN` and pipelined `TYPE`s per page.
pub async fn scan_with_types(addr: &str) -> Result<Vec<(String, String)>, PikaError> {
    let mut link = Link::new(addr, COMMAND_TIMEOUT);
    let mut cursor = "0".to_string();
    let mut out = Vec::new();
    loop {
        let (next, keys): (String, Vec<Vec<u8>>) =
            link.run(&["SCAN", &cursor, "COUNT", SCAN_COUNT]).await?;
        let keys: Vec<Vec<u8>> = keys
            .into_iter()
            .filter(|k| {
                !INTERNAL_PREFIXES
                    .iter()
                    .any(|p| k.starts_with(p.as_bytes()))
            })
            .collect();
        if !keys.is_empty() {
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.cmd("TYPE").arg(k);
            }
            let types: Vec<String> = link.pipe(&pipe, "TYPE (pipeline)").await?;
            for (k, t) in keys.into_iter().zip(types) {
                out.push((String::from_utf8_lossy(&k).into_owned(), t));
            }
        }
        if next == "0" {
            return Ok(out);
        }
        cursor = next;
    }
}
