//! The register-like models as sequential stores (see `sim`), and witnesses: a few ops of a
//! history whose real-time order alone rules out every linearization, found by simple arguments
//! independent of the checker's search.

use crate::sim::{key, Planned, Store, Timed, KEYS};
use checker::Outcome;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A witness: the key it is on, and the ops (indexes) that contradict each other.
pub type Witness = (String, Vec<usize>);

/// A read, write or cas of one register (`None` key: the single keyless cas-register).
#[derive(Debug, Clone)]
pub enum RegIntent {
    /// Reads the register.
    Read(Option<u8>),
    /// Writes a fresh value.
    Write(Option<u8>),
    /// Cas whose expected value is the current one (`true`) or a value never written.
    Cas(Option<u8>, bool),
}

/// Register ops on three keys (`keyed`) or on the one keyless register.
pub fn reg_intent(keyed: bool) -> impl Strategy<Value = RegIntent> {
    let k = if keyed {
        (0u8..3).prop_map(Some).boxed()
    } else {
        Just(None).boxed()
    };
    prop_oneof![
        4 => k.clone().prop_map(RegIntent::Read),
        3 => k.clone().prop_map(RegIntent::Write),
        2 => (k, prop::bool::weighted(0.7)).prop_map(|(k, hit)| RegIntent::Cas(k, hit)),
    ]
}

/// Registers by key; a register never written reads `null`, or 0 when `ZERO`.
#[derive(Debug, Clone, Default)]
pub struct Registers<const ZERO: bool>(BTreeMap<Option<u8>, i64>);

impl<const ZERO: bool> Registers<ZERO> {
    fn get(&self, k: Option<u8>) -> Value {
        match self.0.get(&k) {
            Some(v) => json!(v),
            None if ZERO => json!(0),
            None => Value::Null,
        }
    }
}

/// slotcheck's registers: three keys, `null` until written.
pub type Keyed = Registers<false>;

/// The cas-register of other tools: one keyless register, 0 until written.
pub type Keyless = Registers<true>;

impl<const ZERO: bool> Store for Registers<ZERO> {
    type Intent = RegIntent;

    fn read_only(intent: &RegIntent) -> bool {
        matches!(intent, RegIntent::Read(_))
    }

    fn plan(&self, intent: &RegIntent, fresh: i64) -> Planned {
        let (f, k, invoke) = match intent {
            RegIntent::Read(k) => ("read", *k, Value::Null),
            RegIntent::Write(k) => ("write", *k, json!(fresh)),
            RegIntent::Cas(k, hit) => {
                let expected = if *hit { self.get(*k) } else { json!(-fresh) };
                ("cas", *k, json!([expected, fresh]))
            }
        };
        Planned {
            f,
            key: k.map(key),
            invoke,
        }
    }

    fn exec(&mut self, op: &Planned) -> Option<Value> {
        let k = op
            .key
            .as_ref()
            .map(|name| KEYS.iter().position(|n| n == name).unwrap() as u8);
        match op.f {
            "read" => Some(self.get(k)),
            "write" => {
                self.0.insert(k, op.invoke.as_i64().unwrap());
                Some(op.invoke.clone())
            }
            _ => (self.get(k) == op.invoke[0]).then(|| {
                self.0.insert(k, op.invoke[1].as_i64().unwrap());
                op.invoke.clone()
            }),
        }
    }
}

/// Registers written and read together by `txn`s of micro-ops (Knossos's multi-register).
#[derive(Debug, Clone, Default)]
pub struct Multi(BTreeMap<String, i64>);

impl Store for Multi {
    /// Micro-ops: (write?, key).
    type Intent = Vec<(bool, u8)>;

    fn read_only(intent: &Self::Intent) -> bool {
        intent.iter().all(|(write, _)| !write)
    }

    fn plan(&self, intent: &Self::Intent, fresh: i64) -> Planned {
        let mops: Vec<Value> = (0i64..)
            .zip(intent)
            .map(|(j, (write, k))| match write {
                true => json!(["w", key(*k), fresh * 4 + j]),
                false => json!(["r", key(*k), null]),
            })
            .collect();
        Planned {
            f: "txn",
            key: None,
            invoke: Value::Array(mops),
        }
    }

    fn exec(&mut self, op: &Planned) -> Option<Value> {
        let mut out = op.invoke.clone();
        for m in out.as_array_mut().unwrap() {
            let k = m[1].as_str().unwrap().to_string();
            if m[0] == "w" {
                self.0.insert(k, m[2].as_i64().unwrap());
            } else {
                m[2] = json!(self.0.get(&k).copied().unwrap_or(0));
            }
        }
        Some(out)
    }
}

/// Register accesses of an `ok` op: its reads of values from before it (key, value read) and
/// its last write to each key.
type Accesses = (Vec<(String, Value)>, Vec<(String, Value)>);

fn accesses(op: &Timed) -> Accesses {
    let k = || op.key.clone().unwrap_or_default();
    match op.f {
        "read" => (vec![(k(), op.result.clone())], vec![]),
        "write" => (vec![], vec![(k(), op.invoke.clone())]),
        "cas" => (
            vec![(k(), op.invoke[0].clone())],
            vec![(k(), op.invoke[1].clone())],
        ),
        _ => {
            let (mut reads, mut writes): Accesses = (vec![], vec![]);
            for m in op.result.as_array().unwrap() {
                let k = m[1].as_str().unwrap().to_string();
                let written = writes.iter().position(|(w, _)| *w == k);
                match (m[0].as_str(), written) {
                    (Some("w"), Some(i)) => writes[i].1 = m[2].clone(),
                    (Some("w"), None) => writes.push((k, m[2].clone())),
                    (_, None) => reads.push((k, m[2].clone())),
                    (_, Some(_)) => {}
                }
            }
            (reads, writes)
        }
    }
}

/// A stale register read: op `r` read `key` = `u` although `w2` overwrote it, after the
/// writer of `u` (`w0`, if `u` is not the initial value) completed and before `r` began.
/// Values are unique, so no linearization orders `w0 < w2 < r` with `r` reading `u`.
pub fn overwritten(ops: &[Timed], initial: &Value) -> Option<Witness> {
    let acc: Vec<Accesses> = ops
        .iter()
        .map(|op| match op.ok() {
            true => accesses(op),
            false => Default::default(),
        })
        .collect();
    for (r, read) in ops.iter().enumerate() {
        for (k, u) in &acc[r].0 {
            for (w2, write) in ops.iter().enumerate() {
                let overwrites = acc[w2].1.iter().any(|(wk, v)| wk == k && v != u);
                if !overwrites || !write.precedes(read) {
                    continue;
                }
                if u == initial {
                    return Some((k.clone(), vec![w2, r]));
                }
                let w0 = (0..ops.len()).find(|&w0| {
                    ops[w0].precedes(write) && acc[w0].1.iter().any(|(wk, v)| wk == k && v == u)
                });
                if let Some(w0) = w0 {
                    return Some((k.clone(), vec![w0, w2, r]));
                }
            }
        }
    }
    None
}

/// An increment (delta, key) or a read of a counter.
#[derive(Debug, Clone)]
pub enum CountIntent {
    /// Adds the delta; returns the new value.
    Incr(u8, i64),
    /// Reads the value.
    Read(u8),
}

/// Counters by key, starting at 0; `incr` returns the new value.
#[derive(Debug, Clone, Default)]
pub struct Counters(BTreeMap<String, i64>);

impl Store for Counters {
    type Intent = CountIntent;

    fn read_only(intent: &CountIntent) -> bool {
        matches!(intent, CountIntent::Read(_))
    }

    fn plan(&self, intent: &CountIntent, _fresh: i64) -> Planned {
        let (f, k, invoke) = match intent {
            CountIntent::Incr(k, d) => ("incr", k, json!(d)),
            CountIntent::Read(k) => ("read", k, Value::Null),
        };
        Planned {
            f,
            key: Some(format!("c{k}")),
            invoke,
        }
    }

    fn exec(&mut self, op: &Planned) -> Option<Value> {
        let v = self.0.entry(op.key.clone().unwrap()).or_insert(0);
        *v += op.invoke.as_i64().unwrap_or(0);
        Some(json!(*v))
    }
}

/// A counter whose deltas are positive cannot be linearized if: an op that completed before
/// another began saw a larger value than it; two increments started from the same value; a
/// value exceeds every delta together; or the last increment falls short of the `ok` ones.
pub fn counter_witness(ops: &[Timed]) -> Option<Witness> {
    let incr = |op: &Timed| (op.f == "incr").then(|| op.invoke.as_i64().unwrap());
    // (pre, post) value of each ok op.
    let seen = |op: &Timed| {
        let v = op.result.as_i64()?;
        op.ok().then(|| (v - incr(op).unwrap_or(0), v))
    };
    for (a, x) in ops.iter().enumerate() {
        for (b, y) in ops.iter().enumerate() {
            let (Some(sx), Some(sy)) = (seen(x), seen(y)) else {
                continue;
            };
            let same_start = a < b && incr(x).is_some() && incr(y).is_some() && sx.0 == sy.0;
            if x.key == y.key && ((x.precedes(y) && sx.1 > sy.0) || same_start) {
                return Some((x.key.clone().unwrap(), vec![a, b]));
            }
        }
    }
    let keys: std::collections::BTreeSet<&String> =
        ops.iter().filter_map(|op| op.key.as_ref()).collect();
    for k in keys {
        let on: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i].key.as_ref() == Some(k) && seen(&ops[i]).is_some())
            .collect();
        let deltas = |f: &dyn Fn(&Timed) -> bool| -> i64 {
            let ops = ops.iter().filter(|op| op.key.as_ref() == Some(k) && f(op));
            ops.filter_map(incr).sum()
        };
        let post = |i: &usize| seen(&ops[*i]).unwrap().1;
        // No state exceeds all deltas that may have applied...
        if let Some(top) = on.iter().copied().max_by_key(post) {
            if post(&top) > deltas(&|op| op.outcome != Outcome::Fail) {
                return Some((k.clone(), vec![top]));
            }
        }
        // ...and the increment linearized last leaves at least all acknowledged ones.
        let incrs = on.iter().copied().filter(|&i| incr(&ops[i]).is_some());
        if let Some(top) = incrs.max_by_key(post) {
            if post(&top) < deltas(&|op| op.ok()) {
                return Some((k.clone(), vec![top]));
            }
        }
    }
    None
}

/// A get, put or append of a string key (Porcupine's kv); put and append write `<n>` tokens.
#[derive(Debug, Clone)]
pub enum KvIntent {
    /// Reads the string.
    Get(u8),
    /// Replaces it with a fresh token.
    Put(u8),
    /// Appends a fresh token.
    Append(u8),
}

/// Strings by key, starting empty.
#[derive(Debug, Clone, Default)]
pub struct Strings(BTreeMap<String, String>);

impl Store for Strings {
    type Intent = KvIntent;

    fn read_only(intent: &KvIntent) -> bool {
        matches!(intent, KvIntent::Get(_))
    }

    fn plan(&self, intent: &KvIntent, fresh: i64) -> Planned {
        let (f, k, invoke) = match intent {
            KvIntent::Get(k) => ("get", k, Value::Null),
            KvIntent::Put(k) => ("put", k, json!(format!("<{fresh}>"))),
            KvIntent::Append(k) => ("append", k, json!(format!("<{fresh}>"))),
        };
        Planned {
            f,
            key: Some(format!("s{k}")),
            invoke,
        }
    }

    fn exec(&mut self, op: &Planned) -> Option<Value> {
        let s = self.0.entry(op.key.clone().unwrap()).or_default();
        match op.f {
            "get" => return Some(json!(s)),
            "put" => *s = op.invoke.as_str().unwrap().to_string(),
            _ => s.push_str(op.invoke.as_str().unwrap()),
        }
        Some(op.invoke.clone())
    }
}

/// The tokens of a kv string: `<3><7>` is [3, 7]; token `n` was written by op `n - 1`.
fn tokens(s: &Value) -> Vec<usize> {
    let s = s.as_str().unwrap_or_default();
    s.split_terminator('>')
        .map(|t| t.trim_start_matches('<').parse().unwrap())
        .collect()
}

/// After a put or append `w2` takes effect, every string of its key holds `w2`'s token or starts
/// with the token of a later put. So a get that began after `w2` completed and shows neither
/// (an empty string, one built by appends only, or one from a put that completed before `w2`
/// began) is stale; a token seen twice was applied twice.
pub fn kv_witness(ops: &[Timed]) -> Option<Witness> {
    for (r, get) in ops
        .iter()
        .enumerate()
        .filter(|(_, op)| op.ok() && op.f == "get")
    {
        let seen = tokens(&get.result);
        let k = get.key.clone().unwrap();
        if seen.iter().enumerate().any(|(i, t)| seen[..i].contains(t)) {
            return Some((k, vec![r]));
        }
        for (w2, write) in ops.iter().enumerate() {
            if write.f == "get"
                || write.key != get.key
                || !write.precedes(get)
                || seen.contains(&(w2 + 1))
            {
                continue;
            }
            match seen.first().map(|t| t - 1) {
                Some(p) if ops[p].f == "put" && ops[p].precedes(write) => {
                    return Some((k, vec![p, w2, r]))
                }
                Some(p) if ops[p].f == "put" => {}
                _ => return Some((k, vec![w2, r])),
            }
        }
    }
    None
}

/// Increments by 1 to 3, and reads, of two counters.
pub fn count_intent() -> impl Strategy<Value = CountIntent> {
    prop_oneof![
        (0u8..2, 1i64..=3).prop_map(|(k, d)| CountIntent::Incr(k, d)),
        (0u8..2).prop_map(CountIntent::Read),
    ]
}

/// Gets, puts and appends on two string keys, mostly gets and appends.
pub fn kv_intent() -> impl Strategy<Value = KvIntent> {
    prop_oneof![
        3 => (0u8..2).prop_map(KvIntent::Get),
        1 => (0u8..2).prop_map(KvIntent::Put),
        2 => (0u8..2).prop_map(KvIntent::Append),
    ]
}

/// Transactions of one to three reads and writes over the three hash-tagged keys.
pub fn txn_intent() -> impl Strategy<Value = Vec<(bool, u8)>> {
    prop::collection::vec((any::<bool>(), 0u8..3), 1..=3)
}
