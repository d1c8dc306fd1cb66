//! `slotcheck soak`: the workload and nemesis run for hours while a rolling checker checks each
//! closed window of the history and raises an alarm, with that window's report, the moment one
//! is invalid.
//!
//! The history goes to segment files (`segments/NNNNNN.jsonl`, only the first with the header, so
//! joined in order they are one history); each workload key lives for one window
//! (`workloads::KeyNames::epoch_name`), so a window's keys are checked once their segments are closed
//! ([`watch`]). Memory holds one window's events at a time. A soak killed in any way can be
//! checked afterwards from its segments (`slotcheck soak --check DIR`) and resumed
//! (`--resume`): a new cluster, segment numbers, time line and process numbers continuing.

pub mod segments;
pub mod watch;

use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;
use workloads::{SegmentSpec, WorkloadConfig};

use crate::config::RunConfig;
use crate::nemesis::runner::NemesisSummary;
use crate::run::{drive, heal, start, verify, Run};
use crate::term::{status, warn};
use watch::{Totals, Watcher, WindowResult};

/// The rolling checker's results in the run directory, one line per window.
pub const WINDOWS_FILE: &str = "windows.jsonl";
/// How often the rolling checker looks for closed segments.
const POLL_MS: u64 = 1000;
/// How often the progress line is printed when stderr is not a terminal.
const PLAIN_PROGRESS_S: u64 = 60;

/// What a soak does beyond a test run's configuration.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// Cluster, workload, nemesis, seed, output, duration (the soak's length).
    pub run: RunConfig,
    /// Window length: each key lives this long; a window is checked when it has closed.
    pub window_ms: u64,
    /// Stop at the first alarm.
    pub until_anomaly: bool,
    /// Continue the soak in `run.output` rather than start a new one there.
    pub resume: bool,
    /// Put the server bug (if any) in place only this long after the start.
    pub bug_after_ms: u64,
}

impl SoakConfig {
    /// How long after a window ends its last op may still complete: the client timeout, three
    /// times over, plus two seconds for a loaded machine.
    pub fn margin_ms(&self) -> u64 {
        3 * self.run.timeout_ms + 2000
    }

    /// Segment length: a third of a window, at least a second.
    fn segment_ms(&self) -> u64 {
        (self.window_ms / 3).max(1000)
    }
}

/// What a soak did.
pub struct SoakOutcome {
    /// Totals of the rolling checker.
    pub totals: Totals,
    /// What the nemesis did.
    pub nemesis: NemesisSummary,
    /// The first alarm's window, if any.
    pub first_alarm: Option<WindowResult>,
    /// How long the soak ran.
    pub elapsed: Duration,
    /// Whether Ctrl-C ended it.
    pub interrupted: bool,
}

/// Where a resumed soak continues: next segment, last event time, first free process number.
fn continuation(seg_dir: &Path) -> Result<(u64, u64, u64)> {
    let present = segments::list(seg_dir)?;
    let Some(&last) = present.last() else {
        return Ok((1, 0, 0));
    };
    let mut max_time = 0;
    let mut max_process = 0;
    for index in present.iter().rev().take(3) {
        let (s, _) = segments::read(seg_dir, *index)?;
        max_time = max_time.max(s.max_time);
        max_process = max_process.max(s.max_process.unwrap_or(0));
    }
    // Past every process number a retired client could have taken in the tail segments.
    Ok((last + 1, max_time, max_process + 1_000))
}

/// Runs a soak end to end: the run pipeline's stages with a segmented history, a sweeper of old
/// windows' keys and the rolling checker while it drives. Servers are stopped and faults healed
/// when it returns, also on error.
pub async fn run_soak(cfg: &SoakConfig) -> Result<SoakOutcome> {
    let run = &cfg.run;
    let seg_dir = run.output.join(segments::SEGMENTS_DIR);
    let resumed = resume_point(cfg, &seg_dir)?;
    let started = start::start(run, |_| {}).await?;
    let mut run = record(cfg, started, &seg_dir, resumed)?;
    announce(cfg);
    let driving = drive::spawn(&run);
    let sweeper = tokio::spawn(sweep(
        run.cluster.seeds(),
        run.workload.clone(),
        run.recorder.clone(),
        driving.stop.clone(),
    ));
    let bug = spawn_bug(cfg, &run, &driving.stop);
    let checker = Checker::start(Watcher::new(
        &run.cfg.output,
        cfg.window_ms,
        cfg.margin_ms(),
        WINDOWS_FILE,
        cfg.resume,
    )?)?;
    let started = Instant::now();
    let mut first_alarm: Option<WindowResult> = None;
    run.interrupted = watch(cfg, &run, &checker, &mut first_alarm).await?;
    driving.stop.cancel();
    if let Some(bug) = bug {
        let _ = bug.await;
    }
    let _ = sweeper.await;
    drive::finish(&mut run, driving).await?;
    match heal::heal(&mut run).await {
        // What the nodes hold (placement, replicas); the history is too long to judge here.
        Ok(()) => verify::cluster(&mut run, None).await?,
        Err(e) => warn(&format!("the cluster did not settle: {e}")),
    }
    run.recorder
        .close()
        .with_context(|| format!("writing segments in {}", seg_dir.display()))?;
    run.cluster.stop();
    status("Checking the last windows");
    let (results, totals) = checker.poll(true).await?;
    for r in results {
        if r.alarm.is_some() {
            alarm(&r);
            first_alarm.get_or_insert(r);
        }
    }
    Ok(SoakOutcome {
        totals,
        nemesis: run.family.nemesis,
        first_alarm,
        elapsed: started.elapsed(),
        interrupted: run.interrupted,
    })
}

/// Where a soak starts: segment number, history time offset and process base (a resumed soak
/// continues its segments, at the next window); refuses to start over an old soak or resume one
/// with other windows.
fn resume_point(cfg: &SoakConfig, seg_dir: &Path) -> Result<(u64, u64, u64)> {
    let output = &cfg.run.output;
    if !cfg.resume && seg_dir.exists() {
        anyhow::bail!(
            "{} already holds a soak: use --resume to continue it, or another --output",
            output.display()
        );
    }
    std::fs::create_dir_all(seg_dir).with_context(|| format!("creating {}", seg_dir.display()))?;
    let (first, last_time, process_base) = continuation(seg_dir)?;
    // A resumed soak starts at the next window: its keys are new, unlike those of the window
    // the old soak died in, which the old cluster took with it.
    let window_ns = cfg.window_ms * 1_000_000;
    let offset_ns = if first > 1 {
        (last_time / window_ns + 1) * window_ns
    } else {
        0
    };
    if first > 1 {
        let (_, h) = segments::read(seg_dir, 1)?;
        let window = h.header.as_ref().and_then(|h| h.run.get("soak_window_ms"));
        if window.and_then(|w| w.as_u64()) != Some(cfg.window_ms) {
            anyhow::bail!(
                "the soak in {} has windows of {} ms, not {} ms: resume it with its own --window",
                output.display(),
                window.map_or("unknown".to_string(), |w| w.to_string()),
                cfg.window_ms
            );
        }
        status(&format!(
            "Resuming at segment {first}, history time {:.1} s, process {process_base}",
            offset_ns as f64 / 1e9
        ));
    }
    Ok((first, offset_ns, process_base))
}

/// The soak's record stage: segment files from `first` (at `offset_ns`), the header with the
/// window length, and a workload whose keys live one window, numbered from `process_base`.
fn record(
    cfg: &SoakConfig,
    started: start::Started,
    seg_dir: &Path,
    (first, offset_ns, process_base): (u64, u64, u64),
) -> Result<Run> {
    let mut header = start::header(&started);
    header
        .run
        .insert("soak_window_ms".into(), cfg.window_ms.into());
    let recorder = workloads::Recorder::create_segmented(
        SegmentSpec {
            dir: seg_dir.to_path_buf(),
            segment_ms: cfg.segment_ms(),
            first,
            time_offset_ns: offset_ns,
        },
        Some(header),
    )
    .with_context(|| format!("creating segments in {}", seg_dir.display()))?;
    let workload = WorkloadConfig {
        epoch_ms: cfg.window_ms,
        process_base,
        ..cfg.run.workload_config()
    };
    Ok(Run::new(started, recorder, seg_dir.to_path_buf(), workload))
}

/// Prints what the soak is about to run.
fn announce(cfg: &SoakConfig) {
    let run = &cfg.run;
    status(&format!(
        "Soaking for {}: {} clients, {} keys renewed every {}, seed {}; nemesis: {}",
        humantime::format_duration(run.duration),
        run.clients,
        run.keys,
        humantime::format_duration(Duration::from_millis(cfg.window_ms)),
        run.seed,
        drive::nemesis_names(&run.nemesis)
    ));
}

/// Puts the server bug (if any) on the proxies: connections relay RESP-aware from the start (the
/// mode is fixed when a connection is accepted), and the bug hits requests from `bug_after` on.
fn spawn_bug(
    cfg: &SoakConfig,
    run: &Run,
    stop: &CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let bug = cfg.run.server_bug?;
    start::set_server_bug(&run.cluster, bug, cfg.run.seed, 0.0);
    let (cluster, stop, rec) = (run.cluster.clone(), stop.clone(), run.recorder.clone());
    let (seed, after) = (cfg.run.seed, cfg.bug_after_ms);
    Some(tokio::spawn(async move {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(after)) => {
                let p = crate::harness::proxy::bug::P_DEFAULT;
                start::set_server_bug(&cluster, bug, seed, p);
                rec.nemesis("server-bug", serde_json::json!({"bug": bug, "p": p}));
                warn(&format!("server bug {bug} injected from now on"));
            }
        }
    }))
}

/// Polls the rolling checker until the soak's time is up, Ctrl-C (returns true) or, with
/// `--until-anomaly`, the first alarm (kept in `first_alarm`), with a progress line.
async fn watch(
    cfg: &SoakConfig,
    run: &Run,
    checker: &Checker,
    first_alarm: &mut Option<WindowResult>,
) -> Result<bool> {
    let started = Instant::now();
    let progress = crate::term::spinner("soaking");
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_line = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(POLL_MS));
    let deadline = tokio::time::sleep(run.cfg.duration);
    tokio::pin!(deadline);
    let interrupted = loop {
        tokio::select! {
            _ = &mut deadline => break false,
            _ = run.interrupt.cancelled() => break true,
            _ = tick.tick() => {}
        }
        let (results, totals) = checker.poll(false).await?;
        for r in &results {
            if r.alarm.is_some() {
                alarm(r);
                first_alarm.get_or_insert_with(|| r.clone());
            }
        }
        let line = progress_line(
            started.elapsed(),
            run.cfg.duration,
            run.recorder.events(),
            &totals,
        );
        // Without a terminal there is no spinner: a plain line every minute instead.
        if !terminal && last_line.elapsed() >= Duration::from_secs(PLAIN_PROGRESS_S) {
            status(&line);
            last_line = Instant::now();
        }
        progress.set_message(line);
        if cfg.until_anomaly && first_alarm.is_some() {
            break false;
        }
    };
    progress.finish_and_clear();
    Ok(interrupted)
}

/// Deletes the keys of windows long over (unrecorded `DEL`s through a router of its own), so
/// that slots do not fill up with one key per window and migrations stay as long in hour 8 as in
/// minute 1. A window is swept once every op invoked in it has completed (ok, or timed out as
/// `info`) a full window ago: no recorded op can read or write its keys any more.
async fn sweep(
    seeds: Vec<String>,
    cfg: WorkloadConfig,
    recorder: workloads::Recorder,
    stop: CancellationToken,
) {
    let epoch_now = || recorder.now_ns() / 1_000_000 / cfg.epoch_ms;
    let lag = 2 + cfg.timeout_ms.div_ceil(cfg.epoch_ms);
    let mut next = epoch_now();
    let slots = workloads::SlotMap::new().shared();
    let mut router = workloads::Router::new(seeds, slots, cfg.router_config());
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(cfg.epoch_ms / 2)) => {}
        }
        while next + lag <= epoch_now() {
            for i in 0..cfg.keys {
                let key = cfg.key_names().epoch_name(i, next);
                let del = redis::cmd("DEL").arg(&key).clone();
                let _ = router.execute(key.as_bytes(), &del).await;
            }
            next += 1;
        }
    }
}

/// A poll request to the checker thread: whether the soak has finished, and where to answer.
type Request = (bool, oneshot::Sender<Result<(Vec<WindowResult>, Totals)>>);

/// The rolling checker on one thread of its own, so that the workload's tasks keep running
/// while it checks, and its allocations stay in one malloc arena (the blocking pool would spread
/// them over many, each keeping its peak, and the soak's memory would creep up).
struct Checker {
    requests: std::sync::mpsc::Sender<Request>,
}

impl Checker {
    fn start(mut watcher: Watcher) -> Result<Checker> {
        let (requests, incoming) = std::sync::mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("soak-checker".into())
            .spawn(move || {
                for (finished, reply) in incoming {
                    let result = watcher.poll(finished).map(|r| (r, watcher.totals.clone()));
                    let _ = reply.send(result);
                }
            })
            .context("starting the rolling checker")?;
        Ok(Checker { requests })
    }

    /// Checks what is due; returns the windows checked and the totals so far.
    async fn poll(&self, finished: bool) -> Result<(Vec<WindowResult>, Totals)> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((finished, reply))
            .map_err(|_| anyhow::anyhow!("the rolling checker stopped"))?;
        answer.await.context("the rolling checker stopped")?
    }
}

/// Prints an alarm: the window, what was found, and where its report is.
pub fn alarm(r: &WindowResult) {
    let classes: Vec<String> = r.classes.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let keys = if r.invalid_keys.is_empty() {
        String::new()
    } else {
        format!("; invalid keys {}", named(&r.invalid_keys))
    };
    let report = r
        .alarm
        .as_deref()
        .map(|d| d.join(crate::report::REPORT_FILE));
    crate::term::error(&format!(
        "ALARM window {} ({:.1}-{:.1} s): verdict {}, anomalies {}{keys}; report: {}",
        r.window,
        r.from_ms as f64 / 1e3,
        r.to_ms as f64 / 1e3,
        r.verdict,
        classes.join(", "),
        report.unwrap_or_default().display()
    ));
}

/// The first few of `keys`, and how many more there are.
fn named(keys: &[String]) -> String {
    const SHOWN: usize = 4;
    let mut text = keys
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        text.push_str(&format!(" and {} more", keys.len() - SHOWN));
    }
    text
}

/// The progress line: elapsed, ops, migrations, faults, windows checked, anomalies so far.
pub fn progress_line(elapsed: Duration, total: Duration, events: u64, t: &Totals) -> String {
    let secs =
        |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string();
    format!(
        "soak {} / {} | ops {} | migrations {} | faults {} | windows checked {} | alarms {}",
        secs(elapsed),
        secs(total),
        events / 2,
        t.migrations,
        t.faults,
        t.windows,
        t.alarms
    )
}

/// Checks every window of a soak's segments afterwards (a killed or finished soak); writes
/// `check-windows.jsonl` and alarm directories, and returns the totals and the alarms.
pub fn check_segments(
    run_dir: &Path,
    window_ms: Option<u64>,
    margin_ms: u64,
) -> Result<(Totals, Vec<WindowResult>)> {
    let seg_dir = run_dir.join(segments::SEGMENTS_DIR);
    let first = segments::list(&seg_dir)?;
    if first.is_empty() {
        let why = format!("{} has no segments", seg_dir.display());
        return Err(crate::input::BadInput::flag(why).into());
    }
    let window_ms = match window_ms {
        Some(w) => w,
        None => {
            let (_, h) = segments::read(&seg_dir, first[0])?;
            h.header
                .as_ref()
                .and_then(|h| h.run.get("soak_window_ms"))
                .and_then(|v| v.as_u64())
                .ok_or_else(|| {
                    crate::input::BadInput::flag(
                        "segment 1's header has no soak_window_ms: give --window",
                    )
                })?
        }
    };
    let name = "check-windows.jsonl";
    let _ = std::fs::remove_file(run_dir.join(name));
    let mut watcher = Watcher::new(run_dir, window_ms, margin_ms, name, false)?;
    let results = watcher.poll(true)?;
    let alarms = results.into_iter().filter(|r| r.alarm.is_some()).collect();
    Ok((watcher.totals.clone(), alarms))
}
