//! The history writer: stamps each event with monotonic time and appends it as one JSON line,
//! to one file or (for soak runs) to numbered segment files that rotate by time.

use checker::{Event, EventType, Header, Process};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest time a recorded event may sit in the buffer before it reaches the file.
pub const FLUSH_INTERVAL_MS: u64 = 100;

/// Bytes buffered before a write: about 300 events, so writing costs one system call per
/// 150 operations rather than per 20 (the default 8 KiB).
const BUFFER_BYTES: usize = 64 * 1024;

/// Appends events to a history file, in time order, from any number of tasks; clones share it.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    start: Instant,
    /// Added to every time stamp: a resumed soak continues the time line of the one it resumes.
    offset_ns: u64,
    state: Mutex<State>,
    /// Dropping the sender (with `Inner`) or sending on it stops the flusher.
    stop: Mutex<Option<mpsc::Sender<()>>>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

struct State {
    out: BufWriter<File>,
    /// With segments: where the next one goes and when the current one began.
    segments: Option<Rotation>,
    /// The first write error; later writes are skipped so the file stays a clean prefix.
    error: Option<io::Error>,
    events: u64,
}

impl Recorder {
    /// Creates (truncates) the file at `path`, writes the header line, and starts the flusher.
    pub fn create(path: &Path, header: Header) -> io::Result<Recorder> {
        let mut out = BufWriter::with_capacity(BUFFER_BYTES, File::create(path)?);
        // Buffered like any event: a full disk shows up at the next flush, reported by `close`.
        writeln!(out, "{}", header.to_line())?;
        Recorder::start(out, None, 0)
    }

    /// Writes to segment files `dir/NNNNNN.jsonl` from `spec.first` on, each taking the events of
    /// `spec.segment_ms` of time; only segment 1 gets `header`, so the segments in order, joined,
    /// are one history. A closed segment is flushed and fsynced before the next is created: a
    /// reader may take every segment but the newest as complete.
    pub fn create_segmented(spec: SegmentSpec, header: Option<Header>) -> io::Result<Recorder> {
        let mut out = BufWriter::with_capacity(
            BUFFER_BYTES,
            File::create(segment_path(&spec.dir, spec.first))?,
        );
        if let Some(header) = header.filter(|_| spec.first == 1) {
            writeln!(out, "{}", header.to_line())?;
        }
        let rotation = Rotation {
            dir: spec.dir,
            segment_ns: spec.segment_ms.max(1) * 1_000_000,
            index: spec.first,
            started_ns: spec.time_offset_ns,
        };
        Recorder::start(out, Some(rotation), spec.time_offset_ns)
    }

    fn start(
        out: BufWriter<File>,
        segments: Option<Rotation>,
        offset_ns: u64,
    ) -> io::Result<Recorder> {
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let inner = Arc::new(Inner {
            start: Instant::now(),
            offset_ns,
            state: Mutex::new(State {
                out,
                segments,
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

    /// The segment being written, with segments.
    pub fn segment(&self) -> Option<u64> {
        lock(&self.inner.state).segments.as_ref().map(|r| r.index)
    }

    /// Nanoseconds since the recorder was created, from the monotonic clock.
    pub fn now_ns(&self) -> u64 {
        self.inner.offset_ns + self.inner.start.elapsed().as_nanos() as u64
    }

    /// Stamps `event.time` and appends it; returns the time. Stamping and writing happen under
    /// one lock, so line order is time order. Never panics on I/O errors: see [`Recorder::close`].
    pub fn record(&self, mut event: Event) -> u64 {
        let mut state = lock(&self.inner.state);
        let time = self.now_ns();
        event.time = time;
        if state.error.is_none() {
            if let Err(e) = rotate_if_due(&mut state, time) {
                tracing::error!("history segment rotation failed: {e}");
                state.error = Some(e);
            }
        }
        if state.error.is_none() {
            // Straight into the buffer: no line allocated per event. A crash can cut the last
            // line either way; readers skip a cut last line.
            let written = serde_json::to_writer(&mut state.out, &event)
                .map_err(io::Error::from)
                .and_then(|()| state.out.write_all(b"\n"));
            if let Err(e) = written {
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

/// Where a segmented history goes and how it rotates.
#[derive(Debug, Clone)]
pub struct SegmentSpec {
    /// The directory of the segment files.
    pub dir: PathBuf,
    /// Time each segment covers.
    pub segment_ms: u64,
    /// Number of the first segment written (1 for a new history; the next free one to resume).
    pub first: u64,
    /// Time stamp of the first event's clock zero (a resumed history continues its time line).
    pub time_offset_ns: u64,
}

/// The path of segment `index` in `dir`: zero-padded, so names sort in segment order.
pub fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:06}.jsonl"))
}

#[derive(Debug)]
struct Rotation {
    dir: PathBuf,
    segment_ns: u64,
    index: u64,
    started_ns: u64,
}

/// Closes the current segment and opens the next when the event at `time` is past its span.
fn rotate_if_due(state: &mut State, time: u64) -> io::Result<()> {
    let Some(rotation) = state.segments.as_mut() else {
        return Ok(());
    };
    if time < rotation.started_ns + rotation.segment_ns {
        return Ok(());
    }
    state.out.flush()?;
    state.out.get_ref().sync_all()?;
    let next = rotation.index + 1;
    let file = File::create(segment_path(&rotation.dir, next))?;
    rotation.index = next;
    rotation.started_ns = time;
    state.out = BufWriter::with_capacity(BUFFER_BYTES, file);
    Ok(())
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

    /// `name` in a fresh temporary directory, removed when the returned guard drops.
    fn temp_path(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        (dir, path)
    }

    fn op(kind: EventType, process: u64, value: Value) -> Event {
        let mut e = Event::new(kind, Process::Client(process), "write", value, 0);
        e.key = Some("k".into());
        e
    }

    #[test]
    fn records_in_time_order_from_many_threads() {
        let (_dir, path) = temp_path("order.jsonl");
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
        let (_dir, path) = temp_path("dropped.jsonl");
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
        let (_dir, path) = temp_path("cut.jsonl");
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
    fn segments_rotate_by_time_and_join_into_one_history() {
        let (_tmp, dir) = temp_path("segments");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let spec = SegmentSpec {
            dir: dir.clone(),
            segment_ms: 30,
            first: 1,
            time_offset_ns: 5_000_000_000,
        };
        let rec = Recorder::create_segmented(spec, Some(header())).unwrap();
        for v in 0..8u64 {
            rec.record(op(EventType::Invoke, v, json!(v)));
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            rec.segment().unwrap() >= 2,
            "80 ms of events in 30 ms segments"
        );
        rec.close().unwrap();
        let mut joined = Vec::new();
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        assert_eq!(names[0], segment_path(&dir, 1));
        for (i, name) in names.iter().enumerate() {
            let h = History::read_file(name).unwrap();
            assert_eq!(h.header.is_some(), i == 0, "only segment 1 has the header");
            joined.extend(std::fs::read(name).unwrap());
        }
        let h = History::parse(&joined[..], "joined").unwrap();
        assert_eq!(h.events.len(), 8);
        assert!(
            h.events[0].time >= 5_000_000_000,
            "the time line starts at the offset"
        );
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
