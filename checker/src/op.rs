//! Pairing a history's client events into [`Op`]s: each invocation with its process's next event.
//!
//! The format's rules (history-format-v1, "Rules") are enforced here, once, so that every checker
//! can rely on them: a process has at most one operation outstanding; its next event completes it;
//! after an `info` it issues nothing more; an invocation never completed by the end counts as
//! `info`. A completion must name the same `f` and `key` as its invocation and must not be earlier
//! than it. Nemesis events are annotations, not operations: they are kept aside by event index.

use crate::history::{Batch, Event, EventType, GaveUp, History, Process, Redirect};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// How an operation ended, as far as the client knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It certainly happened, between its invocation and completion.
    Ok,
    /// It certainly did not happen.
    Fail,
    /// It may or may not have happened, at any time after its invocation (or was never completed).
    Info,
}

impl Outcome {
    /// The name used in histories and reports.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        }
    }
}

/// An invocation paired with its completion: the unit every checker reasons about.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// The client's logical process.
    pub process: u64,
    /// The operation's name (`read`, `write`, `cas`, ...).
    pub f: String,
    /// The key, for single-key operations.
    pub key: Option<String>,
    /// The argument, from the invocation.
    pub invoke_value: Value,
    /// The result, from the completion (`null` when never completed).
    pub complete_value: Value,
    /// How it ended.
    pub outcome: Outcome,
    /// When it was invoked, ns since the run's start.
    pub invoke_ns: u64,
    /// When it completed, ns since the run's start; `u64::MAX` for `info` (open to the end).
    pub complete_ns: u64,
    /// Position of the invocation in `History::events` (among the file's events for a reduced
    /// history: see `History::indices`).
    pub invoke_event: usize,
    /// Position of the completion, as `invoke_event`; `None` when never completed.
    pub complete_event: Option<usize>,
    /// The node that finally answered (from the completion, else the invocation).
    pub node: Option<String>,
    /// The key's hash slot (from the completion, else the invocation).
    pub slot: Option<u16>,
    /// The redirect hops followed (from the completion, else the invocation).
    pub redirects: Vec<Redirect>,
    /// The error text on `fail` / `info`.
    pub error: Option<String>,
    /// Whether and where the client gave up following redirects (from the completion).
    pub gave_up: Option<GaveUp>,
    /// How it was sent with other commands (pipeline, MULTI/EXEC, Lua), from the completion,
    /// else the invocation; `None` for an op sent alone.
    pub batch: Option<Batch>,
}

/// A history's client operations in invocation order, plus its nemesis events set aside.
#[derive(Debug, Clone, Default)]
pub struct Ops {
    /// Every client operation, ordered by the position of its invocation.
    pub ops: Vec<Op>,
    /// Positions in `History::events` of the nemesis annotations.
    pub nemesis: Vec<usize>,
}

/// A violation of the format's pairing rules; every variant names the event, its line and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// A completion arrived for a process with nothing outstanding.
    #[error("line {line} (event {event}): field `type`: process {process} completes with no outstanding invocation")]
    CompletionWithoutInvoke {
        /// Position in `History::events`.
        event: usize,
        /// 1-based line number in the file.
        line: usize,
        /// The process.
        process: u64,
    },
    /// A process invoked again before its previous invocation completed.
    #[error("line {line} (event {event}): field `type`: process {process} invokes while its invocation at line {outstanding_line} is outstanding")]
    InvokeWhileOutstanding {
        /// Position in `History::events`.
        event: usize,
        /// 1-based line number in the file.
        line: usize,
        /// The process.
        process: u64,
        /// Line of the outstanding invocation.
        outstanding_line: usize,
    },
    /// A process issued an event after an `info` retired it.
    #[error("line {line} (event {event}): field `process`: process {process} issues an event after its `info` at line {info_line} (a client continues under a new process number)")]
    IssuedAfterInfo {
        /// Position in `History::events`.
        event: usize,
        /// 1-based line number in the file.
        line: usize,
        /// The process.
        process: u64,
        /// Line of the `info` that retired the process.
        info_line: usize,
    },
    /// A completion names a different `f` or `key` than its invocation.
    #[error("line {line} (event {event}): field `{field}`: the completion says {}, its invocation at line {invoke_line} says {}", crate::echo::Echo(completion), crate::echo::Echo(invocation))]
    Mismatch {
        /// Position in `History::events`.
        event: usize,
        /// 1-based line number in the file.
        line: usize,
        /// `f` or `key`.
        field: &'static str,
        /// Line of the invocation.
        invoke_line: usize,
        /// The invocation's value of the field.
        invocation: String,
        /// The completion's value of the field.
        completion: String,
    },
    /// A completion is timestamped before its invocation.
    #[error("line {line} (event {event}): field `time`: the completion at {complete_ns} ns precedes its invocation at {invoke_ns} ns (line {invoke_line})")]
    TimeReversed {
        /// Position in `History::events`.
        event: usize,
        /// 1-based line number in the file.
        line: usize,
        /// Line of the invocation.
        invoke_line: usize,
        /// The invocation's time.
        invoke_ns: u64,
        /// The completion's time.
        complete_ns: u64,
    },
}

/// The 1-based file line of event `event` (events follow the optional header line).
///
/// Imported histories record each event's line in `History::lines`. A slotcheck history does
/// not, so one with blank lines would shift this; the writers never emit blank lines.
pub fn line_of(history: &History, event: usize) -> usize {
    // A reduced history's events are found by their position in the file.
    let at = match history.indices.is_empty() {
        true => Some(event),
        false => history.position(event),
    };
    if let Some(&line) = at.and_then(|i| history.lines.get(i)) {
        return line;
    }
    event + 1 + usize::from(history.header.is_some())
}

/// What a process is doing between events.
enum Pending {
    /// Nothing outstanding.
    Idle,
    /// Invoked; the index into `ops` of the op awaiting completion.
    Outstanding(usize),
    /// Retired by an `info` at this event.
    Retired(usize),
}

impl Ops {
    /// Pairs every client event of `history` into an [`Op`]; see the module doc for the rules.
    pub fn from_history(history: &History) -> Result<Ops, OpError> {
        let mut result = Ops::default();
        let mut processes: HashMap<u64, Pending> = HashMap::new();
        for (i, e) in history.events.iter().enumerate() {
            let event = history.index(i);
            let process = match e.process {
                Process::Nemesis => {
                    result.nemesis.push(event);
                    continue;
                }
                Process::Client(p) => p,
            };
            let line = line_of(history, event);
            let pending = processes.entry(process).or_insert(Pending::Idle);
            match (&*pending, e.kind) {
                (Pending::Retired(info_event), _) => {
                    return Err(OpError::IssuedAfterInfo {
                        event,
                        line,
                        process,
                        info_line: line_of(history, *info_event),
                    })
                }
                (Pending::Idle, EventType::Invoke) => {
                    *pending = Pending::Outstanding(result.ops.len());
                    result.ops.push(Op::invoked(process, event, e));
                }
                (Pending::Idle, _) => {
                    return Err(OpError::CompletionWithoutInvoke {
                        event,
                        line,
                        process,
                    })
                }
                (Pending::Outstanding(i), EventType::Invoke) => {
                    return Err(OpError::InvokeWhileOutstanding {
                        event,
                        line,
                        process,
                        outstanding_line: line_of(history, result.ops[*i].invoke_event),
                    })
                }
                (Pending::Outstanding(i), kind) => {
                    let op = &mut result.ops[*i];
                    op.complete(history, event, e)?;
                    *pending = if kind == EventType::Info {
                        Pending::Retired(event)
                    } else {
                        Pending::Idle
                    };
                }
            }
        }
        debug_assert!(result
            .ops
            .windows(2)
            .all(|w| w[0].invoke_event < w[1].invoke_event));
        debug_assert!(result.ops.iter().all(|op| op.invoke_ns <= op.complete_ns));
        Ok(result)
    }
}

impl Op {
    /// An op as of its invocation: outcome `Info` until a completion says otherwise.
    fn invoked(process: u64, event: usize, e: &Event) -> Op {
        debug_assert_eq!(e.kind, EventType::Invoke);
        Op {
            process,
            f: e.f.clone(),
            key: e.key.clone(),
            invoke_value: e.value.clone(),
            complete_value: Value::Null,
            outcome: Outcome::Info,
            invoke_ns: e.time,
            complete_ns: u64::MAX,
            invoke_event: event,
            complete_event: None,
            node: e.node.clone(),
            slot: e.slot,
            redirects: e.redirects.clone(),
            error: None,
            gave_up: None,
            batch: e.batch,
        }
    }

    /// Records completion event `e` (at position `event`), checking it matches the invocation.
    fn complete(&mut self, history: &History, event: usize, e: &Event) -> Result<(), OpError> {
        debug_assert!(self.complete_event.is_none());
        let line = line_of(history, event);
        let invoke_line = line_of(history, self.invoke_event);
        if e.f != self.f {
            return Err(OpError::Mismatch {
                event,
                line,
                field: "f",
                invoke_line,
                invocation: format!("{:?}", self.f),
                completion: format!("{:?}", e.f),
            });
        }
        if e.key != self.key {
            let show =
                |k: &Option<String>| k.as_ref().map_or("no key".into(), |k| format!("{k:?}"));
            return Err(OpError::Mismatch {
                event,
                line,
                field: "key",
                invoke_line,
                invocation: show(&self.key),
                completion: show(&e.key),
            });
        }
        if e.time < self.invoke_ns {
            return Err(OpError::TimeReversed {
                event,
                line,
                invoke_line,
                invoke_ns: self.invoke_ns,
                complete_ns: e.time,
            });
        }
        self.outcome = match e.kind {
            EventType::Ok => Outcome::Ok,
            EventType::Fail => Outcome::Fail,
            EventType::Info => Outcome::Info,
            EventType::Invoke => unreachable!("an invocation is not a completion"),
        };
        // An `info` op may take effect at any time after its invocation: its interval is open.
        self.complete_ns = if self.outcome == Outcome::Info {
            u64::MAX
        } else {
            e.time
        };
        self.complete_value = e.value.clone();
        self.complete_event = Some(event);
        if e.node.is_some() {
            self.node = e.node.clone();
        }
        if e.slot.is_some() {
            self.slot = e.slot;
        }
        if !e.redirects.is_empty() {
            self.redirects = e.redirects.clone();
        }
        self.error = e.error.clone();
        self.gave_up = e.gave_up.clone();
        if e.batch.is_some() {
            self.batch = e.batch;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::h;

    #[test]
    fn pairs_per_process_and_sets_nemesis_aside() {
        let history = h("
            0        invoke write       k 1    @10
            1        invoke read        k null @11
            nemesis  info   kill        - {}   @12
            1        ok     read        k 1    @25
            0        ok     write       k 1    @20
            1        invoke write       k 2    @30
            0        invoke cas         k [1,3] @31
            0        info   cas         k [1,3] @40
        ");
        let ops = Ops::from_history(&history).unwrap();
        assert_eq!(ops.nemesis, vec![2]);
        assert_eq!(ops.ops.len(), 4);
        let [w, r, w2, c] = &ops.ops[..] else {
            panic!()
        };
        assert_eq!(
            (w.process, w.outcome, w.invoke_ns, w.complete_ns),
            (0, Outcome::Ok, 10, 20)
        );
        assert_eq!(
            (r.outcome, &r.complete_value),
            (Outcome::Ok, &Value::from(1))
        );
        assert_eq!(
            (w2.outcome, w2.complete_ns, w2.complete_event),
            (Outcome::Info, u64::MAX, None)
        );
        assert_eq!(
            (c.outcome, c.complete_ns, c.complete_event),
            (Outcome::Info, u64::MAX, Some(7))
        );
    }

    #[test]
    fn gave_up_comes_from_the_completion() {
        let text = concat!(
            r#"{"type":"invoke","process":0,"f":"write","key":"k","value":1,"time":10}"#,
            "\n",
            r#"{"type":"fail","process":0,"f":"write","key":"k","value":1,"time":20,"error":"gave up after 16 hops: MOVED 1 b:2","gave_up":{"kind":"moved","reply":"MOVED 1 b:2","hops":16}}"#,
            "\n",
            r#"{"type":"invoke","process":0,"f":"read","key":"k","value":null,"time":30}"#,
            "\n",
        );
        let history = History::parse(text.as_bytes(), "h.jsonl").unwrap();
        let ops = Ops::from_history(&history).unwrap();
        let want = GaveUp::new(crate::RedirectKind::Moved, "MOVED 1 b:2", 16);
        assert_eq!(ops.ops[0].gave_up, Some(want));
        assert_eq!(ops.ops[1].gave_up, None, "never completed");
    }

    #[test]
    fn completion_without_invoke_names_its_line() {
        let history = h("
            0  invoke write k 1 @10
            0  ok     write k 1 @20
            0  ok     write k 1 @30
        ");
        let err = Ops::from_history(&history).unwrap_err();
        assert_eq!(
            err,
            OpError::CompletionWithoutInvoke {
                event: 2,
                line: 3,
                process: 0
            }
        );
        assert!(
            err.to_string()
                .starts_with("line 3 (event 2): field `type`"),
            "{err}"
        );
    }

    #[test]
    fn second_invoke_while_outstanding() {
        let history = h("
            0  invoke write k 1 @10
            0  invoke write k 2 @20
        ");
        let err = Ops::from_history(&history).unwrap_err();
        assert_eq!(
            err,
            OpError::InvokeWhileOutstanding {
                event: 1,
                line: 2,
                process: 0,
                outstanding_line: 1
            }
        );
    }

    #[test]
    fn issuing_after_info() {
        let history = h("
            3  invoke write k 1 @10
            3  info   write k 1 @20
            3  invoke read  k null @30
        ");
        let err = Ops::from_history(&history).unwrap_err();
        assert_eq!(
            err,
            OpError::IssuedAfterInfo {
                event: 2,
                line: 3,
                process: 3,
                info_line: 2
            }
        );
    }

    #[test]
    fn f_and_key_mismatch() {
        // The completion's (event, line, mismatched field) for each pair of rows.
        let cases = [
            (
                "0  invoke write k 1 @10\n0  ok     read  k 1 @20",
                (1, 2, "f"),
            ),
            (
                "0  invoke write k 1 @10\n0  ok     write j 1 @20",
                (1, 2, "key"),
            ),
        ];
        for (table, expected) in cases {
            match Ops::from_history(&h(table)).unwrap_err() {
                OpError::Mismatch {
                    event, line, field, ..
                } => assert_eq!((event, line, field), expected, "{table}"),
                other => panic!("{other}"),
            }
        }
    }

    #[test]
    fn completion_before_invocation() {
        let history = h("
            0  invoke write k 1 @10
            0  ok     write k 1 @9
        ");
        let err = Ops::from_history(&history).unwrap_err();
        assert!(
            matches!(err, OpError::TimeReversed { line: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn lines_count_the_header() {
        let text = concat!(
            r#"{"type":"header","format":"slotcheck-history","version":1}"#,
            "\n",
            r#"{"type":"ok","process":0,"f":"read","key":"a","value":null,"time":1}"#,
            "\n"
        );
        let history = History::parse(text.as_bytes(), "h").unwrap();
        let err = Ops::from_history(&history).unwrap_err();
        assert_eq!(
            err,
            OpError::CompletionWithoutInvoke {
                event: 0,
                line: 2,
                process: 0
            }
        );
    }
}
