//! What `report.html` needs of a register-family history, from the one path's read: the reduced
//! [`History`] (header, nemesis events, every op that is not plain, and every op of the keys the
//! report names) and a compact [`PageOp`] per op (process, `f`, outcome, times, positions and
//! lines: what the lanes, the latency and throughput plots and the sample need), so that the page
//! needs no whole history of JSON values. The ops the page draws one by one that the reduced
//! history left out are fetched by [`add_lines`], a second read that parses only their lines.

use super::analyzed::{open, read, wanted};
use super::keep::{parse_line, Keep};
use super::pairing::{Keys, Paired, Sink};
use super::{blocks, FileError};
use crate::history::{Event, History};
use crate::model::ModelKind;
use crate::op::Outcome;
use crate::options::CheckError;
use crate::report::Report;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One client op as the page draws it, a few tens of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageOp {
    /// The client's process.
    pub process: u64,
    /// Its `f`, an index into [`PageOps::fs`].
    pub f: u16,
    /// How it ended.
    pub outcome: Outcome,
    /// The invocation's position among the file's events.
    pub invoke_event: usize,
    /// The invocation's 1-based line.
    pub invoke_line: u32,
    /// When it was invoked, ns.
    pub invoke_ns: u64,
    /// The completion's position, line and time (an `info` completion included).
    pub complete: Option<(usize, u32, u64)>,
}

/// Every client op of a history, compact, in invocation order.
#[derive(Debug, Clone, Default)]
pub struct PageOps {
    /// The ops, by the position of their invocation.
    pub ops: Vec<PageOp>,
    /// The `f` names, by index.
    pub fs: Vec<String>,
    /// The time of the history's last event, ns.
    pub end_ns: u64,
}

/// The sink that records each op's [`PageOp`].
#[derive(Default)]
struct PageSink {
    page: PageOps,
    f_index: HashMap<String, u16>,
}

impl Sink for PageSink {
    fn op(&mut self, op: Paired<'_>, _: &mut Keys) -> Result<(), CheckError> {
        let fs = &mut self.page.fs;
        let f = *self.f_index.entry(op.f.to_string()).or_insert_with(|| {
            fs.push(op.f.to_string());
            u16::try_from(fs.len() - 1).unwrap_or(u16::MAX)
        });
        let line = |l: usize| u32::try_from(l).unwrap_or(u32::MAX);
        let complete = op.complete.as_ref().map(|c| (c.0, line(c.1), c.2));
        let end = complete.map_or(op.invoke_ns, |c| c.2).max(op.invoke_ns);
        self.page.end_ns = self.page.end_ns.max(end);
        self.page.ops.push(PageOp {
            process: op.process,
            f,
            outcome: op.outcome,
            invoke_event: op.invoke_event,
            invoke_line: line(op.invoke_line),
            invoke_ns: op.invoke_ns,
            complete,
        });
        Ok(())
    }
}

/// Reads the register-family history file at `path` once for the page of `report` (its check):
/// the reduced history, keeping whole every op of the keys the report names, and every op's
/// [`PageOp`].
pub fn page_file(
    path: &Path,
    model: ModelKind,
    report: &Report,
) -> Result<(History, PageOps), FileError> {
    let mut sink = PageSink::default();
    let keep = Keep::new(wanted(report));
    let (_, _, keep) = read(open(path)?, model.checker(), keep, &mut sink)?;
    let (history, _) = keep.finish();
    let mut page = sink.page;
    page.ops.sort_unstable_by_key(|o| o.invoke_event);
    let last = history.events.iter().map(|e| e.time).max().unwrap_or(0);
    page.end_ns = page.end_ns.max(last);
    Ok((history, page))
}

/// Adds to the reduced `history` the events of the file at `path` on `lines` (1-based line to
/// position among the file's events), parsing only those lines; lines it already holds stay.
pub fn add_lines(
    history: &mut History,
    path: &Path,
    lines: &BTreeMap<usize, usize>,
) -> Result<(), FileError> {
    let source = open(path)?;
    let name = source.name().to_string();
    let mut found: Vec<(usize, usize, Event)> = Vec::with_capacity(lines.len());
    blocks::for_each_line(source.into_reader(), &name, |line| {
        if let Some(&event) = lines.get(&line.no) {
            if history.position(event).is_none() {
                found.push((event, line.no, parse_line(line.text, &name, line.no)?));
            }
        }
        Ok(())
    })?;
    let old = std::mem::take(&mut history.events);
    let mut all: Vec<(usize, usize, Event)> = old
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            (
                history.index(i),
                crate::op::line_of(history, history.index(i)),
                e,
            )
        })
        .collect();
    all.extend(found);
    all.sort_unstable_by_key(|&(event, _, _)| event);
    history.indices.clear();
    history.lines.clear();
    for (event, line, e) in all {
        history.indices.push(event);
        history.lines.push(line);
        history.events.push(e);
    }
    Ok(())
}
