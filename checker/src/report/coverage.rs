//! How much of a run exercised the cluster's moving parts, as plain data: the client ops invoked
//! while their slot was migrating, those redirected and the hops by kind, and the ops sent in
//! pipelines or transactions with the redirects they met. Computed by `crate::coverage`.

use super::counts::RedirectCounts;
use crate::history::Batch;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// What a run covered: every count is of client ops, final reads apart (see the fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Client ops counted: every paired invocation but the nemesis's and the final reads.
    pub ops: u64,
    /// Final reads (process numbers from 2^32, after the run and its repairs): counted here
    /// only, in no other field, since they run when nothing migrates any more.
    #[serde(skip_serializing_if = "is_zero")]
    pub final_reads: u64,
    /// Ops whose events name no slot (neither `slot` nor a hop): never counted as migrating.
    #[serde(skip_serializing_if = "is_zero")]
    pub no_slot: u64,
    /// Ops invoked while their slot was migrating: after the event that opened the slot's
    /// latest migration and before the one that ended it.
    pub in_migration: u64,
    /// Ops that followed at least one redirect hop.
    pub redirected: u64,
    /// The hops those ops followed, by kind.
    pub hops: RedirectCounts,
    /// Ops sent in a pipeline, a MULTI/EXEC or a Lua script (`batch`), by kind.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub batches: BTreeMap<Batch, BatchCoverage>,
    /// `txn` ops (multi-key commands and transactions).
    #[serde(skip_serializing_if = "TxnCoverage::is_empty")]
    pub txn: TxnCoverage,
}

/// Ops of one batch kind and how many of them met a redirect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BatchCoverage {
    /// Ops sent that way.
    pub ops: u64,
    /// Of them, those that followed at least one hop.
    pub redirected: u64,
}

/// `txn` ops (MSET/MGET/DEL of several keys, MULTI/EXEC and Lua transactions) and the
/// migration redirects they met.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TxnCoverage {
    /// `txn` ops.
    pub ops: u64,
    /// Of them, those that followed at least one `ASK` or `TRYAGAIN` hop.
    pub met_ask_or_tryagain: u64,
    /// Of them, those invoked while their slot was migrating.
    pub in_migration: u64,
}

impl TxnCoverage {
    /// No `txn` op at all: the field is left out of results.json.
    pub fn is_empty(&self) -> bool {
        self.ops == 0
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `12,345` for 12345: counts of a run read at a glance.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `part` as a percentage of `whole` with one decimal (`0.0%` of nothing).
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0.0%".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

impl Coverage {
    /// The first line: ops, the share invoked in a migrating slot, redirected ops and hops.
    pub fn ops_line(&self) -> String {
        let mut line = format!("{} client ops", thousands(self.ops));
        if self.final_reads > 0 {
            line.push_str(&format!(" (+{} final reads)", thousands(self.final_reads)));
        }
        line.push_str(&format!(
            ", {} invoked in a migrating slot ({})",
            percent(self.in_migration, self.ops),
            thousands(self.in_migration)
        ));
        if self.no_slot > 0 {
            line.push_str(&format!(", {} with no slot", thousands(self.no_slot)));
        }
        line.push_str(&format!(
            ", {} redirected ({}) with {} hops ({})",
            thousands(self.redirected),
            percent(self.redirected, self.ops),
            thousands(self.hops.total()),
            self.hops
        ));
        line
    }

    /// The second line: `txn` ops and those that met ASK/TRYAGAIN, then ops by batch kind.
    pub fn batch_line(&self) -> String {
        let t = &self.txn;
        let mut line = format!(
            "txn ops {} ({} met ASK/TRYAGAIN, {} in a migrating slot); batched:",
            thousands(t.ops),
            thousands(t.met_ask_or_tryagain),
            thousands(t.in_migration)
        );
        let kinds = [Batch::Pipeline, Batch::Multi, Batch::Lua];
        for (i, kind) in kinds.into_iter().enumerate() {
            let b = self.batches.get(&kind).copied().unwrap_or_default();
            let sep = if i == 0 { "" } else { "," };
            line.push_str(&format!("{sep} {} {}", batch_name(kind), thousands(b.ops)));
            if b.ops > 0 {
                line.push_str(&format!(" ({} redirected)", thousands(b.redirected)));
            }
        }
        line
    }
}

/// The name a batch kind has in histories (`pipeline`, `multi`, `lua`).
pub fn batch_name(kind: Batch) -> &'static str {
    match kind {
        Batch::Pipeline => "pipeline",
        Batch::Multi => "multi",
        Batch::Lua => "lua",
    }
}

/// Two lines, `coverage: 12,345 client ops, 8.1% invoked in a migrating slot (1,000), ...` and
/// `coverage: txn ops 310 (41 met ASK/TRYAGAIN, ...); batched: pipeline 0, multi 0, lua 0`.
impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "coverage: {}\ncoverage: {}",
            self.ops_line(),
            self.batch_line()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_and_percent() {
        let table = [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (1234567, "1,234,567"),
        ];
        for (n, want) in table {
            assert_eq!(thousands(n), want);
        }
        assert_eq!(percent(81, 1000), "8.1%");
        assert_eq!(percent(1, 0), "0.0%");
    }

    #[test]
    fn renders_two_lines() {
        let mut c = Coverage {
            ops: 12345,
            in_migration: 1000,
            redirected: 1204,
            ..Coverage::default()
        };
        c.hops.ask = 900;
        c.hops.moved = 250;
        c.hops.tryagain = 54;
        c.txn = TxnCoverage {
            ops: 310,
            met_ask_or_tryagain: 41,
            in_migration: 50,
        };
        c.batches.insert(
            Batch::Multi,
            BatchCoverage {
                ops: 310,
                redirected: 45,
            },
        );
        assert_eq!(
            c.to_string(),
            "coverage: 12,345 client ops, 8.1% invoked in a migrating slot (1,000), 1,204 \
             redirected (9.8%) with 1,204 hops (moved 250, ask 900, tryagain 54, clusterdown 0)\n\
             coverage: txn ops 310 (41 met ASK/TRYAGAIN, 50 in a migrating slot); batched: \
             pipeline 0, multi 310 (45 redirected), lua 0"
        );
    }
}
