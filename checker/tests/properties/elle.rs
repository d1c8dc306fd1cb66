//! Properties of Elle's analysis (`check_elle`) on set, list-append and multi-key `txn`
//! list-append histories: a stretched sequential execution has no anomaly; one injected stale
//! read, lost write or duplicate append always makes the history `invalid`, and the anomalies
//! reported are exactly the ones its definition predicts:
//!
//! - `lost-write` / `stale-read` (Jepsen set-full), computed here by brute force from set-full's
//!   definitions for every add and append, must match the report's one for one, and a set key
//!   with no element stable or lost must be `unknown`;
//! - a read holding an element twice must be reported as `duplicate-elements` on its key;
//! - a `lost-update` only comes from a lost transaction, and names it;
//! - every other class must be one the fault can cause (a dependency cycle through the stale
//!   read's anti-dependency, or through the duplicate's write order), and every cycle's steps
//!   must hold in the history.

use crate::config;
use crate::sim::{self, key, Fault, Plan, Planned, Store, Timed};
use checker::{check_elle, Anomaly, CheckOptions, Report, Validity};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Lists (or sets, sorted) by key.
#[derive(Debug, Clone, Default)]
pub struct Lists<const SET: bool>(BTreeMap<String, Vec<i64>>);

/// An `add`/`append` (true) or a `read` of one key.
pub type Single = (bool, u8);

impl<const SET: bool> Store for Lists<SET> {
    type Intent = Single;

    fn read_only(intent: &Single) -> bool {
        !intent.0
    }

    fn plan(&self, (write, k): &Single, fresh: i64) -> Planned {
        let (f, invoke) = match (write, SET) {
            (true, true) => ("add", json!(fresh)),
            (true, false) => ("append", json!(fresh)),
            (false, _) => ("read", Value::Null),
        };
        Planned {
            f,
            key: Some(key(*k)),
            invoke,
        }
    }

    fn exec(&mut self, op: &Planned) -> Option<Value> {
        let list = self.0.entry(op.key.clone().unwrap()).or_default();
        match op.invoke.as_i64() {
            Some(v) if SET && list.contains(&v) => {}
            Some(v) => list.push(v),
            None if SET => list.sort_unstable(),
            None => {}
        }
        Some(if op.invoke.is_null() {
            json!(list)
        } else {
            op.invoke.clone()
        })
    }
}

/// Lists of several keys, appended and read by `txn`s of micro-ops (in one hash slot).
#[derive(Debug, Clone, Default)]
pub struct Txns(BTreeMap<String, Vec<i64>>);

impl Store for Txns {
    /// Micro-ops: (append?, key).
    type Intent = Vec<(bool, u8)>;

    fn read_only(intent: &Self::Intent) -> bool {
        intent.iter().all(|(append, _)| !append)
    }

    fn plan(&self, intent: &Self::Intent, fresh: i64) -> Planned {
        let mops = (0i64..).zip(intent).map(|(j, (append, k))| match append {
            true => json!(["append", key(*k), fresh * 8 + j]),
            false => json!(["r", key(*k), null]),
        });
        Planned {
            f: "txn",
            key: None,
            invoke: Value::Array(mops.collect()),
        }
    }

    fn exec(&mut self, op: &Planned) -> Option<Value> {
        let mut out = op.invoke.clone();
        for m in out.as_array_mut().unwrap() {
            let list = self
                .0
                .entry(m[1].as_str().unwrap().to_string())
                .or_default();
            match m[0].as_str() {
                Some("append") => list.push(m[2].as_i64().unwrap()),
                _ => m[2] = json!(list),
            }
        }
        Some(out)
    }
}

/// An op's appends and (when `ok`) reads, by key.
struct Access {
    appends: Vec<(String, i64)>,
    reads: Vec<(String, Vec<i64>)>,
}

fn access(op: &Timed) -> Access {
    let ints = |v: &Value| -> Vec<i64> {
        let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
        items.iter().map(|e| e.as_i64().unwrap()).collect()
    };
    let mut a = Access {
        appends: vec![],
        reads: vec![],
    };
    let mops = match (op.f, &op.key) {
        ("txn", _) => op.result.as_array().unwrap().clone(),
        ("read", Some(k)) => vec![json!(["r", k, op.result])],
        (_, Some(k)) => vec![json!(["append", k, op.invoke])],
        _ => unreachable!("single-key ops have keys"),
    };
    for m in mops {
        let k = m[1].as_str().unwrap().to_string();
        match m[0].as_str() {
            Some("append") => a.appends.push((k, m[2].as_i64().unwrap())),
            _ if op.ok() => a.reads.push((k, ints(&m[2]))),
            _ => {}
        }
    }
    a
}

/// A `lost-write` or `stale-read`: (class, key, element, line of the add).
type Miss = (String, String, i64, usize);

/// What Jepsen's set-full (`jepsen.checker/set-full`) predicts, computed by brute force from
/// its definitions: the `lost-write` and `stale-read` anomalies as (class, key, element, line of
/// the add), and the keys with an element stable or lost (a set key with neither is unknown).
///
/// An attempt's reads are the `ok` reads of its key that completed after it was invoked. It is
/// known at the earlier of its `ok` completion and the completion of a read holding it. With
/// reads ordered by invocation (then line, then place in the txn), lost: known, the last read
/// missing it comes after the last holding it (if any) and began after it was known; stale:
/// the last read missing it comes before the last holding it, and began after it was known.
fn predicted_misses(ops: &[Timed]) -> (BTreeSet<Miss>, BTreeSet<String>) {
    let acc: Vec<Access> = ops.iter().map(access).collect();
    let mut out = BTreeSet::new();
    let mut decided = BTreeSet::new();
    for (a, op) in ops.iter().enumerate() {
        for (k, v) in &acc[a].appends {
            // ((invocation, line, place), completion, holds v)
            let mut reads = Vec::new();
            for (r, x) in ops.iter().zip(&acc) {
                if !r.ok() || r.complete_ns <= op.invoke_ns {
                    continue;
                }
                for (i, (rk, seen)) in x.reads.iter().enumerate() {
                    if rk == k {
                        reads.push(((r.invoke_ns, r.line, i), r.complete_ns, seen.contains(v)));
                    }
                }
            }
            let held = reads.iter().filter(|r| r.2).map(|r| r.1);
            let known = held.chain(op.ok().then_some(op.complete_ns)).min();
            let last = |hit: bool| reads.iter().filter(|r| r.2 == hit).map(|r| r.0).max();
            let (present, absent) = (last(true), last(false));
            let stable = present.is_some() && absent < present;
            let class = match (known, present, absent) {
                (Some(kn), p, Some(ab)) if p < Some(ab) && kn < ab.0 => "lost-write",
                (Some(kn), Some(_), Some(ab)) if stable && kn < ab.0 => "stale-read",
                _ if stable => {
                    decided.insert(k.clone());
                    continue;
                }
                _ => continue,
            };
            decided.insert(k.clone());
            out.insert((class.to_string(), k.clone(), *v, op.line));
        }
    }
    (out, decided)
}

/// Per key, the elements some `ok` read holds twice.
fn duplicated(ops: &[Timed]) -> BTreeMap<String, BTreeSet<i64>> {
    let mut out: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for a in ops.iter().map(access) {
        for (k, seen) in a.reads {
            for (i, e) in seen.iter().enumerate() {
                if seen[..i].contains(e) {
                    out.entry(k.clone()).or_default().insert(*e);
                }
            }
        }
    }
    out
}

/// What the report's `lost-write` and `stale-read` anomalies say, in [`predicted_misses`]' terms.
fn reported_misses(report: &Report) -> BTreeSet<Miss> {
    let misses = report
        .anomalies
        .iter()
        .filter(|a| a.class == "lost-write" || a.class == "stale-read");
    misses
        .map(|a| {
            let d = &a.data;
            let line = d["add"]["line"].as_u64().unwrap() as usize;
            (
                a.class.clone(),
                a.keys[0].clone(),
                d["element"].as_i64().unwrap(),
                line,
            )
        })
        .collect()
}

/// Whether some read of `op` on key `k` holds `v`.
fn read_holds(op: &Timed, k: &str, v: Option<i64>) -> bool {
    let a = access(op);
    let mut reads = a.reads.iter().filter(|(rk, _)| rk == k);
    reads.any(|(_, l)| v.is_some_and(|v| l.contains(&v)))
}

/// Checks that every step of a cycle anomaly holds in the history, and that its class fits
/// its anti-dependency (rw) count; returns that count.
fn cycle_holds(a: &Anomaly, ops: &[Timed], report: &Report) -> Result<usize, TestCaseError> {
    let steps = a.data["cycle"].as_array();
    prop_assert!(steps.is_some(), "not a cycle: {}", a);
    let steps = steps.unwrap();
    let at = |event: &Value| {
        let line = event.as_u64().unwrap() as usize + 1;
        ops.iter()
            .position(|op| op.line == line)
            .unwrap_or_else(|| panic!("steps name ops: line {line} {a}"))
    };
    let mut rw = 0;
    for (i, s) in steps.iter().enumerate() {
        let next = &steps[(i + 1) % steps.len()];
        prop_assert_eq!(&s["to_txn"], &next["from_txn"], "steps chain: {}", a);
        let (from, to) = (at(&s["from_txn"]), at(&s["to_txn"]));
        let (fa, ta) = (access(&ops[from]), access(&ops[to]));
        let (k, v) = (s["key"].as_str().unwrap_or(""), s["value"].as_i64());
        let appends =
            |x: &Access, v: Option<i64>| x.appends.iter().any(|(ak, av)| ak == k && Some(*av) == v);
        let reads = |x: &Access, last: bool| {
            let seen = x.reads.iter().filter(|(rk, _)| rk == k);
            let mut seen = seen.map(|(_, l)| {
                if last {
                    l.last().copied() == v
                } else {
                    v.is_some_and(|v| !l.contains(&v))
                }
            });
            seen.any(|hit| hit)
        };
        // Some read of the key holds the earlier append before the later one.
        let before = |earlier: Option<i64>| {
            let pos = |l: &[i64], e: Option<i64>| l.iter().position(|x| Some(*x) == e);
            let mut reads = ops.iter().flat_map(|op| access(op).reads);
            reads.any(|(rk, l)| {
                rk == k && pos(&l, earlier) < pos(&l, v) && pos(&l, earlier).is_some()
            })
        };
        let holds = match s["edge_kind"].as_str().unwrap() {
            "ww" => {
                let earlier = s["from_value"].as_i64();
                // A never-read append comes after every element read (Elle's unobserved writes);
                // a read that holds it but disagrees with the longest read does not count.
                let disagree = report
                    .anomalies
                    .iter()
                    .any(|b| b.class == "incompatible-order" && b.keys[0] == k);
                let never = !ops.iter().any(|op| read_holds(op, k, v));
                let unread = s["unread"] == true && (never || disagree);
                appends(&fa, earlier) && appends(&ta, v) && (before(earlier) || unread)
            }
            "wr" => appends(&fa, v) && reads(&ta, true),
            "rw" => {
                rw += 1;
                reads(&fa, false) && appends(&ta, v)
            }
            "realtime" => ops[from].precedes(&ops[to]),
            _ => ops[from].line < ops[to].line,
        };
        prop_assert!(holds, "step {} does not hold: {}", i, a);
    }
    let base = a
        .class
        .split("-realtime")
        .next()
        .unwrap()
        .split("-process")
        .next()
        .unwrap();
    let fits = match base {
        "G0" | "G1c" => rw == 0,
        "G-single-item" => rw == 1,
        "G-nonadjacent-item" | "G2-item" => rw >= 2,
        _ => false,
    };
    prop_assert!(fits, "{} with {} rw edges", a.class, rw);
    Ok(rw)
}

/// Checks `ops` (with `fault` injected) with Elle; see the module doc for what must hold.
fn elle(mut ops: Vec<Timed>, fault: Fault) -> Result<(), TestCaseError> {
    let history = sim::history(&mut ops);
    let report = check_elle(&history, &CheckOptions::default()).unwrap();
    let context = format!("{fault:?}:\n{report}");
    let (misses, decided) = predicted_misses(&ops);
    let dups = duplicated(&ops);
    prop_assert_eq!(&reported_misses(&report), &misses, "{}", context);
    let faulty = fault != Fault::None;
    // A set key with no element stable or lost is unknown, as Jepsen's set-full says.
    let set = ops.iter().any(|op| op.f == "add");
    let undecided = |k: &str| set && !decided.contains(k);
    let key_undecided = report.keys.iter().any(|k| undecided(&k.key));
    prop_assert_eq!(
        report.valid,
        if faulty {
            Validity::Invalid
        } else if key_undecided {
            Validity::Unknown
        } else {
            Validity::Valid
        },
        "{}",
        context
    );
    prop_assert_eq!(
        faulty,
        !misses.is_empty() || !dups.is_empty(),
        "{}",
        context
    );
    for a in &report.anomalies {
        match a.class.as_str() {
            "lost-write" | "stale-read" => {}
            "duplicate-elements" => {
                let e = a.data["element"].as_i64().unwrap();
                let key_dups = dups.get(&a.keys[0]);
                prop_assert!(key_dups.is_some_and(|d| d.contains(&e)), "{}", context);
            }
            // A lost transaction that read its own append disagrees with every later read.
            "incompatible-order" => {
                let Fault::Lost { op } = fault else {
                    return Err(TestCaseError::fail(format!("unexpected: {context}")));
                };
                let victim = ops[op].line;
                prop_assert!(a.events.iter().any(|e| e.line == victim), "{}", context);
            }
            // The lost transaction read a key and appended to it; the next to do so read the
            // same version, since the append was dropped.
            "lost-update" => {
                let Fault::Lost { op } = fault else {
                    return Err(TestCaseError::fail(format!("unexpected: {context}")));
                };
                let victim = ops[op].line;
                prop_assert!(a.events.iter().any(|e| e.line == victim), "{}", context);
            }
            _ => {
                let rw = cycle_holds(a, &ops, &report)?;
                // A stale read anti-depends on an append it missed. A lost append is either
                // in the order (its transaction read it back) and later reads anti-depend on
                // it, or never read and placed after the longest read (Elle's unobserved
                // writes): either way every cycle it causes passes through it.
                let why = match fault {
                    Fault::Stale { .. } => rw >= 1,
                    Fault::Lost { op } => a.events.iter().any(|e| e.line == ops[op].line),
                    Fault::Replay { .. } => true,
                    Fault::None => false,
                };
                prop_assert!(why, "{} cannot come from this fault: {}", a.class, context);
            }
        }
    }
    for k in dups.keys() {
        let named = report
            .anomalies
            .iter()
            .any(|a| a.class == "duplicate-elements" && a.keys[0] == *k);
        prop_assert!(named, "key {}: no duplicate-elements: {}", k, context);
    }
    // Single-key workloads are also checked for linearizability, key by key.
    for kr in &report.keys {
        let bad = misses.iter().any(|m| m.1 == kr.key) || dups.contains_key(&kr.key);
        let expected = if bad {
            Validity::Invalid
        } else if undecided(&kr.key) {
            Validity::Unknown
        } else {
            Validity::Valid
        };
        prop_assert_eq!(kr.valid, expected, "key {}: {}", kr.key, context);
    }
    Ok(())
}

/// A witness of the fault's anomaly: an acknowledged append missing from a read that began
/// after it completed, or an element read twice.
fn observable(ops: &[Timed]) -> Option<()> {
    (!predicted_misses(ops).0.is_empty() || !duplicated(ops).is_empty()).then_some(())
}

fn valid<S: Store>(plan: &Plan<S::Intent>) -> Result<(), TestCaseError> {
    let ops = sim::simulate::<S>(plan, Fault::None);
    elle(ops, Fault::None)
}

/// Injects a fault of `kind` (0 stale read, 1 lost write, 2 duplicate) that shows, and checks.
fn invalid<S: Store>(
    plan: &Plan<S::Intent>,
    kind: usize,
    pick: Index,
) -> Result<(), TestCaseError> {
    let faults = sim::faults::<S>(plan)[kind].clone();
    let found = sim::inject::<S, _>(plan, &faults, pick, observable);
    prop_assume!(found.is_some(), "no fault of this kind is observable here");
    let (fault, ops, ()) = found.unwrap();
    elle(ops, fault)
}

fn single() -> impl Strategy<Value = Single> {
    (prop::bool::weighted(0.4), 0u8..2)
}

fn txn() -> impl Strategy<Value = Vec<(bool, u8)>> {
    prop::collection::vec((any::<bool>(), 0u8..3), 1..=4)
}

/// For each workload: `valid`, `stale_read`, `lost_write`, and (lists only) `duplicate`.
macro_rules! properties {
    ($($name:ident: $store:ty, $intent:expr, $ops:expr, [$($extra:ident)*];)*) => {$(
        mod $name {
            use super::*;

            proptest! {
                #![proptest_config(config())]

                #[test]
                fn valid(plan in sim::plan($intent, $ops)) {
                    super::valid::<$store>(&plan)?;
                }

                #[test]
                fn stale_read(plan in sim::plan($intent, $ops), pick: Index) {
                    invalid::<$store>(&plan, 0, pick)?;
                }

                #[test]
                fn lost_write(plan in sim::plan($intent, $ops), pick: Index) {
                    invalid::<$store>(&plan, 1, pick)?;
                }

                $(
                #[test]
                fn $extra(plan in sim::plan($intent, $ops), pick: Index) {
                    invalid::<$store>(&plan, 2, pick)?;
                }
                )*
            }
        }
    )*};
}

properties! {
    set: Lists<true>, single(), 8..=40, [];
    list_append: Lists<false>, single(), 8..=40, [duplicate];
    txn_list_append: Txns, txn(), 6..=30, [duplicate];
}
