//! A logical client process: records the invocation, routes the command, records the completion,
//! and retires itself (new process number, fresh connections) after an `info`.

use crate::executor::{ClientFactory, Executor};
use crate::recorder::Recorder;
use crate::router::{Execution, OpError, Router};
use crate::stats::WorkloadStats;
use checker::{Batch, Event, EventType, Process};
use redis::{Cmd, Value};
use serde_json::Value as Json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How a workload reads a successful reply: the `ok` value, a definite failure, or unknown.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// The operation happened; this is its result for the history.
    Ok(Json),
    /// The operation certainly did not happen (e.g. a CAS whose expected value did not match).
    Fail(String),
    /// The reply makes no sense for the operation: its effect is unknown.
    Info(String),
}

/// One logical process at a time, over one executor; the process number changes on `info`.
pub struct Client {
    process: u64,
    /// `None` until first use, and again after retiring when a factory can open a fresh one.
    executor: Option<Executor>,
    /// Opens the executor; without one the client keeps its router and resets its connections.
    factory: Option<Arc<ClientFactory>>,
    recorder: Recorder,
    next_process: Arc<AtomicU64>,
    stats: WorkloadStats,
}

/// An operation for [`Client::perform`]: what to record and what to send.
pub struct Operation<'a> {
    /// The history's `f`.
    pub f: &'a str,
    /// The single key the command touches.
    pub key: &'a str,
    /// The invocation's `value`.
    pub value: Json,
    /// The command to send.
    pub cmd: Cmd,
}

impl Client {
    /// A client that starts as `process`; retired processes are replaced from `next_process`.
    pub fn new(
        process: u64,
        router: Router,
        recorder: Recorder,
        next_process: Arc<AtomicU64>,
    ) -> Self {
        Client {
            process,
            executor: Some(Executor::Router(router)),
            factory: None,
            recorder,
            next_process,
            stats: WorkloadStats::default(),
        }
    }

    /// A client that opens its executor from `factory` on first use, and a fresh one (new
    /// connections, a new library instance) after each `info`.
    pub fn from_factory(
        process: u64,
        factory: Arc<ClientFactory>,
        recorder: Recorder,
        next_process: Arc<AtomicU64>,
    ) -> Self {
        Client {
            process,
            executor: None,
            factory: Some(factory),
            recorder,
            next_process,
            stats: WorkloadStats::default(),
        }
    }

    /// The current process number.
    pub fn process(&self) -> u64 {
        self.process
    }

    /// The counters of every operation this client completed.
    pub fn stats(&self) -> &WorkloadStats {
        &self.stats
    }

    /// Records the invocation, executes, interprets the reply, records the completion, and
    /// returns it with the routing details.
    pub async fn perform(
        &mut self,
        op: Operation<'_>,
        interpret: impl FnOnce(Value) -> Completion,
    ) -> (EventType, Json, Execution) {
        let process = Process::Client(self.process);
        self.recorder.record(invocation(process, &op));
        let execution = self.execute(op.key.as_bytes(), &op.cmd).await;
        let head = (op.f, Some(op.key), op.value);
        let (kind, value) = self.ended(process, head, None, &execution, interpret);
        (kind, value, execution)
    }

    /// Records how the op `head` of `process` ended (marked `batch`), counts it, and retires
    /// the process after an `info`: the common end of [`Client::perform`] and
    /// [`Client::perform_txn`].
    fn ended(
        &mut self,
        process: Process,
        head: (&str, Option<&str>, Json),
        batch: Option<Batch>,
        execution: &Execution,
        interpret: impl FnOnce(Value) -> Completion,
    ) -> (EventType, Json) {
        let (kind, value, mut done) = completion_of(process, head, execution, interpret);
        done.batch = batch;
        self.recorder.record(done);
        self.stats.count(kind, &execution.redirects);
        if kind == EventType::Info {
            self.retire();
        }
        (kind, value)
    }

    /// Executes on the executor, opening it first if need be; a client that cannot be opened
    /// sent nothing, so the op fails.
    async fn execute(&mut self, key: &[u8], cmd: &Cmd) -> Execution {
        match self.opened().await {
            Ok(executor) => executor.execute(key, cmd).await,
            Err(e) => Execution::failed(key, &format!("opening the client: {e}")),
        }
    }

    /// The executor, opened first if there is none.
    async fn opened(&mut self) -> Result<&mut Executor, String> {
        if self.executor.is_none() {
            let opened = match &self.factory {
                Some(factory) => factory.open().await,
                None => Err("no client to open".to_string()),
            };
            self.executor = Some(opened?);
        }
        Ok(self.executor.as_mut().expect("opened above"))
    }

    /// After an `info` the process may still have an operation in flight: continue as a new
    /// process with fresh connections (a fresh library instance, when the factory can open one).
    fn retire(&mut self) {
        self.process = self.next_process.fetch_add(1, Ordering::Relaxed);
        self.reset_executor();
    }

    /// Fresh connections for what comes next: slotcheck's router keeps its state (a lost
    /// connection marks the slot map stale) and opens new connections; a library is dropped
    /// whole and opened afresh.
    fn reset_executor(&mut self) {
        match self.executor.as_mut() {
            Some(Executor::Router(router)) => router.reset_connections(),
            Some(Executor::Codis(router)) => router.reset_connections(),
            _ => self.executor = None,
        }
    }
}

/// An operation's invocation event.
fn invocation(process: Process, op: &Operation<'_>) -> Event {
    let mut invoke = Event::new(EventType::Invoke, process, op.f, op.value.clone(), 0);
    invoke.key = Some(op.key.to_string());
    invoke
}

/// An operation's completion from how it was executed and how `interpret` reads the reply: the
/// outcome, the value, and the event to record.
fn completion(
    process: Process,
    op: Operation<'_>,
    execution: &Execution,
    interpret: impl FnOnce(Value) -> Completion,
) -> (EventType, Json, Event) {
    let head = (op.f, Some(op.key), op.value);
    completion_of(process, head, execution, interpret)
}

/// As [`completion`], for an op given by its `f`, key (none for a `txn` op) and invocation value.
fn completion_of(
    process: Process,
    (f, key, invoked): (&str, Option<&str>, Json),
    execution: &Execution,
    interpret: impl FnOnce(Value) -> Completion,
) -> (EventType, Json, Event) {
    let (kind, value, error) = match execution.result.clone() {
        Ok(reply) => match interpret(reply) {
            Completion::Ok(v) => (EventType::Ok, v, None),
            Completion::Fail(e) => (EventType::Fail, invoked, Some(e)),
            Completion::Info(e) => (EventType::Info, invoked, Some(e)),
        },
        Err(OpError::Fail(e)) => (EventType::Fail, invoked, Some(e)),
        Err(OpError::Info(e)) => (EventType::Info, invoked, Some(e)),
    };
    let mut done = Event::new(kind, process, f, value.clone(), 0);
    done.key = key.map(str::to_string);
    done.node = (!execution.node.is_empty()).then(|| execution.node.clone());
    done.slot = Some(execution.slot);
    done.redirects = execution.redirects.clone();
    done.error = error;
    if kind != EventType::Ok {
        done.gave_up = execution.gave_up.clone();
    }
    (kind, value, done)
}

// Pipelines (`--pipeline K`): several logical processes over one client.
impl Client {
    /// Runs `ops[i]` as logical process `processes[i]`, all in one pipeline: records every
    /// invocation before anything is written, executes them at once, records each completion as
    /// soon as the executor knows it (each marked `batch: pipeline`), and returns them in order. A process whose op ended
    /// `info` continues under a new number (written back into `processes`), and the client
    /// opens fresh connections, as after a single op's `info`.
    pub async fn perform_pipeline(
        &mut self,
        processes: &mut [u64],
        ops: Vec<Operation<'_>>,
        interpret: impl Fn(usize, Value) -> Completion + Sync,
    ) -> Vec<(EventType, Json, Execution)> {
        debug_assert_eq!(processes.len(), ops.len(), "one op per logical process");
        for (&p, op) in processes.iter().zip(&ops) {
            let mut invoke = invocation(Process::Client(p), op);
            invoke.batch = Some(Batch::Pipeline);
            self.recorder.record(invoke);
        }
        let opening = self.opened().await.map(|_| ());
        let items: Vec<(Vec<u8>, Cmd)> = ops
            .iter()
            .map(|op| (op.key.as_bytes().to_vec(), op.cmd.clone()))
            .collect();
        let mut ops: Vec<Option<Operation<'_>>> = ops.into_iter().map(Some).collect();
        let mut done: Vec<Option<(EventType, Json, Execution)>> = vec![None; ops.len()];
        let mut retired = false;
        // Each completion is recorded as soon as the executor knows how its command ended.
        let mut complete = |i: usize, execution: Execution| {
            let Some(op) = ops[i].take() else { return };
            let process = Process::Client(processes[i]);
            let (kind, value, mut event) = completion(process, op, &execution, |v| interpret(i, v));
            event.batch = Some(Batch::Pipeline);
            self.recorder.record(event);
            self.stats.count(kind, &execution.redirects);
            if kind == EventType::Info {
                processes[i] = self.next_process.fetch_add(1, Ordering::Relaxed);
                retired = true;
            }
            done[i] = Some((kind, value, execution));
        };
        match self.executor.as_mut() {
            Some(executor) => executor.execute_pipeline(&items, &mut complete).await,
            None => {
                let why = opening.err().unwrap_or_default();
                let text = format!("opening the client: {why}");
                for (i, (key, _)) in items.iter().enumerate() {
                    complete(i, Execution::failed(key, &text));
                }
            }
        }
        // Every op ends in the history: one the executor did not report may have happened.
        for (i, (key, _)) in items.iter().enumerate() {
            complete(i, Execution::unknown(key, "the client reported no end"));
        }
        let done = done.into_iter().flatten().collect();
        if retired {
            self.reset_executor();
        }
        done
    }
}

/// What a multi-key op sends: one command (`MSET`, `MGET`, `DEL`, a Lua script) or a
/// `MULTI`/`EXEC` transaction of several.
pub enum TxnRequest {
    /// One command with several keys of one slot, sent with [`Executor::execute`].
    Command(Cmd),
    /// Commands sent as one transaction, with [`Executor::execute_txn`].
    Multi(Vec<Cmd>),
}

/// A multi-key op for [`Client::perform_txn`]: recorded as one `txn` op without a key, its
/// value the micro-ops (see the history format).
pub struct TxnOperation<'a> {
    /// A key of the op's slot, to route by.
    pub route_key: &'a str,
    /// The invocation's micro-ops.
    pub value: Json,
    /// What to send.
    pub request: TxnRequest,
    /// How it was batched (`multi`, `lua`), or `None` for a single multi-key command.
    pub batch: Option<checker::Batch>,
}

impl Client {
    /// As [`Client::perform`], for a multi-key op recorded as one `txn` op.
    pub async fn perform_txn(
        &mut self,
        op: TxnOperation<'_>,
        interpret: impl FnOnce(Value) -> Completion,
    ) -> (EventType, Json, Execution) {
        let process = Process::Client(self.process);
        let mut invoke = Event::new(EventType::Invoke, process, "txn", op.value.clone(), 0);
        invoke.batch = op.batch;
        self.recorder.record(invoke);
        let key = op.route_key.as_bytes();
        let execution = match &op.request {
            TxnRequest::Command(cmd) => self.execute(key, cmd).await,
            TxnRequest::Multi(cmds) => match self.opened().await {
                Ok(executor) => executor.execute_txn(key, cmds).await,
                Err(e) => Execution::failed(key, &format!("opening the client: {e}")),
            },
        };
        let head = ("txn", None, op.value);
        let (kind, value) = self.ended(process, head, op.batch, &execution, interpret);
        (kind, value, execution)
    }
}
