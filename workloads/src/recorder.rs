//! The history writer: stamps each event with monotonic time and appends it as one JSON line.

use checker::{Event, EventType, Header, Process};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest time a recorded event may sit in the buffer before it reaches the file.
pub const FLUSH_INTERVAL_MS: u64 = 100;

/// Appends events to a history file, in time order, from any number of tasks; clones share it.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    start: Instant,
    state: Mutex<State>,
    /// Dropping the sender (with `Inner`) or sending on it stops the flusher.
    stop: Mutex<Option<mpsc::Sender<()>>>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

struct State {
    out: BufWriter<File>,
    /// The first write error; later writes are skipped so the file stays a clean prefix.
    error: Option<io::Error>,
    events: u64,
}

impl Recorder {
    /// Creates (truncates) the file at `path`, writes the header line, and starts the flusher.
    pub fn create(path: &Path, header: Header) -> io::Result<Recorder> {
        let mut out = BufWriter::new(File::create(path)?);
        // Buffered like any event: a full disk shows up at the next flush, reported by `close`.
        writeln!(out, "{}", header.to_line())?;
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let inner = Arc::new(Inner {
            start: Instant::now(),
            state: Mutex::new(State {
                out,
                error: None,
                events: 0,
            }),
            stop: Mutex::new(Some(stop_tx)),
            flusher: Mutex::new(None),
        });
        let weak = Arc::downgrade(&inner);
        let handle = std::thread::Builder::new()
            .name("history-flusher".into())
            .spawn(move || flush_loop(weak, stop_rx))?;
        *lock(&inner.flusher) = Some(handle);
        Ok(Recorder { inner })
    }

    /// Nanoseconds since the recorder was created, from the monotonic clock.
    pub fn now_ns(&self) -> u64 {
        self.inner.start.elapsed().as_nanos() as u64
    }

    /// Stamps `event.time` and appends it; returns the time. Stamping and writing happen under
    /// one lock, so line order is time order. Never panics on I/O errors: see [`Recorder::close`].
    pub fn record(&self, mut event: Event) -> u64 {
        let mut state = lock(&self.inner.state);
        let time = self.now_ns();
        event.time = time;
        if state.error.is_none() {
            let mut line = serde_json::to_vec(&event).expect("events always serialize");
            line.push(b'\n');
            if let Err(e) = state.out.write_all(&line) {
                tracing::error!("history write failed: {e}");
                state.error = Some(e);
            }
        }
        state.events += 1;
        time
    }

    /// Records a nemesis annotation (`type: info`, `process: "nemesis"`); returns its time.
    pub fn nemesis(&self, f: &str, value: serde_json::Value) -> u64 {
        self.record(Event::new(EventType::Info, Process::Nemesis, f, value, 0))
    }

    /// How many events have been recorded (written or not).
    pub fn events(&self) -> u64 {
        lock(&self.inner.state).events
    }

    /// Stops the flusher, flushes and fsyncs; reports the first write error, if any.
    /// Events recorded after `close` are still buffered and written when the last clone drops.
    pub fn close(&self) -> io::Result<()> {
        lock(&self.inner.stop).take();
        if let Some(handle) = lock(&self.inner.flusher).take() {
            let _ = handle.join();
        }
        let mut state = lock(&self.inner.state);
        if state.error.is_none() {
            let synced = state
                .out
                .flush()
                .and_then(|_| state.out.get_ref().sync_all());
            if let Err(e) = synced {
                state.error = Some(e);
            }
        }
        match &state.error {
            None => Ok(()),
            Some(e) => Err(io::Error::new(
                e.kind(),
                format!("writing the history: {e}"),
            )),
        }
    }
}

/// Flushes every interval until told to stop or until every `Recorder` clone is gone.
fn flush_loop(inner: Weak<Inner>, stop: mpsc::Receiver<()>) {
    let interval = Duration::from_millis(FLUSH_INTERVAL_MS);
    loop {
        match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let Some(inner) = inner.upgrade() else { return };
        let mut state = lock(&inner.state);
        if state.error.is_none() {
            if let Err(e) = state.out.flush() {
                tracing::error!("history flush failed: {e}");
                state.error = Some(e);
            }
        }
    }
}

/// Locks, ignoring poisoning: a panicked recorder user must not stop the history.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::History;
    use serde_json::{json, Map, Value};

    fn header() -> Header {
        let mut run = Map::new();
        run.insert("workload".into(), json!("register"));
        Header::new(run)
    }

    fn temp_path(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("slotcheck-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    fn op(kind: EventType, process: u64, value: Value) -> Event {
        let mut e = Event::new(kind, Process::Client(process), "write", value, 0);
        e.key = Some("k".into());
        e
    }

    #[test]
    fn records_in_time_order_from_many_threads() {
        let path = temp_path("order.jsonl");
        let rec = Recorder::create(&path, header()).unwrap();
        let threads: Vec<_> = (0..4u64)
            .map(|p| {
                let rec = rec.clone();
                std::thread::spawn(move || {
                    for v in 0..250u64 {
                        rec.record(op(EventType::Invoke, p, json!(v)));
                        rec.record(op(EventType::Ok, p, json!(v)));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        rec.nemesis("migrate-start", json!({"slot": 1}));
        rec.close().unwrap();
        let h = History::read_file(&path).unwrap();
        assert_eq!(h.header.unwrap().run["workload"], json!("register"));
        assert_eq!(h.events.len(), 2001);
        assert!(h.events.windows(2).all(|w| w[0].time <= w[1].time));
        assert_eq!(h.events.last().unwrap().process, Process::Nemesis);
        assert!(h.warnings.is_empty());
    }

    #[test]
    fn dropped_without_close_is_readable() {
        let path = temp_path("dropped.jsonl");
        {
            let rec = Recorder::create(&path, header()).unwrap();
            for v in 0..100u64 {
                rec.record(op(EventType::Invoke, 0, json!(v)));
            }
            // The flusher alone must get the events to disk while the recorder lives.
            std::thread::sleep(Duration::from_millis(3 * FLUSH_INTERVAL_MS));
            let h = History::read_file(&path).unwrap();
            assert_eq!(h.events.len(), 100);
            rec.record(op(EventType::Ok, 0, json!(99)));
        }
        let h = History::read_file(&path).unwrap();
        assert_eq!(h.events.len(), 101);
        assert!(h.events.windows(2).all(|w| w[0].time <= w[1].time));
    }

    #[test]
    fn cut_file_reads_up_to_the_last_whole_line() {
        let path = temp_path("cut.jsonl");
        let rec = Recorder::create(&path, header()).unwrap();
        for v in 0..10u64 {
            rec.record(op(EventType::Invoke, v, json!(v)));
        }
        rec.close().unwrap();
        // Simulate a kill mid-write: chop the file in the middle of the last line.
        let text = std::fs::read(&path).unwrap();
        std::fs::write(&path, &text[..text.len() - 7]).unwrap();
        let h = History::read_file(&path).unwrap();
        assert_eq!(h.events.len(), 9);
        assert_eq!(h.warnings.len(), 1);
    }

    #[test]
    fn write_errors_are_reported_by_close() {
        // /dev/full accepts opens and fails every write with ENOSPC.
        let rec = Recorder::create(Path::new("/dev/full"), header()).unwrap();
        for v in 0..1000u64 {
            rec.record(op(EventType::Invoke, 0, json!(v))); // overflows the buffer: no panic
        }
        assert!(rec.close().is_err());
        assert_eq!(rec.events(), 1000);
    }
}
