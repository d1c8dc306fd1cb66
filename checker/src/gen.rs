//! Generated histories of a linearizable store, for benchmarks and property tests.
//!
//! [`Simulation`] runs `clients` clients against one in-memory object per key: each op picks a
//! key, is invoked, takes effect at a random point inside its `[invoke, complete]` interval (so the
//! result is what a linearizable store would return), and completes. A fraction of ops crash
//! (`info`): such an op takes effect or not (a coin flip) and its client continues under a new
//! process number, as the format requires. Written values are unique (one counter for the whole
//! run). Everything is a pure function of the [`GenConfig`] (its `seed` included): no clock, no
//! I/O beyond the writer given, so a seed names a history.

use crate::model::ModelKind;
use std::collections::{BTreeSet, BinaryHeap};
use std::fmt::Write as _;
use std::io::{self, Write};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// Which object every key holds (register, cas-register, counter, set, list-append, kv).
    pub model: ModelKind,
    /// Distinct keys, chosen uniformly per op.
    pub keys: u32,
    /// Concurrent clients (each with at most one op outstanding).
    pub clients: u32,
    /// Ops in the history.
    pub ops: u64,
    /// Fraction of ops that crash (`info`), in `[0, 1]`.
    pub info_fraction: f64,
    /// The seed every random choice follows.
    pub seed: u64,
}

impl GenConfig {
    /// A register history: `keys` keys, `clients` clients, `ops` ops, 1% `info`.
    pub fn register(keys: u32, clients: u32, ops: u64, seed: u64) -> Self {
        GenConfig {
            model: ModelKind::Register,
            keys,
            clients,
            ops,
            info_fraction: 0.01,
            seed,
        }
    }
}

/// A small deterministic PRNG (splitmix64): fast, seedable, and enough for simulations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose stream is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// One key's object in the simulated store.
#[derive(Debug, Clone)]
enum Object {
    Register(Option<i64>),
    Counter(i64),
    Set(BTreeSet<i64>),
    List(Vec<i64>),
    Kv(String),
}

/// An op in flight: what it does, and (once it took effect) what it returned.
#[derive(Debug, Clone)]
struct Flight {
    process: u64,
    key: u32,
    f: &'static str,
    /// The invocation's `value` as JSON text.
    arg: String,
    /// The completion's `value` as JSON text, once known.
    result: Option<String>,
    /// For a cas: whether it applied (decides `ok` or `fail`).
    applied: bool,
    info: bool,
    effect_ns: Option<u64>,
    complete_ns: u64,
}

/// What a client does next, ordered by time (then by client, for determinism).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Invoke,
    Effect,
    Complete,
}

/// One applied write, recorded for tests that inject anomalies: the value before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overwrite {
    /// The key.
    pub key: String,
    /// The value written (write, or a cas's new value).
    pub value: i64,
    /// The register's value just before, in the simulated linearization.
    pub previous: Option<i64>,
}

/// A running simulation; [`Simulation::next_line`] yields the history one line at a time, so a
/// history of any length is written in constant memory.
#[derive(Debug)]
pub struct Simulation {
    cfg: GenConfig,
    rng: Rng,
    objects: Vec<Object>,
    flights: Vec<Option<Flight>>,
    /// Min-heap (by `Reverse`) of (time, step, client).
    queue: BinaryHeap<std::cmp::Reverse<(u64, Step, u32)>>,
    /// Processes per client: the current one.
    processes: Vec<u64>,
    next_process: u64,
    invoked: u64,
    next_value: i64,
    header_done: bool,
    /// Register overwrites in linearization order, when recording (tests).
    pub overwrites: Option<Vec<Overwrite>>,
}

impl Simulation {
    /// A simulation of `cfg`, not yet started.
    pub fn new(cfg: &GenConfig) -> Self {
        assert!(
            cfg.keys > 0 && cfg.clients > 0,
            "keys and clients must be > 0"
        );
        let init = match cfg.model {
            ModelKind::Register | ModelKind::CasRegister | ModelKind::MultiRegister => {
                Object::Register(None)
            }
            ModelKind::Counter => Object::Counter(0),
            ModelKind::Set => Object::Set(BTreeSet::new()),
            ModelKind::ListAppend | ModelKind::Txn => Object::List(Vec::new()),
            ModelKind::Kv => Object::Kv(String::new()),
            ModelKind::Types => panic!("the generator simulates one model; `types` mixes several"),
        };
        let mut rng = Rng::new(cfg.seed);
        let mut queue = BinaryHeap::new();
        for c in 0..cfg.clients {
            queue.push(std::cmp::Reverse((rng.below(1000), Step::Invoke, c)));
        }
        Simulation {
            cfg: cfg.clone(),
            rng,
            objects: vec![init; cfg.keys as usize],
            flights: vec![None; cfg.clients as usize],
            queue,
            processes: (0..u64::from(cfg.clients)).collect(),
            next_process: u64::from(cfg.clients),
            invoked: 0,
            next_value: 0,
            header_done: false,
            overwrites: None,
        }
    }

    /// Writes the next line (without its newline) into `out`; `false` when the history is done.
    pub fn next_line(&mut self, out: &mut String) -> bool {
        out.clear();
        if !self.header_done {
            self.header_done = true;
            let _ = write!(
                out,
                r#"{{"type":"header","format":"slotcheck-history","version":1,"workload":"{}","generated":true,"seed":{},"keys":{},"clients":{},"ops":{}}}"#,
                self.cfg.model.name(),
                self.cfg.seed,
                self.cfg.keys,
                self.cfg.clients,
                self.cfg.ops
            );
            return true;
        }
        while let Some(std::cmp::Reverse((t, step, c))) = self.queue.pop() {
            match step {
                Step::Invoke => {
                    if self.invoked == self.cfg.ops {
                        continue;
                    }
                    self.invoked += 1;
                    self.invoke(t, c, out);
                    return true;
                }
                Step::Effect => self.effect(c),
                Step::Complete => {
                    self.complete(t, c, out);
                    return true;
                }
            }
        }
        false
    }

    fn fresh(&mut self) -> i64 {
        self.next_value += 1;
        self.next_value
    }

    fn invoke(&mut self, t: u64, c: u32, out: &mut String) {
        let key = self.rng.below(u64::from(self.cfg.keys)) as u32;
        let roll = self.rng.below(100);
        let (f, arg) = match (&self.cfg.model, &self.objects[key as usize]) {
            (ModelKind::CasRegister, Object::Register(cur)) if roll < 30 => {
                // Expect the current value most of the time, so that many cas apply.
                let expected = if self.rng.chance(0.7) {
                    *cur
                } else {
                    Some(self.fresh())
                };
                let new = self.fresh();
                ("cas", format!("[{},{new}]", json_opt(expected)))
            }
            (_, Object::Register(_)) if roll < 50 => ("write", self.fresh().to_string()),
            (_, Object::Register(_)) => ("read", "null".into()),
            (_, Object::Counter(_)) if roll < 50 => ("incr", (1 + self.rng.below(5)).to_string()),
            (_, Object::Set(_)) if roll < 50 => ("add", self.fresh().to_string()),
            (_, Object::List(_)) if roll < 50 => ("append", self.fresh().to_string()),
            (_, Object::Kv(_)) if roll < 20 => ("put", format!("\"p{};\"", self.fresh())),
            (_, Object::Kv(_)) if roll < 50 => ("append", format!("\"a{};\"", self.fresh())),
            (_, Object::Kv(_)) => ("get", "null".into()),
            (_, _) => ("read", "null".into()),
        };
        let duration = 1 + self.rng.below(2000);
        let info = self.rng.chance(self.cfg.info_fraction);
        let effect_ns = (!info || self.rng.chance(0.5)).then(|| t + self.rng.below(duration + 1));
        let process = self.processes[c as usize];
        line(out, "invoke", process, f, key, &arg, t);
        let flight = Flight {
            process,
            key,
            f,
            arg,
            result: None,
            applied: false,
            info,
            effect_ns,
            complete_ns: t + duration,
        };
        match effect_ns {
            Some(e) => self.queue.push(std::cmp::Reverse((e, Step::Effect, c))),
            None => self
                .queue
                .push(std::cmp::Reverse((t + duration, Step::Complete, c))),
        }
        self.flights[c as usize] = Some(flight);
    }

    fn effect(&mut self, c: u32) {
        let fl = self.flights[c as usize].as_mut().expect("an op in flight");
        let object = &mut self.objects[fl.key as usize];
        let int = |s: &str| s.parse::<i64>().expect("generated integer");
        let mut overwrite = None;
        fl.result = Some(match (object, fl.f) {
            (Object::Register(v), "read") => json_opt(*v),
            (Object::Register(v), "write") => {
                overwrite = Some((int(&fl.arg), *v));
                *v = Some(int(&fl.arg));
                fl.arg.clone()
            }
            (Object::Register(v), "cas") => {
                let inner = &fl.arg[1..fl.arg.len() - 1];
                let (e, n) = inner.split_once(',').expect("a pair");
                let expected = (e != "null").then(|| int(e));
                fl.applied = expected == *v;
                if fl.applied {
                    overwrite = Some((int(n), *v));
                    *v = Some(int(n));
                }
                fl.arg.clone()
            }
            (Object::Counter(n), "incr") => {
                *n += int(&fl.arg);
                n.to_string()
            }
            (Object::Counter(n), _) => n.to_string(),
            (Object::Set(s), "add") => {
                s.insert(int(&fl.arg));
                fl.arg.clone()
            }
            (Object::Set(s), _) => json_ints(s.iter()),
            (Object::List(l), "append") => {
                l.push(int(&fl.arg));
                fl.arg.clone()
            }
            (Object::List(l), _) => json_ints(l.iter()),
            (Object::Kv(s), "put") => {
                *s = fl.arg[1..fl.arg.len() - 1].to_string();
                fl.arg.clone()
            }
            (Object::Kv(s), "append") => {
                s.push_str(&fl.arg[1..fl.arg.len() - 1]);
                fl.arg.clone()
            }
            (Object::Kv(s), _) => format!("\"{s}\""),
            (_, f) => unreachable!("no {f} on this object"),
        });
        if let (Some(log), Some((value, previous))) = (self.overwrites.as_mut(), overwrite) {
            log.push(Overwrite {
                key: format!("k{}", fl.key),
                value,
                previous,
            });
        }
        let done = fl.complete_ns;
        self.queue
            .push(std::cmp::Reverse((done, Step::Complete, c)));
    }

    fn complete(&mut self, t: u64, c: u32, out: &mut String) {
        let fl = self.flights[c as usize].take().expect("an op in flight");
        debug_assert_eq!(t, fl.complete_ns);
        debug_assert!(fl.effect_ns.is_none_or(|e| e <= t));
        let (kind, value) = if fl.info {
            ("info", fl.arg.as_str())
        } else if fl.f == "cas" && !fl.applied {
            ("fail", fl.arg.as_str())
        } else {
            ("ok", fl.result.as_deref().expect("took effect"))
        };
        line(out, kind, fl.process, fl.f, fl.key, value, t);
        if fl.info {
            self.processes[c as usize] = self.next_process;
            self.next_process += 1;
        }
        let think = self.rng.below(1000);
        self.queue
            .push(std::cmp::Reverse((t + 1 + think, Step::Invoke, c)));
    }
}

fn json_opt(v: Option<i64>) -> String {
    v.map_or_else(|| "null".to_string(), |v| v.to_string())
}

fn json_ints<'a>(items: impl Iterator<Item = &'a i64>) -> String {
    let mut s = String::from("[");
    for (i, v) in items.enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{v}");
    }
    s.push(']');
    s
}

fn line(out: &mut String, kind: &str, process: u64, f: &str, key: u32, value: &str, t: u64) {
    let _ = write!(
        out,
        r#"{{"type":"{kind}","process":{process},"f":"{f}","key":"k{key}","value":{value},"time":{t}}}"#
    );
}

/// Writes the whole history of `cfg` to `out` as JSON Lines; returns the number of lines.
pub fn write_history<W: Write>(cfg: &GenConfig, out: &mut W) -> io::Result<u64> {
    let mut sim = Simulation::new(cfg);
    let mut buf = String::new();
    let mut lines = 0;
    while sim.next_line(&mut buf) {
        out.write_all(buf.as_bytes())?;
        out.write_all(b"\n")?;
        lines += 1;
    }
    Ok(lines)
}

/// The history of `cfg` as text, and the register overwrites in linearization order (tests).
pub fn history_text(cfg: &GenConfig) -> (String, Vec<Overwrite>) {
    let mut sim = Simulation::new(cfg);
    sim.overwrites = Some(Vec::new());
    let mut text = String::new();
    let mut buf = String::new();
    while sim.next_line(&mut buf) {
        text.push_str(&buf);
        text.push('\n');
    }
    (text, sim.overwrites.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;

    #[test]
    fn same_seed_same_history_and_valid_pairing() {
        let cfg = GenConfig::register(3, 4, 200, 9);
        let (a, _) = history_text(&cfg);
        let (b, _) = history_text(&cfg);
        assert_eq!(a, b);
        let history = History::parse(a.as_bytes(), "gen").unwrap();
        assert_eq!(history.events.len(), 400);
        let ops = crate::op::Ops::from_history(&history).unwrap();
        assert_eq!(ops.ops.len(), 200);
        let (c, _) = history_text(&GenConfig::register(3, 4, 200, 10));
        assert_ne!(a, c);
    }
}
