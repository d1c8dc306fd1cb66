//! A client library under test, run as a child process that speaks the adapter protocol: one JSON
//! line per operation on its stdin, one reply line per operation on its stdout, in order (see
//! README.md, "Adding a client"). The child says whether each operation happened (`ok`), certainly
//! did not (`fail`) or may have (`info`); slotcheck adds what only it can know: a child that does
//! not answer in time, dies, or prints garbage leaves the operation `info`, and the child is gone.
//!
//! ```no_run
//! use workloads::{External, ExternalSpec, RouterConfig};
//! # async fn demo() -> Result<(), String> {
//! let spec = ExternalSpec {
//!     name: "redis-py".into(),
//!     argv: vec!["python3".into(), "clients/redis-py/adapter.py".into()],
//! };
//! let seeds = vec!["127.0.0.1:30001".to_string()];
//! let mut client = External::open(&spec, &seeds, &RouterConfig::default()).await?;
//! let set = client.execute(b"r1", redis::cmd("SET").arg("r1").arg(5)).await;
//! assert_eq!(set.result, Ok(redis::Value::Okay));
//! # Ok(()) }
//! ```

mod wire;

use crate::executor::{ClientInfo, RedirectVisibility};
use crate::router::{Execution, OpError, RouterConfig};
use crate::slot::key_slot;
use checker::GaveUp;
use redis::{Cmd, Value};
use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

/// How long a child may take to answer `open`: start its runtime, load the library, learn the
/// cluster's slot map.
pub const OPEN_DEADLINE: Duration = Duration::from_secs(20);
/// The default bound on one operation's reply ([`External::deadline`]).
pub const REPLY_DEADLINE: Duration = Duration::from_secs(30);
/// The longest line read from a child; a longer one is garbage.
const LINE_BYTES_MAX: usize = 1 << 20;
/// The child's last stderr lines kept for error messages, and the characters kept of each.
const STDERR_LINES_MAX: usize = 12;
const STDERR_LINE_CHARS_MAX: usize = 300;
/// How long a gone child and its stderr get to finish before the error message is written.
const REAP_DEADLINE: Duration = Duration::from_secs(2);

/// Which adapter to run: a name for messages and the command line that starts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalSpec {
    /// The client's name in messages (`redis-py`); the history names what the child's hello says.
    pub name: String,
    /// The program and its arguments, e.g. `["python3", "clients/redis-py/adapter.py"]`.
    pub argv: Vec<String>,
}

/// A running adapter child: sends it one operation at a time and reads its reply.
pub struct External {
    name: String,
    info: ClientInfo,
    /// The child and its pipes; `None` once it is gone.
    io: Option<Io>,
    /// Why the child is gone.
    gone: String,
    /// The last request's id.
    id: u64,
    /// The protocol version the child's hello named (1: no batch requests).
    protocol: u32,
    /// The bound on one operation's reply; past it the child is killed and the op is `info`.
    pub deadline: Duration,
    stderr: Arc<Mutex<VecDeque<String>>>,
    stderr_task: Option<JoinHandle<()>>,
}

struct Io {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl External {
    /// Starts the adapter, sends `open` and waits up to [`OPEN_DEADLINE`] for its hello.
    pub async fn open(
        spec: &ExternalSpec,
        seeds: &[String],
        config: &RouterConfig,
    ) -> Result<External, String> {
        External::open_within(spec, seeds, config, OPEN_DEADLINE).await
    }

    /// [`External::open`] with another bound on the wait for the hello.
    pub async fn open_within(
        spec: &ExternalSpec,
        seeds: &[String],
        config: &RouterConfig,
        open_deadline: Duration,
    ) -> Result<External, String> {
        let name = &spec.name;
        let (program, args) = spec
            .argv
            .split_first()
            .ok_or_else(|| format!("{name}: no command line"))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{name}: cannot start {program}: {e}"))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(format!("{name}: {program} started without pipes"));
        };
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let mut external = External {
            name: name.clone(),
            info: ClientInfo {
                name: name.clone(),
                version: String::new(),
                redirects: RedirectVisibility::Hidden,
            },
            io: Some(Io {
                child,
                stdin,
                stdout: BufReader::new(stdout),
            }),
            gone: String::new(),
            id: 0,
            protocol: 1,
            deadline: REPLY_DEADLINE,
            stderr: tail.clone(),
            stderr_task: Some(tokio::spawn(keep_tail(stderr, tail))),
        };
        let open = wire::Open {
            kind: "open",
            seeds,
            timeout_ms: config.timeout_ms,
        };
        let line = serde_json::to_string(&open).map_err(|e| e.to_string())?;
        let why = match external.exchange(line, open_deadline).await {
            Ok(line) => match wire::parse_hello(&line) {
                Ok(hello) => {
                    external.info = hello.info;
                    external.protocol = hello.protocol;
                    return Ok(external);
                }
                Err(e) => e,
            },
            Err(e) => e,
        };
        Err(external.bury(format!("{name} did not open: {why}")).await)
    }

    /// The client the history header names, as the child's hello described it.
    pub fn info(&self) -> ClientInfo {
        self.info.clone()
    }

    /// Sends `cmd`, whose only key is `key`, and reads how it ended. After an `info` from a child
    /// that was killed (no reply in time, garbage, death), every later call fails without sending.
    pub async fn execute(&mut self, key: &[u8], cmd: &Cmd) -> Execution {
        let slot = key_slot(key);
        let request = self.words(key, cmd).map(|(key, args)| wire::Request {
            id: self.id + 1,
            key,
            args,
        });
        match self.send(request).await {
            Ok(line) => self.single_reply(slot, &line).await,
            Err(result) => unsent(slot, result),
        }
    }

    /// Sends `cmds` as one transaction on `key`'s slot (`MULTI`, the commands, `EXEC`, by the
    /// library's own transaction API); `Ok(Value::Array)` holds `EXEC`'s replies, one a command.
    /// An adapter of protocol 1 is sent nothing.
    pub async fn transaction(&mut self, key: &[u8], cmds: &[Cmd]) -> Execution {
        let slot = key_slot(key);
        let request = self.batches().and_then(|()| {
            let commands = cmds
                .iter()
                .map(|cmd| self.words(key, cmd).map(|(_, args)| args));
            let commands = commands.collect::<Result<Vec<_>, String>>()?;
            let key = self.key_text(key)?;
            let transaction = wire::Transaction { key, commands };
            Ok(wire::TransactionRequest {
                id: self.id + 1,
                transaction,
            })
        });
        match self.send(request).await {
            Ok(line) => self.single_reply(slot, &line).await,
            Err(result) => unsent(slot, result),
        }
    }

    /// Sends every `(key, command)` of `items` as one pipeline (the library's own pipeline API)
    /// and reads one outcome per command, in order. A pipeline lost as a whole (no reply in time,
    /// garbage, death) leaves every command `info`; an adapter of protocol 1 is sent nothing.
    pub async fn pipeline(&mut self, items: &[(Vec<u8>, Cmd)]) -> Vec<Execution> {
        let slots: Vec<u16> = items.iter().map(|(key, _)| key_slot(key)).collect();
        let request = self.batches().and_then(|()| {
            let commands = items.iter().map(|(key, cmd)| {
                let (key, args) = self.words(key, cmd)?;
                Ok(wire::Command { key, args })
            });
            let pipeline = commands.collect::<Result<Vec<_>, String>>()?;
            Ok(wire::PipelineRequest {
                id: self.id + 1,
                pipeline,
            })
        });
        let line = match self.send(request).await {
            Ok(line) => line,
            Err(result) => return slots.iter().map(|&s| unsent(s, result.clone())).collect(),
        };
        let id = self.id;
        let why = match wire::parse_pipeline_reply(&line) {
            Ok(reply) if reply.id == id && reply.replies.len() == items.len() => {
                let parts = reply.replies.into_iter().zip(&slots);
                return parts
                    .map(|(part, &slot)| self.execution(slot, part))
                    .collect();
            }
            Ok(reply) if reply.id != id => format!("the reply is for request {}", reply.id),
            Ok(reply) => format!(
                "{} replies to {} commands",
                reply.replies.len(),
                items.len()
            ),
            Err(e) => e,
        };
        let text = self.bury(format!("request {id}: {why}")).await;
        let lost = |&slot| unsent(slot, Err(OpError::Info(text.clone())));
        slots.iter().map(lost).collect()
    }

    /// `key` and `cmd`'s words as the protocol's text, or why they cannot be sent.
    fn words<'a>(&self, key: &'a [u8], cmd: &'a Cmd) -> Result<(&'a str, Vec<&'a str>), String> {
        let args = wire::command_args(cmd).map_err(|e| format!("{}: {e}", self.name))?;
        Ok((self.key_text(key)?, args))
    }

    /// `key` as the protocol's text, or why it cannot be sent.
    fn key_text<'a>(&self, key: &'a [u8]) -> Result<&'a str, String> {
        std::str::from_utf8(key).map_err(|_| format!("{}: the key is not UTF-8", self.name))
    }

    /// Whether the child takes batch requests (protocol 2); else why nothing is sent.
    fn batches(&self) -> Result<(), String> {
        if self.protocol >= wire::PROTOCOL_BATCHES {
            return Ok(());
        }
        Err(format!(
            "{}: the adapter speaks protocol {} (no pipelines or transactions; they need {}): \
             nothing sent",
            self.name,
            self.protocol,
            wire::PROTOCOL_BATCHES
        ))
    }

    /// Writes `request` (or fails unsent with its error) and reads the reply line. `Err` holds
    /// the op's result: `fail` when nothing was sent, `info` when the child is gone after the
    /// write (it is buried).
    async fn send<T: serde::Serialize>(
        &mut self,
        request: Result<T, String>,
    ) -> Result<String, Result<Value, OpError>> {
        let request = request.map_err(|e| Err(OpError::Fail(e)))?;
        if self.io.is_none() {
            let text = format!("client process gone, nothing sent: {}", self.gone);
            return Err(Err(OpError::Fail(text)));
        }
        let line =
            serde_json::to_string(&request).map_err(|e| Err(OpError::Fail(e.to_string())))?;
        self.id += 1;
        let id = self.id;
        match self.exchange(line, self.deadline).await {
            Ok(line) => Ok(line),
            Err(why) => Err(Err(OpError::Info(
                self.bury(format!("request {id}: {why}")).await,
            ))),
        }
    }

    /// Reads the reply line to the last single request or transaction.
    async fn single_reply(&mut self, slot: u16, line: &str) -> Execution {
        let id = self.id;
        let why = match wire::parse_reply(line) {
            Ok(reply) if reply.id == id => return self.execution(slot, reply.part),
            Ok(reply) => format!("request {id}: the reply is for request {}", reply.id),
            Err(e) => format!("request {id}: {e}"),
        };
        unsent(slot, Err(OpError::Info(self.bury(why).await)))
    }

    /// One command's (or transaction's) end as the child reported it.
    fn execution(&self, slot: u16, part: wire::Part) -> Execution {
        let text = |kind: &str| {
            let error = part.error.clone();
            error.unwrap_or_else(|| format!("{kind} without an error text"))
        };
        let result = match part.outcome {
            wire::Outcome::Ok => wire::to_value(&part.value)
                .map_err(|e| OpError::Info(format!("{}: unreadable value ({e})", self.name))),
            wire::Outcome::Fail => Err(OpError::Fail(text("fail"))),
            wire::Outcome::Info => Err(OpError::Info(text("info"))),
        };
        // A reply text the child did not cut is cut here, as the history format asks.
        let gave_up = part
            .gave_up
            .filter(|_| result.is_err())
            .map(|g| match g.reply {
                Some(text) => GaveUp::new(g.kind, &text, g.hops),
                None => g,
            });
        Execution {
            result,
            node: part.node.unwrap_or_default(),
            slot,
            redirects: part.redirects,
            gave_up,
        }
    }

    /// Closes the child's stdin, which tells it to exit, and waits up to two seconds for it
    /// (then kills it). Returns how it ended.
    pub async fn close(mut self) -> Option<ExitStatus> {
        let Io {
            mut child, stdin, ..
        } = self.io.take()?;
        drop(stdin);
        match tokio::time::timeout(REAP_DEADLINE, child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                let _ = child.start_kill();
                child.wait().await.ok()
            }
        }
    }

    /// Writes one line and reads one line back within `deadline`.
    async fn exchange(&mut self, mut line: String, deadline: Duration) -> Result<String, String> {
        let io = self.io.as_mut().ok_or("client process gone")?;
        line.push('\n');
        let exchange = async {
            io.stdin.write_all(line.as_bytes()).await?;
            io.stdin.flush().await?;
            read_line(&mut io.stdout).await
        };
        match tokio::time::timeout(deadline, exchange).await {
            Ok(Ok(Some(line))) => Ok(line),
            Ok(Ok(None)) => Err("the client process closed its stdout".into()),
            Ok(Err(e)) => Err(format!("talking to the client process: {e}")),
            Err(_) => Err(format!("no reply within {} ms", deadline.as_millis())),
        }
    }

    /// Kills the child (if it still runs), waits for it and its stderr, remembers why it is gone,
    /// and returns the message: `why`, the exit status and the child's last stderr lines.
    async fn bury(&mut self, why: String) -> String {
        let mut text = format!("{}: {why}", self.name);
        if let Some(mut io) = self.io.take() {
            let _ = io.child.start_kill();
            match tokio::time::timeout(REAP_DEADLINE, io.child.wait()).await {
                Ok(Ok(status)) => text.push_str(&format!("; client process {status}")),
                _ => text.push_str("; client process did not exit"),
            }
        }
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(REAP_DEADLINE, task).await;
        }
        let tail = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        if !tail.is_empty() {
            let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
            text.push_str(&format!("; stderr: {}", lines.join(" | ")));
        }
        self.gone = text.clone();
        text
    }
}

/// An op on `slot` that ended with `result` before any reply: no node, no hops.
fn unsent(slot: u16, result: Result<Value, OpError>) -> Execution {
    Execution {
        result,
        node: String::new(),
        slot,
        redirects: Vec::new(),
        gave_up: None,
    }
}

/// Reads one line (without its newline); `None` at end of file. A line longer than
/// [`LINE_BYTES_MAX`] or not UTF-8 is an error.
async fn read_line(reader: &mut BufReader<ChildStdout>) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let limit = LINE_BYTES_MAX as u64 + 1;
    (&mut *reader)
        .take(limit)
        .read_until(b'\n', &mut buf)
        .await?;
    let invalid = |text: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, text);
    match buf.pop() {
        None => Ok(None),
        Some(b'\n') => String::from_utf8(buf)
            .map(Some)
            .map_err(|_| invalid("a line that is not UTF-8")),
        Some(_) if buf.len() >= LINE_BYTES_MAX => Err(invalid("a line over 1 MiB")),
        Some(_) => Err(invalid("end of file in the middle of a line")),
    }
}

/// Keeps the last [`STDERR_LINES_MAX`] lines of the child's stderr in `tail`.
async fn keep_tail(stderr: ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let limit = 4 * STDERR_LINE_CHARS_MAX as u64;
        match (&mut reader).take(limit).read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line: String = line
                    .trim_end()
                    .chars()
                    .take(STDERR_LINE_CHARS_MAX)
                    .collect();
                if line.is_empty() {
                    continue;
                }
                let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                if tail.len() == STDERR_LINES_MAX {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
    }
}

#[cfg(test)]
mod tests;
