//! Pairing streamed lines into ops by the format's rules, as
//! [`Ops::from_history`](crate::Ops::from_history) pairs a [`History`](crate::History)'s
//! events, with the same errors, and handing each finished op to a model's [`Sink`].
//!
//! Lines the scanner took arrive without JSON values; any other line is read as [`slow`] says.

mod processes;
mod slow;

use processes::{Pending, Processes};

use super::blocks::Line;
use super::keep::{Completion, Finished, Keep};
use super::scan::Val;
use super::scan::{f_code, key_hash, same, KNOWN_F, OTHER_F};
use super::scan::{Fast, Shape};
use super::FileError;
use crate::hash::{BuildPassThrough, FxHasher};
use crate::history::{EventType, RedirectKind};
use crate::op::{OpError, Outcome};
use crate::options::CheckError;
use crate::report::{OutcomeCounts, Report};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// An op's argument or result, as the scanner or a JSON reader read it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    /// From the scanner.
    Fast(Val),
    /// From a JSON reader.
    Json(Value),
}

impl Arg {
    /// The value as JSON.
    pub(crate) fn into_json(self) -> Value {
        match self {
            Arg::Fast(v) => v.to_json(),
            Arg::Json(v) => v,
        }
    }
}

/// A finished op (completed, or never completed by the end), as handed to a [`Sink`].
pub(crate) struct Paired<'a> {
    pub process: u64,
    pub f: &'a str,
    /// [`f_code`] of `f`.
    pub f_code: u8,
    /// Index into the key names the pairing keeps.
    pub key: Option<u32>,
    pub invoke_event: usize,
    pub invoke_line: usize,
    pub invoke_ns: u64,
    pub invoke_value: Arg,
    pub outcome: Outcome,
    /// The completion's event, line, time and value.
    pub complete: Option<(usize, usize, u64, Arg)>,
}

/// What a model keeps of each finished op.
pub(crate) trait Sink {
    /// Takes one op; `keys` names the pairing's key indexes, and interns keys the op names
    /// inside its value (a `txn`'s micro-ops).
    fn op(&mut self, op: Paired<'_>, keys: &mut Keys) -> Result<(), CheckError>;
}

/// Every key met, by first appearance, interned by [`key_hash`].
#[derive(Default)]
pub(crate) struct Keys {
    /// The names, by index.
    pub names: Vec<String>,
    /// The last key met with each hash, and per key the one met before it with the same hash.
    heads: HashMap<u64, u32, BuildPassThrough>,
    next: Vec<Option<u32>>,
}

impl Keys {
    /// The index of `key`, whose [`key_hash`] is `hash`.
    fn index_hashed(&mut self, key: &[u8], hash: u64) -> u32 {
        let head = self.heads.get(&hash).copied();
        let mut k = head;
        while let Some(i) = k {
            if same(self.names[i as usize].as_bytes(), key) {
                return i;
            }
            k = self.next[i as usize];
        }
        let i = self.names.len() as u32;
        self.names.push(text(key).into_owned());
        self.next.push(head);
        self.heads.insert(hash, i);
        i
    }

    /// The index of `key`, interned now if it is new.
    pub(crate) fn index(&mut self, key: &str) -> u32 {
        self.index_hashed(key.as_bytes(), key_hash(key.as_bytes()))
    }
}

/// An invocation awaiting its completion.
pub(crate) struct Invoked {
    /// Its position among the file's events.
    pub event: usize,
    /// Its 1-based line.
    pub line: usize,
    /// Index into `Pairing::fs`.
    f: u32,
    /// [`f_code`] of `f`.
    f_code: u8,
    /// Its key, by index into [`Keys::names`].
    pub key: Option<u32>,
    /// Its argument.
    pub value: Arg,
    /// Its time, ns.
    pub time: u64,
    redirects: Vec<RedirectKind>,
    /// Which fields beyond the six every event has its line holds.
    pub shape: Shape,
    /// Its `slot` field, as the scanner read it.
    pub slot: Option<u16>,
    /// Its line, when a [`Keep`] may need it whole and cannot rebuild it (not [`Shape::Bare`]).
    pub raw: Option<Box<[u8]>>,
}

/// One client event, however it was read.
struct Ev<'a> {
    kind: EventType,
    process: u64,
    f: Cow<'a, [u8]>,
    /// [`f_code`] of `f`.
    f_code: u8,
    key: Option<Cow<'a, [u8]>>,
    /// [`key_hash`] of the key.
    key_hash: u64,
    value: Arg,
    time: u64,
    redirects: Vec<RedirectKind>,
    shape: Shape,
    slot: Option<u16>,
}

impl<'a> Ev<'a> {
    /// An event read by a JSON reader.
    fn new(
        kind: EventType,
        process: u64,
        f: Cow<'a, str>,
        key: Option<Cow<'a, str>>,
        value: Arg,
        time: u64,
        redirects: Vec<RedirectKind>,
    ) -> Self {
        let bytes = |s: Cow<'a, str>| match s {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        };
        let key = key.map(bytes);
        let f = bytes(f);
        Ev {
            kind,
            process,
            f_code: f_code(&f),
            f,
            key_hash: key.as_deref().map_or(0, key_hash),
            key,
            value,
            time,
            redirects,
            shape: Shape::Other,
            slot: None,
        }
    }
}

/// Bytes that came from a `str` (or were scanned as ASCII), as text.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// The event the scanner read from `text`.
fn fast_ev(fast: Fast, text: &[u8]) -> Ev<'_> {
    let bytes = |r: &std::ops::Range<u32>| &text[r.start as usize..r.end as usize];
    Ev {
        kind: fast.kind,
        process: fast.process,
        f: Cow::Borrowed(bytes(&fast.f)),
        f_code: fast.f_code,
        key: fast.key.as_ref().map(|k| Cow::Borrowed(bytes(k))),
        key_hash: fast.key_hash,
        value: Arg::Fast(fast.value),
        time: fast.time,
        redirects: Vec::new(),
        shape: fast.shape,
        slot: fast.slot,
    }
}

/// The error for event `this` of `process`, on line `line_no`, that came out of turn: after the
/// process's `info`, a completion with no invocation, or an invocation while one is outstanding.
fn out_of_turn(pending: Pending, this: usize, line_no: usize, process: u64) -> OpError {
    match pending {
        Pending::Retired { info_line } => OpError::IssuedAfterInfo {
            event: this,
            line: line_no,
            process,
            info_line,
        },
        Pending::Idle => OpError::CompletionWithoutInvoke {
            event: this,
            line: line_no,
            process,
        },
        Pending::Outstanding(inv) => OpError::InvokeWhileOutstanding {
            event: this,
            line: line_no,
            process,
            outstanding_line: inv.line,
        },
    }
}

/// The pairing's state between lines.
pub(crate) struct Pairing {
    name: String,
    /// Counts of ops, by outcome, `f` and redirect kind, and the nemesis events and warnings.
    pub report: Report,
    processes: Processes,
    /// Every `f` met, so an invocation holds an index.
    fs: Vec<String>,
    /// The index in `fs` of each [`KNOWN_F`] met.
    known_fs: [Option<u32>; KNOWN_F.len()],
    /// Every key met, by first appearance.
    pub keys: Keys,
    event: usize,
    header_seen: bool,
    /// What is kept for the redirect-aware analysis, if anything is.
    pub(super) keep: Option<Keep>,
    /// Set after a cut-off last line: nothing more is read.
    done: bool,
}

impl Pairing {
    /// A pairing for the file `name`, whose report names `checker`.
    pub(crate) fn new(name: &str, checker: &'static str) -> Self {
        Pairing {
            name: name.to_string(),
            report: Report::empty(checker, 0, Vec::new()),
            processes: Processes::default(),
            fs: Vec::new(),
            known_fs: [None; KNOWN_F.len()],
            keys: Keys::default(),
            event: 0,
            header_seen: false,
            keep: None,
            done: false,
        }
    }

    fn check_err(&self, source: CheckError) -> FileError {
        FileError::Check {
            path: self.name.clone(),
            source,
        }
    }

    /// The index in `fs` of `f`, whose [`f_code`] is `code`.
    fn f_index(&mut self, f: &[u8], code: u8) -> u32 {
        if code != OTHER_F {
            if let Some(i) = self.known_fs[code as usize] {
                return i;
            }
        }
        let i = match self.fs.iter().position(|g| g.as_bytes() == f) {
            Some(i) => i as u32,
            None => {
                self.fs.push(text(f).into_owned());
                (self.fs.len() - 1) as u32
            }
        };
        if code != OTHER_F {
            self.known_fs[code as usize] = Some(i);
        }
        i
    }

    /// Takes one line.
    pub(crate) fn line<S: Sink>(
        &mut self,
        mut line: Line<'_>,
        sink: &mut S,
    ) -> Result<(), FileError> {
        if self.done {
            return Ok(());
        }
        let ev = match line.fast.take() {
            Some(fast) => fast_ev(fast, line.text),
            None => match self.slow(&line)? {
                Some(ev) => ev,
                None => return Ok(()),
            },
        };
        let this = self.event;
        self.event += 1;
        let line_no = line.no;
        let process = ev.process;
        let pending = std::mem::take(self.processes.get(process));
        let invoked = match (pending, ev.kind) {
            (Pending::Idle, EventType::Invoke) => {
                self.invoke(ev, this, &line);
                return Ok(());
            }
            (Pending::Outstanding(inv), kind) if kind != EventType::Invoke => inv,
            (pending, _) => {
                let e = out_of_turn(pending, this, line_no, process);
                return Err(self.check_err(e.into()));
            }
        };
        self.matches(&invoked, &ev, this, line_no)
            .map_err(|e| self.check_err(e.into()))?;
        if ev.kind == EventType::Info {
            *self.processes.get(process) = Pending::Retired { info_line: line_no };
        }
        let outcome = match ev.kind {
            EventType::Ok => Outcome::Ok,
            EventType::Fail => Outcome::Fail,
            _ => Outcome::Info,
        };
        let done = Completion {
            event: this,
            line: line_no,
            text: line.text,
            shape: ev.shape,
            slot: ev.slot,
        };
        self.kept(process, &invoked, outcome, Some(done))?;
        let complete = Some((this, line_no, ev.time, ev.value));
        self.finish_op(process, invoked, outcome, complete, &ev.redirects, sink)
    }

    /// Hands the finished op invoked by `inv` to the [`Keep`], if there is one.
    fn kept(
        &mut self,
        process: u64,
        inv: &Invoked,
        outcome: Outcome,
        complete: Option<Completion<'_>>,
    ) -> Result<(), FileError> {
        let Some(keep) = self.keep.as_mut() else {
            return Ok(());
        };
        let op = Finished {
            process,
            f: &self.fs[inv.f as usize],
            key: inv.key.map_or("", |k| &self.keys.names[k as usize]),
            outcome,
            complete,
        };
        keep.op(inv, op, &self.name)
    }

    /// Holds the invocation `ev` (event `this`, on `line`) until its completion.
    fn invoke(&mut self, ev: Ev<'_>, this: usize, line: &Line<'_>) {
        let raw = (self.keep.is_some() && ev.shape != Shape::Bare).then(|| line.text.into());
        let invoked = Invoked {
            event: this,
            line: line.no,
            f: self.f_index(&ev.f, ev.f_code),
            f_code: ev.f_code,
            key: ev
                .key
                .as_ref()
                .map(|k| self.keys.index_hashed(k, ev.key_hash)),
            value: ev.value,
            time: ev.time,
            redirects: ev.redirects,
            shape: ev.shape,
            slot: ev.slot,
            raw,
        };
        *self.processes.get(ev.process) = Pending::Outstanding(invoked);
    }

    /// Whether the completion `ev` (event `this`, on line `line_no`) has its invocation's `f`
    /// and key and does not precede it.
    fn matches(
        &mut self,
        invoked: &Invoked,
        ev: &Ev<'_>,
        this: usize,
        line_no: usize,
    ) -> Result<(), OpError> {
        let mismatch = |field, invocation: String, completion: String| OpError::Mismatch {
            event: this,
            line: line_no,
            field,
            invoke_line: invoked.line,
            invocation,
            completion,
        };
        if self.f_index(&ev.f, ev.f_code) != invoked.f {
            let invoked_f = &self.fs[invoked.f as usize];
            return Err(mismatch(
                "f",
                format!("{invoked_f:?}"),
                format!("{:?}", text(&ev.f)),
            ));
        }
        let invoked_key = invoked.key.map(|k| self.keys.names[k as usize].as_bytes());
        let same_key = match (ev.key.as_deref(), invoked_key) {
            (Some(a), Some(b)) => same(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        if !same_key {
            let show = |k: Option<&[u8]>| k.map_or("no key".into(), |k| format!("{:?}", text(k)));
            return Err(mismatch("key", show(invoked_key), show(ev.key.as_deref())));
        }
        if ev.time < invoked.time {
            return Err(OpError::TimeReversed {
                event: this,
                line: line_no,
                invoke_line: invoked.line,
                invoke_ns: invoked.time,
                complete_ns: ev.time,
            });
        }
        Ok(())
    }

    /// Counts a finished op and hands it to `sink`.
    fn finish_op<S: Sink>(
        &mut self,
        process: u64,
        inv: Invoked,
        outcome: Outcome,
        complete: Option<(usize, usize, u64, Arg)>,
        completion_redirects: &[RedirectKind],
        sink: &mut S,
    ) -> Result<(), FileError> {
        let f = self.fs[inv.f as usize].as_str();
        self.report.ops.add(outcome);
        match self.report.ops_by_f.get_mut(f) {
            Some(counts) => counts.add(outcome),
            None => {
                let mut counts = OutcomeCounts::default();
                counts.add(outcome);
                self.report.ops_by_f.insert(f.to_string(), counts);
            }
        }
        let redirects = if completion_redirects.is_empty() {
            &inv.redirects
        } else {
            completion_redirects
        };
        for &kind in redirects {
            self.report.redirects.add(kind);
        }
        let op = Paired {
            process,
            f,
            f_code: inv.f_code,
            key: inv.key,
            invoke_event: inv.event,
            invoke_line: inv.line,
            invoke_ns: inv.time,
            invoke_value: inv.value,
            outcome,
            complete,
        };
        sink.op(op, &mut self.keys)
            .map_err(|source| FileError::Check {
                path: self.name.clone(),
                source,
            })
    }

    /// Ends the file: invocations never completed count as `info`, in the order they were
    /// invoked. Returns the counts and the key names.
    pub(crate) fn finish<S: Sink>(self, sink: &mut S) -> Result<(Report, Vec<String>), FileError> {
        self.finish_keeping(sink)
            .map(|(report, names, _)| (report, names))
    }

    /// [`Pairing::finish`], also returning what was kept for the redirect-aware analysis.
    pub(crate) fn finish_keeping<S: Sink>(
        mut self,
        sink: &mut S,
    ) -> Result<(Report, Vec<String>, Option<Keep>), FileError> {
        for (process, inv) in std::mem::take(&mut self.processes).outstanding() {
            self.kept(process, &inv, Outcome::Info, None)?;
            self.finish_op(process, inv, Outcome::Info, None, &[], sink)?;
        }
        Ok((self.report, self.keys.names, self.keep))
    }
}
