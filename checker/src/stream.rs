//! Checking a history file without holding its events: the path for histories of millions of ops.
//!
//! [`History`] keeps every [`Event`](crate::Event) with its JSON values: about 20 million of them
//! for a 10-million-op run, several GiB. Here each line is parsed and at once folded into a
//! compact per-key op (interned key, the model's input, times, lines), so memory grows with the
//! ops that matter to the check, not with the text. The rules are the same as
//! [`History::parse`], [`Ops::from_history`](crate::Ops::from_history) and the register model
//! apply, with the same errors (plus the file's name): a line the fast reader does not take is
//! read again by `History::parse`, which names the field that is wrong. Keys are then checked in
//! parallel as by [`check`](crate::check): zones first, the search when they do not apply.

use crate::check::{CheckError, CheckOptions};
use crate::explanation::{Explanation, OpRef};
use crate::history::{EventType, History, HistoryError, Process, Redirect, RedirectKind};
use crate::kind::ModelKind;
use crate::model::register::{prune_keep, Register, RegisterOp};
use crate::model::{Model, OpModel};
use crate::op::{Op, OpError, Outcome};
use crate::partition::search;
use crate::report::{KeyReport, OutcomeCounts, RedirectCounts, Report};
use crate::validity::Validity;
use crate::wgl::{Exhausted, Interval, Search};
use rayon::prelude::*;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

/// Why a history file could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read, or a line breaks the format.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The events break the pairing rules or do not fit the model.
    #[error("{path}:{source}")]
    Check {
        /// The file.
        path: String,
        /// What is wrong, with its line and field.
        source: CheckError,
    },
}

/// Checks the history at `path` against `model`. Registers are checked streaming (see the
/// module doc); other models read the whole [`History`] and call [`crate::check`].
pub fn check_file(path: &Path, model: ModelKind, opts: &CheckOptions) -> Result<Report, FileError> {
    let name = path.display().to_string();
    let wrap = |source| FileError::Check {
        path: name.clone(),
        source,
    };
    if model != ModelKind::Register {
        let history = History::read_file(path)?;
        return crate::kind::check(&history, model, opts).map_err(wrap);
    }
    let file = std::fs::File::open(path).map_err(|source| HistoryError::Io {
        path: name.clone(),
        source,
    })?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let register = opts.register().map_err(wrap)?;
    let ops = read(reader, &name, &register)?;
    finish(ops, &register, opts).map_err(wrap)
}

/// One line as the fast reader takes it; anything unusual fails here and goes to the full reader.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    process: u64,
    #[serde(borrow)]
    f: Cow<'a, str>,
    #[serde(default, borrow)]
    key: Option<Cow<'a, str>>,
    value: Value,
    time: u64,
    #[serde(default)]
    #[allow(dead_code)]
    index: Option<u64>,
    #[serde(default, borrow)]
    #[allow(dead_code)]
    wall: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    #[allow(dead_code)]
    node: Option<Cow<'a, str>>,
    #[serde(default)]
    slot: Option<u16>,
    #[serde(default)]
    redirects: Option<Vec<Redirect>>,
    #[serde(default, borrow)]
    #[allow(dead_code)]
    error: Option<Cow<'a, str>>,
}

/// One client event, however it was read.
struct Ev<'a> {
    kind: EventType,
    process: u64,
    f: Cow<'a, str>,
    key: Option<Cow<'a, str>>,
    value: Value,
    time: u64,
    redirects: Vec<RedirectKind>,
}

/// An invocation awaiting its completion.
struct Invoked {
    event: usize,
    line: usize,
    f: String,
    key: Option<String>,
    value: Value,
    time: u64,
    redirects: Vec<RedirectKind>,
}

enum Pending {
    Idle,
    Outstanding(Box<Invoked>),
    Retired { info_line: usize },
}

/// An op the search may need, in 64 bytes or so.
#[derive(Debug, Clone, Copy)]
struct Compact {
    input: RegisterOp,
    outcome: Outcome,
    process: u64,
    invoke_ns: u64,
    complete_ns: u64,
    invoke_event: u32,
    invoke_line: u32,
    f: u8,
}

const F_NAMES: [&str; 3] = ["read", "write", "cas"];

/// One key's ops.
#[derive(Default)]
struct KeyOps {
    ops: usize,
    kept: Vec<Compact>,
}

/// Everything the streaming reader keeps.
#[derive(Default)]
struct Collected {
    keys: Vec<(String, KeyOps)>,
    report: Option<Report>,
}

fn read<R: BufRead>(mut reader: R, name: &str, model: &Register) -> Result<Collected, FileError> {
    let check_err = |source: CheckError| FileError::Check {
        path: name.to_string(),
        source,
    };
    let mut report = Report {
        checker: "register-linearizable",
        valid: Validity::Valid,
        keys: Vec::new(),
        ops: OutcomeCounts::default(),
        ops_by_f: BTreeMap::new(),
        redirects: RedirectCounts::default(),
        nemesis_events: 0,
        warnings: Vec::new(),
        anomalies: Vec::new(),
        anomaly_counts: BTreeMap::new(),
        lost_writes: None,
        redirect_analysis: None,
    };
    let mut index: HashMap<String, u32> = HashMap::new();
    let mut keys: Vec<(String, KeyOps)> = Vec::new();
    let mut processes: HashMap<u64, Pending> = HashMap::new();
    let mut scratch = Op {
        process: 0,
        f: String::new(),
        key: None,
        invoke_value: Value::Null,
        complete_value: Value::Null,
        outcome: Outcome::Info,
        invoke_ns: 0,
        complete_ns: 0,
        invoke_event: 0,
        complete_event: None,
        node: None,
        slot: None,
        redirects: Vec::new(),
        error: None,
    };
    let mut buf = String::new();
    let mut line_no = 0usize;
    let mut event = 0usize;
    let mut header_seen = false;
    loop {
        buf.clear();
        let n = reader
            .read_line(&mut buf)
            .map_err(|source| HistoryError::Io {
                path: name.to_string(),
                source,
            })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = buf.trim();
        if text.is_empty() {
            continue;
        }
        let fast = serde_json::from_str::<Line>(text).ok().filter(|l| {
            l.slot.is_none_or(|s| s < 16384)
                && matches!(&*l.kind, "invoke" | "ok" | "fail" | "info")
        });
        let ev = match fast {
            Some(l) => Ev {
                kind: match &*l.kind {
                    "invoke" => EventType::Invoke,
                    "ok" => EventType::Ok,
                    "fail" => EventType::Fail,
                    _ => EventType::Info,
                },
                process: l.process,
                f: l.f,
                key: l.key,
                value: l.value,
                time: l.time,
                redirects: l
                    .redirects
                    .unwrap_or_default()
                    .iter()
                    .map(|r| r.kind)
                    .collect(),
            },
            None => {
                // The full reader, on this line alone, says what is wrong or what it holds.
                let one = History::parse(buf.as_bytes(), name).map_err(|e| relined(e, line_no))?;
                if let Some(w) = one.warnings.first() {
                    report
                        .warnings
                        .push(w.replace(&format!("{name}:1:"), &format!("{name}:{line_no}:")));
                    break;
                }
                if let Some(header) = one.header {
                    if event > 0 || header_seen {
                        return Err(HistoryError::Field {
                            path: name.to_string(),
                            line: line_no,
                            field: "type".into(),
                            message: "a header is allowed only on the first line".into(),
                        }
                        .into());
                    }
                    let _ = header;
                    header_seen = true;
                    continue;
                }
                let Some(e) = one.events.into_iter().next() else {
                    continue;
                };
                let Process::Client(process) = e.process else {
                    report.nemesis_events += 1;
                    event += 1;
                    continue;
                };
                Ev {
                    kind: e.kind,
                    process,
                    f: Cow::Owned(e.f),
                    key: e.key.map(Cow::Owned),
                    value: e.value,
                    time: e.time,
                    redirects: e.redirects.iter().map(|r| r.kind).collect(),
                }
            }
        };
        let this = event;
        event += 1;
        let process = ev.process;
        let pending = processes.entry(process).or_insert(Pending::Idle);
        let invoked = match (std::mem::replace(pending, Pending::Idle), ev.kind) {
            (Pending::Retired { info_line }, _) => {
                return Err(check_err(
                    OpError::IssuedAfterInfo {
                        event: this,
                        line: line_no,
                        process,
                        info_line,
                    }
                    .into(),
                ))
            }
            (Pending::Idle, EventType::Invoke) => {
                *pending = Pending::Outstanding(Box::new(Invoked {
                    event: this,
                    line: line_no,
                    f: ev.f.into_owned(),
                    key: ev.key.map(Cow::into_owned),
                    value: ev.value,
                    time: ev.time,
                    redirects: ev.redirects,
                }));
                continue;
            }
            (Pending::Idle, _) => {
                return Err(check_err(
                    OpError::CompletionWithoutInvoke {
                        event: this,
                        line: line_no,
                        process,
                    }
                    .into(),
                ))
            }
            (Pending::Outstanding(inv), EventType::Invoke) => {
                return Err(check_err(
                    OpError::InvokeWhileOutstanding {
                        event: this,
                        line: line_no,
                        process,
                        outstanding_line: inv.line,
                    }
                    .into(),
                ))
            }
            (Pending::Outstanding(inv), _) => inv,
        };
        let mismatch = |field, invocation: String, completion: String| OpError::Mismatch {
            event: this,
            line: line_no,
            field,
            invoke_line: invoked.line,
            invocation,
            completion,
        };
        if *ev.f != *invoked.f {
            let e = mismatch("f", format!("{:?}", invoked.f), format!("{:?}", ev.f));
            return Err(check_err(e.into()));
        }
        if ev.key.as_deref() != invoked.key.as_deref() {
            let show = |k: Option<&str>| k.map_or("no key".into(), |k| format!("{k:?}"));
            let e = mismatch("key", show(invoked.key.as_deref()), show(ev.key.as_deref()));
            return Err(check_err(e.into()));
        }
        if ev.time < invoked.time {
            let e = OpError::TimeReversed {
                event: this,
                line: line_no,
                invoke_line: invoked.line,
                invoke_ns: invoked.time,
                complete_ns: ev.time,
            };
            return Err(check_err(e.into()));
        }
        if ev.kind == EventType::Info {
            processes.insert(process, Pending::Retired { info_line: line_no });
        }
        let mut invoked = invoked;
        let redirects = if ev.redirects.is_empty() {
            std::mem::take(&mut invoked.redirects)
        } else {
            ev.redirects
        };
        let outcome = match ev.kind {
            EventType::Ok => Outcome::Ok,
            EventType::Fail => Outcome::Fail,
            _ => Outcome::Info,
        };
        let complete = Some((this, line_no, ev.time, ev.value));
        fold(
            &mut scratch,
            model,
            process,
            *invoked,
            outcome,
            complete,
            &redirects,
            &mut report,
            &mut index,
            &mut keys,
        )
        .map_err(check_err)?;
    }
    // Invocations never completed count as `info`, in the order they were invoked.
    let mut open: Vec<(u64, Box<Invoked>)> = processes
        .into_iter()
        .filter_map(|(p, pending)| match pending {
            Pending::Outstanding(inv) => Some((p, inv)),
            _ => None,
        })
        .collect();
    open.sort_by_key(|(_, inv)| inv.event);
    for (process, inv) in open {
        let redirects = inv.redirects.clone();
        fold(
            &mut scratch,
            model,
            process,
            *inv,
            Outcome::Info,
            None,
            &redirects,
            &mut report,
            &mut index,
            &mut keys,
        )
        .map_err(check_err)?;
    }
    Ok(Collected {
        keys,
        report: Some(report),
    })
}

/// A reader error for a single line, moved to that line's number.
fn relined(e: HistoryError, line_no: usize) -> HistoryError {
    match e {
        HistoryError::Syntax { path, message, .. } => HistoryError::Syntax {
            path,
            line: line_no,
            message,
        },
        HistoryError::Field {
            path,
            field,
            message,
            ..
        } => HistoryError::Field {
            path,
            line: line_no,
            field,
            message,
        },
        io => io,
    }
}

/// Counts a finished op and keeps what the search needs of it.
#[allow(clippy::too_many_arguments)]
fn fold(
    scratch: &mut Op,
    model: &Register,
    process: u64,
    inv: Invoked,
    outcome: Outcome,
    complete: Option<(usize, usize, u64, Value)>,
    redirects: &[RedirectKind],
    report: &mut Report,
    index: &mut HashMap<String, u32>,
    keys: &mut Vec<(String, KeyOps)>,
) -> Result<(), CheckError> {
    report.ops.add(outcome);
    match report.ops_by_f.get_mut(inv.f.as_str()) {
        Some(counts) => counts.add(outcome),
        None => {
            let mut counts = OutcomeCounts::default();
            counts.add(outcome);
            report.ops_by_f.insert(inv.f.clone(), counts);
        }
    }
    for &kind in redirects {
        report.redirects.add(kind);
    }
    let Some(key) = inv.key else {
        return Err(CheckError::Field {
            event: inv.event,
            line: inv.line,
            field: "key",
            message: format!(
                "the register model needs a key on every op; this {} has none",
                inv.f
            ),
        });
    };
    scratch.process = process;
    scratch.f = inv.f;
    scratch.invoke_value = inv.value;
    scratch.outcome = outcome;
    scratch.invoke_ns = inv.time;
    scratch.invoke_event = inv.event;
    let (complete_at, complete_ns) = match complete {
        Some((event, line, time, value)) => {
            scratch.complete_value = value;
            scratch.complete_event = Some(event);
            (
                Some((event, line)),
                if outcome == Outcome::Info {
                    u64::MAX
                } else {
                    time
                },
            )
        }
        None => {
            scratch.complete_value = Value::Null;
            scratch.complete_event = None;
            (None, u64::MAX)
        }
    };
    scratch.complete_ns = complete_ns;
    let input = model.input(scratch).map_err(|e| {
        let (event, line) = match (e.on_completion, complete_at) {
            (true, Some(at)) => at,
            _ => (inv.event, inv.line),
        };
        CheckError::Field {
            event,
            line,
            field: e.field,
            message: e.message,
        }
    })?;
    let k = match index.get(key.as_str()) {
        Some(&k) => k as usize,
        None => {
            index.insert(key.clone(), keys.len() as u32);
            keys.push((key, KeyOps::default()));
            keys.len() - 1
        }
    };
    let slot = &mut keys[k].1;
    slot.ops += 1;
    if let Some(input) = input {
        slot.kept.push(Compact {
            input,
            outcome,
            process,
            invoke_ns: inv.time,
            complete_ns,
            invoke_event: u32::try_from(inv.event).unwrap_or(u32::MAX),
            invoke_line: u32::try_from(inv.line).unwrap_or(u32::MAX),
            f: F_NAMES.iter().position(|f| *f == scratch.f).unwrap_or(0) as u8,
        });
    }
    Ok(())
}

/// Checks every key of what `read` collected, in parallel, in key order.
fn finish(mut c: Collected, model: &Register, opts: &CheckOptions) -> Result<Report, CheckError> {
    let mut report = c.report.take().expect("a report");
    c.keys.sort_by(|a, b| a.0.cmp(&b.0));
    let budget = opts.budget();
    let results: Vec<KeyReport> = c
        .keys
        .par_iter_mut()
        .map(|(key, ops)| {
            let mut kept = std::mem::take(&mut ops.kept);
            kept.sort_by_key(|op| op.invoke_event);
            let outcomes: Vec<(Outcome, RegisterOp)> =
                kept.iter().map(|op| (op.outcome, op.input)).collect();
            let keep = prune_keep(&outcomes);
            drop(outcomes);
            let searched: Vec<Compact> = kept
                .into_iter()
                .zip(keep)
                .filter_map(|(op, k)| k.then_some(op))
                .collect();
            let intervals: Vec<Interval<RegisterOp>> = searched
                .iter()
                .map(|op| Interval {
                    input: op.input,
                    call_ns: op.invoke_ns,
                    return_ns: (op.outcome != Outcome::Info).then_some(op.complete_ns),
                })
                .collect();
            let result = search(model, &intervals, &budget);
            key_report(key, ops.ops, &searched, model, &budget, result)
        })
        .collect();
    for key_report in results {
        report.valid = report.valid.combine(key_report.valid);
        report.keys.push(key_report);
    }
    Ok(report)
}

fn key_report(
    key: &str,
    ops: usize,
    searched: &[Compact],
    model: &Register,
    budget: &crate::wgl::Budget,
    result: Search<Option<i64>>,
) -> KeyReport {
    let mut report = KeyReport {
        key: key.to_string(),
        valid: Validity::Valid,
        ops,
        ops_searched: searched.len(),
        steps: result.steps(),
        unknown: None,
        explanation: None,
        context: None,
    };
    match result {
        Search::Valid { .. } => {}
        Search::Unknown { exhausted, .. } => {
            report.valid = Validity::Unknown;
            report.unknown = Some(match exhausted {
                Exhausted::Steps => format!("step budget ({} steps) exhausted", budget.steps_max),
                Exhausted::Time => format!(
                    "time limit ({:?}) reached",
                    budget.time_limit.unwrap_or_default()
                ),
                Exhausted::Memory => {
                    format!("cache limit ({} bytes) reached", budget.cache_bytes_max)
                }
            });
        }
        Search::Invalid {
            op,
            prefix,
            state,
            stranded,
            ..
        } => {
            report.valid = Validity::Invalid;
            report.explanation = Some(Explanation {
                key: key.to_string(),
                op: op_ref(&searched[op]),
                prefix: prefix.iter().map(|&i| op_ref(&searched[i])).collect(),
                state: model.describe_state(&state),
                stranded: stranded.map(|i| op_ref(&searched[i])),
            });
        }
    }
    report
}

/// The report's view of a compact op (values rebuilt from the model's input).
fn op_ref(op: &Compact) -> OpRef {
    let opt = |v: Option<i64>| v.map_or(Value::Null, Value::from);
    let ok = op.outcome == Outcome::Ok;
    let (value, result) = match op.input {
        RegisterOp::Read(v) => (Value::Null, if ok { opt(v) } else { Value::Null }),
        RegisterOp::Write(v) => (
            Value::from(v),
            if ok { Value::from(v) } else { Value::Null },
        ),
        RegisterOp::Cas { expected, new } => {
            let pair = Value::from(vec![opt(expected), Value::from(new)]);
            (pair.clone(), if ok { pair } else { Value::Null })
        }
        RegisterOp::CasFailed(expected) => (Value::from(vec![opt(expected)]), Value::Null),
    };
    OpRef {
        event: op.invoke_event as usize,
        line: op.invoke_line as usize,
        process: op.process,
        f: F_NAMES[op.f as usize].to_string(),
        value,
        result,
        outcome: op.outcome,
        invoke_ns: op.invoke_ns,
        complete_ns: (op.outcome != Outcome::Info).then_some(op.complete_ns),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{history_text, GenConfig};

    fn both(text: &str) -> (Report, Report) {
        let dir = std::env::temp_dir().join(format!("slotcheck-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{:x}.jsonl", crate::hash::mix64(text.len() as u64)));
        std::fs::write(&path, text).unwrap();
        let opts = CheckOptions::default();
        let streamed = check_file(&path, ModelKind::Register, &opts).unwrap();
        let history = History::parse(text.as_bytes(), "h").unwrap();
        let held = crate::check_register(&history, &opts).unwrap();
        let _ = std::fs::remove_file(&path);
        (streamed, held)
    }

    #[test]
    fn streaming_agrees_with_the_history_path() {
        for seed in 1..=5 {
            let (text, _) = history_text(&GenConfig::register(4, 6, 400, seed));
            let (s, h) = both(&text);
            assert_eq!(s, h, "seed {seed}");
            assert_eq!(s.valid, Validity::Valid);
        }
        let text = "{\"type\":\"invoke\",\"process\":0,\"f\":\"write\",\"key\":\"k\",\"value\":1,\"time\":10}\n\
                    {\"type\":\"ok\",\"process\":0,\"f\":\"write\",\"key\":\"k\",\"value\":1,\"time\":20}\n\
                    {\"type\":\"info\",\"process\":\"nemesis\",\"f\":\"kill\",\"value\":{},\"time\":25}\n\
                    {\"type\":\"invoke\",\"process\":1,\"f\":\"read\",\"key\":\"k\",\"value\":null,\"time\":30}\n\
                    {\"type\":\"ok\",\"process\":1,\"f\":\"read\",\"key\":\"k\",\"value\":null,\"time\":40}\n";
        let (s, h) = both(text);
        assert_eq!(s, h);
        assert_eq!(s.valid, Validity::Invalid);
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let dir = std::env::temp_dir();
        let path = dir.join(format!("slotcheck-stream-err-{}.jsonl", std::process::id()));
        let text = "{\"type\":\"invoke\",\"process\":0,\"f\":\"write\",\"key\":\"k\",\"value\":1,\"time\":10}\n\
                    {\"type\":\"ok\",\"process\":0,\"f\":\"write\",\"key\":\"k\",\"value\":1,\"time\":\"x\"}\n";
        std::fs::write(&path, text).unwrap();
        let err = check_file(&path, ModelKind::Register, &CheckOptions::default()).unwrap_err();
        let _ = std::fs::remove_file(&path);
        let shown = err.to_string();
        assert!(shown.contains(":2: field `time`"), "{shown}");
        assert!(shown.contains("slotcheck-stream-err"), "{shown}");
    }
}
