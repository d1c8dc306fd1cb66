//! The checks of single-object models that sit below the Elle analysis: the register check the
//! CLI runs, and the list-append and set checks that Elle's single-key workloads run too (the
//! model-generic path is in `partition`; the dispatch on [`ModelKind`](crate::ModelKind) in
//! `kind`).
//!
//! Before searching a key, ops that cannot matter are dropped: `fail` ops and `info` reads (see
//! the register model), and `info` writes and cas whose new value no op ever observes (see
//! [`Register`]'s `prune`). Without the last, every crashed write would stay concurrent with the
//! rest of the history and multiply the search.

use crate::history::History;
use crate::model::list_append::ListAppend;
use crate::model::parse_ints;
use crate::model::set::Set;
use crate::options::{CheckError, CheckOptions};
use crate::partition::{self, Split};
use crate::report::Report;
use serde_json::Value;

/// The name of this check in reports.
const CHECKER: &str = "register-linearizable";

/// Checks every key of `history` against the register model; every op must name a key.
pub fn register(history: &History, opts: &CheckOptions) -> Result<Report, CheckError> {
    let model = opts.register()?;
    partition::check(
        history,
        &model,
        &opts.budget(),
        CHECKER,
        Split::ByKeyRequired,
    )
}

/// Checks every key of `history` against the list-append model, reporting as `checker`.
pub(crate) fn list_append(
    history: &History,
    opts: &CheckOptions,
    checker: &'static str,
) -> Result<Report, CheckError> {
    let initial = initial_ints(&opts.initial)?;
    let model = ListAppend { initial };
    partition::check(history, &model, &opts.budget(), checker, Split::ByKey)
}

/// Checks every key of `history` against the set model, reporting as `checker`.
pub(crate) fn set(
    history: &History,
    opts: &CheckOptions,
    checker: &'static str,
) -> Result<Report, CheckError> {
    let initial = initial_ints(&opts.initial)?.into_iter().collect();
    partition::check(
        history,
        &Set { initial },
        &opts.budget(),
        checker,
        Split::ByKey,
    )
}

/// An initial value of integers (a list or set's): an array, or `null` for none.
fn initial_ints(v: &Value) -> Result<Vec<i64>, CheckError> {
    match v {
        Value::Null => Ok(Vec::new()),
        v => parse_ints(v).map_err(bad_initial),
    }
}

/// The error for an unusable `initial` option.
pub(crate) fn bad_initial(message: String) -> CheckError {
    CheckError::Option {
        option: "initial",
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType;
    use crate::op::OpError;
    use crate::report::OutcomeCounts;
    use crate::report::RedirectCounts;
    use crate::testkit::h;
    use crate::validity::Validity;

    fn check(table: &str) -> Report {
        register(&h(table), &CheckOptions::default()).unwrap()
    }

    /// The invalid key's explanation as (failing op's line, prefix lines, state, stranded op's
    /// line).
    fn why(report: &Report) -> (usize, Vec<usize>, String, Option<usize>) {
        let e = report
            .keys
            .iter()
            .find_map(|k| k.explanation.as_ref())
            .expect("an explanation");
        let prefix = e.prefix.iter().map(|op| op.line).collect();
        (
            e.op.line,
            prefix,
            e.state.clone(),
            e.stranded.as_ref().map(|op| op.line),
        )
    }

    #[test]
    fn valid_concurrent_history() {
        let report = check(
            "
            0  invoke write k 1    @10
            1  invoke read  k null @15
            0  ok     write k 1    @20
            1  ok     read  k null @25
            2  invoke read  k null @30
            0  invoke write k 2    @35
            1  invoke read  k null @36
            2  ok     read  k 1    @40
            1  ok     read  k 2    @45
            0  ok     write k 2    @50
            2  invoke read  k null @55
            2  ok     read  k 2    @60
        ",
        );
        assert_eq!(report.valid, Validity::Valid, "{report}");
        assert_eq!(report.keys.len(), 1);
        assert_eq!((report.keys[0].ops, report.keys[0].ops_searched), (6, 6));
    }

    #[test]
    fn stale_read() {
        let report = check(
            "
            0  invoke write k 1    @10
            0  ok     write k 1    @20
            0  invoke write k 2    @30
            0  ok     write k 2    @40
            1  invoke read  k null @50
            1  ok     read  k 1    @60
        ",
        );
        assert_eq!(report.valid, Validity::Invalid);
        // Writing 2 (line 3) must finish by 40 ns, but would strand the read of 1 (line 5).
        assert_eq!(why(&report), (3, vec![1], "1".into(), Some(5)));
        let text = report.to_string();
        assert!(
            text.contains("line 3: process 0 write 2 (ok, 30..40 ns)"),
            "{text}"
        );
        assert!(
            text.contains("line 5: process 1 read -> 1 (ok, 50..60 ns)"),
            "{text}"
        );
    }

    #[test]
    fn lost_write() {
        // The write of 2 is acknowledged, yet later reads still see 1.
        let report = check(
            "
            0  invoke write k 1    @10
            0  ok     write k 1    @20
            1  invoke read  k null @30
            1  ok     read  k 1    @40
            0  invoke write k 2    @50
            0  ok     write k 2    @60
            1  invoke read  k null @70
            1  ok     read  k 1    @80
            2  invoke read  k null @90
            2  ok     read  k 1    @100
        ",
        );
        assert_eq!(report.valid, Validity::Invalid);
        assert_eq!(why(&report), (5, vec![1, 3], "1".into(), Some(7)));
    }

    #[test]
    fn phantom_value() {
        let report = check(
            "
            0  invoke write k 1    @10
            0  ok     write k 1    @20
            1  invoke read  k null @30
            1  ok     read  k 7    @40
        ",
        );
        assert_eq!(report.valid, Validity::Invalid);
        assert_eq!(why(&report), (3, vec![1], "1".into(), None));
    }

    #[test]
    fn info_write_taking_effect_later_is_valid() {
        let report = check(
            "
            0  invoke write k 1    @10
            0  info   write k 1    @20
            1  invoke read  k null @30
            1  ok     read  k null @40
            1  invoke read  k null @50
            1  ok     read  k 1    @60
        ",
        );
        assert_eq!(report.valid, Validity::Valid, "{report}");
        assert_eq!(
            report.ops,
            OutcomeCounts {
                ok: 2,
                fail: 0,
                info: 1
            }
        );
    }

    #[test]
    fn info_write_never_read_is_valid_and_not_searched() {
        let report = check(
            "
            0  invoke write k 1    @10
            0  info   write k 1    @20
            1  invoke read  k null @30
            1  ok     read  k null @40
            2  invoke write k 2    @45
            1  invoke read  k null @50
            1  ok     read  k null @60
        ",
        );
        assert_eq!(report.valid, Validity::Valid, "{report}");
        // Both crashed writes (one `info`, one never completed) are unobserved: dropped.
        assert_eq!((report.keys[0].ops, report.keys[0].ops_searched), (4, 2));
    }

    #[test]
    fn failed_write_whose_value_is_read() {
        let report = check(
            "
            0  invoke write k 1    @10
            0  fail   write k 1    @20
            1  invoke read  k null @30
            1  ok     read  k 1    @40
        ",
        );
        assert_eq!(report.valid, Validity::Invalid);
        assert_eq!(why(&report), (3, vec![], "absent".into(), None));
    }

    #[test]
    fn cas_ok_and_fail() {
        let valid = check(
            "
            0  invoke write k 1     @10
            0  ok     write k 1     @20
            0  invoke cas   k [1,2] @30
            0  ok     cas   k [1,2] @40
            1  invoke cas   k [1,3] @50
            1  fail   cas   k [1,3] @60
            1  invoke read  k null  @70
            1  ok     read  k 2     @80
        ",
        );
        assert_eq!(valid.valid, Validity::Valid, "{valid}");
        // An ok cas whose expected value was not there.
        let bad = check(
            "
            0  invoke write k 3     @10
            0  ok     write k 3     @20
            0  invoke cas   k [1,2] @30
            0  ok     cas   k [1,2] @40
        ",
        );
        assert_eq!(why(&bad), (3, vec![1], "3".into(), None));
        // A failed cas whose new value shows up.
        let bad = check(
            "
            0  invoke write k 1     @10
            0  ok     write k 1     @20
            0  invoke cas   k [1,2] @30
            0  fail   cas   k [1,2] @40
            1  invoke read  k null  @50
            1  ok     read  k 2     @60
        ",
        );
        assert_eq!(why(&bad), (5, vec![1], "1".into(), None));
    }

    #[test]
    fn info_cas_may_apply_or_not() {
        let report = check(
            "
            0  invoke cas   k [null,1] @10
            0  info   cas   k [null,1] @20
            1  invoke read  k null     @30
            1  ok     read  k null     @40
            1  invoke read  k null     @50
            1  ok     read  k 1        @60
        ",
        );
        assert_eq!(report.valid, Validity::Valid, "{report}");
    }

    #[test]
    fn keys_are_independent_and_invalid_wins() {
        let report = check(
            "
            0  invoke write a 1    @10
            0  ok     write a 1    @20
            1  invoke read  b null @30
            1  ok     read  b 1    @40
            0  invoke read  a null @50
            0  ok     read  a 1    @60
        ",
        );
        assert_eq!(report.valid, Validity::Invalid);
        let verdicts: Vec<_> = report
            .keys
            .iter()
            .map(|k| (k.key.as_str(), k.valid))
            .collect();
        assert_eq!(verdicts, [("a", Validity::Valid), ("b", Validity::Invalid)]);
    }

    #[test]
    fn step_budget_gives_unknown() {
        let history = h("
            0  invoke write k 1    @10
            1  invoke write k 2    @11
            0  ok     write k 1    @20
            1  ok     write k 2    @21
            0  invoke read  k null @30
            0  ok     read  k 1    @40
        ");
        let opts = CheckOptions {
            steps_max_per_key: 3,
            ..CheckOptions::default()
        };
        let report = register(&history, &opts).unwrap();
        assert_eq!(report.valid, Validity::Unknown);
        assert_eq!(report.valid.exit_code(), 2);
        assert_eq!(report.keys[0].steps, 3);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["valid"], Value::from("unknown"));
        assert_eq!(
            json["keys"][0]["unknown"],
            Value::from("step budget (3 steps) exhausted")
        );
        let unbounded = register(&history, &CheckOptions::default()).unwrap();
        assert_eq!(unbounded.valid, Validity::Valid);
    }

    #[test]
    fn initial_value_is_configurable() {
        let history = h("
            0  invoke read k null @10
            0  ok     read k 5    @20
        ");
        let opts = CheckOptions {
            initial: Value::from(5),
            ..CheckOptions::default()
        };
        assert_eq!(register(&history, &opts).unwrap().valid, Validity::Valid);
        assert_eq!(
            register(&history, &CheckOptions::default()).unwrap().valid,
            Validity::Invalid
        );
        let opts = CheckOptions {
            initial: Value::from("x"),
            ..CheckOptions::default()
        };
        let err = register(&history, &opts).unwrap_err();
        assert!(
            matches!(
                err,
                CheckError::Option {
                    option: "initial",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn fields_that_do_not_fit_name_line_and_field() {
        let err = |table: &str| register(&h(table), &CheckOptions::default()).unwrap_err();
        let e = err("
            0  invoke write k 1 @10
            0  ok     write - 1 @20
        ");
        assert!(
            matches!(
                e,
                CheckError::Op(OpError::Mismatch {
                    line: 2,
                    field: "key",
                    ..
                })
            ),
            "{e}"
        );
        let e = err("
            0  invoke write - 1 @10
            0  ok     write - 1 @20
        ");
        assert_eq!(e.to_string(), "line 1 (event 0): field `key`: the register model needs a key on every op; this write has none");
        let e = err("
            0  invoke incr k 1 @10
        ");
        assert!(
            matches!(
                e,
                CheckError::Field {
                    line: 1,
                    field: "f",
                    ..
                }
            ),
            "{e}"
        );
        let e = err("
            0  invoke read k null  @10
            0  ok     read k \"x\" @20
        ");
        assert!(
            matches!(
                e,
                CheckError::Field {
                    line: 2,
                    field: "value",
                    ..
                }
            ),
            "{e}"
        );
        let e = err("
            0  invoke cas  k 1  @10
        ");
        assert!(
            matches!(
                e,
                CheckError::Field {
                    line: 1,
                    field: "value",
                    ..
                }
            ),
            "{e}"
        );
        let e = err("
            0  invoke write k 1 @10
            0  ok     write k 2 @20
        ");
        assert!(
            matches!(
                e,
                CheckError::Field {
                    line: 2,
                    field: "value",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn report_counts_and_json_shape() {
        let report = check(
            "
            nemesis info   migrate-start - {}   @5
            0       invoke write         k 1    @10
            0       ok     write         k 1    @20   moved ask
            1       invoke read          k null @30
            1       fail   read          k null @40   clusterdown
            1       invoke read          k null @50
            1       info   read          k null @60
            nemesis info   migrate-end   - {}   @70
        ",
        );
        assert_eq!(report.valid, Validity::Valid);
        assert_eq!(
            report.ops,
            OutcomeCounts {
                ok: 1,
                fail: 1,
                info: 1
            }
        );
        assert_eq!(
            report.ops_by_f["read"],
            OutcomeCounts {
                ok: 0,
                fail: 1,
                info: 1
            }
        );
        assert_eq!(
            report.redirects,
            RedirectCounts {
                moved: 1,
                ask: 1,
                tryagain: 0,
                clusterdown: 1,
                ..RedirectCounts::default()
            }
        );
        assert_eq!(report.nemesis_events, 2);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["valid"], Value::Bool(true));
        assert_eq!(json["redirects"]["ask"], Value::from(1));
        let text = report.to_string();
        assert!(
            text.starts_with("register-linearizable: valid (1 keys: 1 valid"),
            "{text}"
        );
    }

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

    fn simulate_with(seed: u64, clients: u64, ops_per_client: u64, info_one_in: u64) -> History {
        use crate::history::{Event, EventType, Process};
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        struct Sim {
            process: u64,
            f: &'static str,
            arg: i64,
            start: u64,
            end: u64,
            effect: Option<u64>,
            info: bool,
        }
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
                let effect =
                    (!info || rng.below(2) == 0).then(|| start + rng.below(end - start + 1));
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
                e.kind == EventType::Ok
                    && e.f == "read"
                    && e.value.as_i64().is_some_and(|v| v > 100)
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
}
