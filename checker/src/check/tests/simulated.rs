//! Register checks on simulated linearizable histories: many clients, crashes, large keys.

use super::*;

/// A tiny deterministic PRNG (xorshift64*), so the generated histories are fixed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Simulates `clients` clients on one linearizable register: each op takes effect at a random
/// point inside its interval; some crash (`info`, then the client takes a new process number)
/// and take effect or not. Returns the history as events sorted by time.
fn simulate(seed: u64, clients: u64, ops_per_client: u64) -> History {
    simulate_with(seed, clients, ops_per_client, 50)
}

/// One simulated op: who, what, its interval, and when it took effect (if it did).
struct Sim {
    process: u64,
    f: &'static str,
    arg: i64,
    start: u64,
    end: u64,
    effect: Option<u64>,
    info: bool,
}

fn simulate_with(seed: u64, clients: u64, ops_per_client: u64, info_one_in: u64) -> History {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut sims = Vec::new();
    let mut next_value = 1;
    for c in 0..clients {
        let mut t = rng.below(100);
        let mut process = c;
        for _ in 0..ops_per_client {
            let start = t + 1 + rng.below(50);
            let end = start + 1 + rng.below(200);
            let info = rng.below(info_one_in) == 0;
            let (f, arg) = if rng.below(2) == 0 {
                next_value += 1;
                ("write", next_value)
            } else {
                ("read", 0)
            };
            let effect = (!info || rng.below(2) == 0).then(|| start + rng.below(end - start + 1));
            sims.push(Sim {
                process,
                f,
                arg,
                start,
                end,
                effect,
                info,
            });
            if info {
                process += clients;
            }
            t = end;
        }
    }
    let results = results(&sims);
    history(&sims, &results)
}

/// What each read returns when every op takes effect at its `effect` time, in turn.
fn results(sims: &[Sim]) -> Vec<Value> {
    let mut order: Vec<usize> = (0..sims.len())
        .filter(|&i| sims[i].effect.is_some())
        .collect();
    order.sort_by_key(|&i| (sims[i].effect, i));
    let mut state: Option<i64> = None;
    let mut results = vec![Value::Null; sims.len()];
    for i in order {
        match sims[i].f {
            "write" => state = Some(sims[i].arg),
            _ => results[i] = state.map_or(Value::Null, Value::from),
        }
    }
    results
}

/// The history of `sims`, reads returning `results`, as events sorted by time.
fn history(sims: &[Sim], results: &[Value]) -> History {
    use crate::history::{Event, EventType, Process};
    let mut events = Vec::new();
    for (i, s) in sims.iter().enumerate() {
        let arg = if s.f == "write" {
            Value::from(s.arg)
        } else {
            Value::Null
        };
        let mut invoke = Event::new(
            EventType::Invoke,
            Process::Client(s.process),
            s.f,
            arg.clone(),
            s.start,
        );
        invoke.key = Some("k".into());
        let (kind, result) = match (s.info, s.f) {
            (true, _) => (EventType::Info, arg),
            (false, "write") => (EventType::Ok, arg),
            (false, _) => (EventType::Ok, results[i].clone()),
        };
        let mut complete = Event::new(kind, Process::Client(s.process), s.f, result, s.end);
        complete.key = Some("k".into());
        events.push((s.start, 0, invoke));
        events.push((s.end, 1, complete));
    }
    // Invocations before completions at equal times keep every process's events in order.
    events.sort_by_key(|(t, kind, _)| (*t, *kind));
    History {
        events: events.into_iter().map(|(_, _, e)| e).collect(),
        ..History::default()
    }
}

#[test]
fn simulated_linearizable_histories_are_valid() {
    for seed in 1..=20 {
        let history = simulate(seed, 5, 20);
        let report = register(&history, &CheckOptions::default()).unwrap();
        assert_eq!(report.valid, Validity::Valid, "seed {seed}: {report}");
    }
}

#[test]
fn a_large_key_is_fast() {
    // 20 clients x 200 ops: a few thousand ops on one key, as from a 30 s run.
    let history = simulate(7, 20, 200);
    let start = std::time::Instant::now();
    let report = register(&history, &CheckOptions::default()).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(report.valid, Validity::Valid, "{report}");
    assert!(report.keys[0].ops >= 4000);
    eprintln!(
        "{} ops, {} steps, {elapsed:?}",
        report.keys[0].ops, report.keys[0].steps
    );
    // Corrupt one late read to a value overwritten long ago: a stale read.
    let mut history = history;
    let victim = history
        .events
        .iter()
        .rposition(|e| {
            e.kind == EventType::Ok && e.f == "read" && e.value.as_i64().is_some_and(|v| v > 100)
        })
        .unwrap();
    history.events[victim].value = Value::from(3);
    let start = std::time::Instant::now();
    let report = register(&history, &CheckOptions::default()).unwrap();
    eprintln!(
        "corrupted: {:?}, {} steps, {:?}",
        report.valid,
        report.keys[0].steps,
        start.elapsed()
    );
    assert_eq!(report.valid, Validity::Invalid, "{report}");
    // The explanation names the corrupted read (by its invocation): as the op that cannot be
    // placed, or as the op a later write would strand.
    let p = history.events[victim].process;
    let read = history.events[..victim]
        .iter()
        .rposition(|e| e.process == p)
        .unwrap();
    let e = report.keys[0].explanation.as_ref().unwrap();
    let named: Vec<usize> = [Some(&e.op), e.stranded.as_ref()]
        .into_iter()
        .flatten()
        .map(|op| op.event)
        .collect();
    // With the search's pruning, the contradiction surfaces where the value 3 is written: the
    // write of 3 (which the stale read pins) cannot be overwritten, so the explanation names
    // either the read or that write.
    let write = history
        .events
        .iter()
        .position(|e| e.f == "write" && e.value == 3)
        .unwrap();
    assert!(
        named.contains(&read) || named.contains(&write),
        "read at event {read}, write at {write}: {e}"
    );
}

/// Search steps and time by client count and crash rate (a benchmark: run with
/// `--release -- --ignored --nocapture`).
#[test]
#[ignore]
fn steps_by_concurrency() {
    for (clients, per, info) in [
        (5, 200, 1000000),
        (10, 200, 1000000),
        (20, 200, 1000000),
        (20, 200, 50),
        (10, 200, 50),
    ] {
        for seed in 1..=3 {
            let history = simulate_with(seed, clients, per, info);
            let start = std::time::Instant::now();
            let report = register(&history, &CheckOptions::default()).unwrap();
            eprintln!(
                "clients {clients} per {per} info 1/{info} seed {seed}: {} {} steps {:?}",
                report.valid,
                report.keys[0].steps,
                start.elapsed()
            );
        }
    }
}
