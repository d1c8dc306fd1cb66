//! How large `report.html` gets and how long it takes, for a generated history of many ops:
//! `cargo run --release -p slotcheck --example report_size -- [ops] [keys] [clients]`
//! (default 1,000,000 ops over 1000 keys and 50 clients, 1% `info`).
//!
//! The history is generated with `checker::gen` into a temp dir, with a migration every tenth
//! of the run and a kill and restart every fifth (nemesis events written into the text), then
//! checked as `slotcheck test` checks, and its report written. Prints the history's size, the
//! check and report times, the report's size, and, when Debian's `chromium` is on PATH, how
//! long headless Chromium takes to open it (the process, and the page's script until it is
//! done). `REPORT_SIZE_KEEP=path` keeps a copy of the report. No assertions: numbers (the
//! issue's targets: under 20 MB, opens in under 10 s).

use checker::gen::{write_history, GenConfig};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The nemesis events of action `n` at `at`, each with its time: a migration of the slot of
/// key `k{n}` (start, importing, migrating, then its end `span` later) or a kill of a node and
/// its restart `span` later.
fn nemesis_lines(n: u64, at: u64, span: u64) -> Vec<(u64, String)> {
    let slot = checker::key_slot(format!("k{n}").as_bytes());
    let (a, b) = ("127.0.0.1:7000", "127.0.0.1:7001");
    let ev = |f: &str, time: u64, v: String| {
        let line =
            format!(r#"{{"type":"info","process":"nemesis","f":"{f}","value":{v},"time":{time}}}"#);
        (time, line)
    };
    let m = |phase: &str| {
        format!(r#"{{"slot":{slot},"from":"{a}","to":"{b}","phase":"{phase}","node":"{b}"}}"#)
    };
    let k = |phase: &str| format!(r#"{{"node":"{a}","phase":"{phase}"}}"#);
    match n % 2 {
        0 => vec![
            ev("migrate-start", at, m("stable")),
            ev("migrate-step", at, m("importing")),
            ev("migrate-step", at, m("migrating")),
            ev("migrate-end", at + span, m("stable")),
        ],
        _ => vec![
            ev("kill", at, k("begin")),
            ev("kill", at, k("end")),
            ev("restart", at + span, k("begin")),
            ev("restart", at + span, k("end")),
        ],
    }
}

/// Copies `from` to `to`, adding a nemesis action at every tenth of the run's `end` time;
/// every line is written in time order.
fn with_nemesis(from: &Path, to: &Path, end: u64) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(to)?);
    let mut pending: Vec<(u64, String)> = Vec::new();
    let mut next = 1;
    for line in BufReader::new(std::fs::File::open(from)?).lines() {
        let line = line?;
        let time = line
            .split("\"time\":")
            .nth(1)
            .and_then(|t| t.trim_end_matches('}').parse::<u64>().ok());
        if let Some(time) = time {
            if next < 10 && time >= next * end / 10 {
                pending.extend(nemesis_lines(next, time, end / 40));
                next += 1;
            }
            pending.sort_by_key(|p| p.0);
            let due = pending.iter().take_while(|p| p.0 <= time).count();
            for (_, l) in pending.drain(..due) {
                writeln!(out, "{l}")?;
            }
        }
        writeln!(out, "{line}")?;
    }
    for (_, l) in pending {
        writeln!(out, "{l}")?;
    }
    out.flush()
}

fn last_time(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap();
    let last = text.lines().last().unwrap_or("");
    last.split("\"time\":")
        .nth(1)
        .and_then(|t| t.trim_end_matches('}').parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let ops = args.first().copied().unwrap_or(1_000_000);
    let keys = args.get(1).copied().unwrap_or(1000) as u32;
    let clients = args.get(2).copied().unwrap_or(50) as u32;
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain.jsonl");
    let history = tmp.path().join("history.jsonl");

    let start = Instant::now();
    let cfg = GenConfig::register(keys, clients, ops, 42);
    write_history(
        &cfg,
        &mut BufWriter::new(std::fs::File::create(&plain).unwrap()),
    )
    .unwrap();
    with_nemesis(&plain, &history, last_time(&plain)).unwrap();
    std::fs::remove_file(&plain).unwrap();
    let mb = |p: &Path| std::fs::metadata(p).unwrap().len() as f64 / 1e6;
    println!(
        "history: {ops} ops, {keys} keys, {clients} clients: {:.1} MB, generated in {:.1} s",
        mb(&history),
        start.elapsed().as_secs_f64()
    );

    let start = Instant::now();
    let report =
        slotcheck::run::check_run(&history, None, workloads::WorkloadKind::Register).unwrap();
    println!(
        "check: {} in {:.1} s",
        report.valid,
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let html = slotcheck::report::write_for_history(tmp.path(), &history, &report).unwrap();
    println!(
        "report.html: {:.2} MB, written in {:.1} s (reading the history included)",
        mb(&html),
        start.elapsed().as_secs_f64()
    );

    if let Some(keep) = std::env::var_os("REPORT_SIZE_KEEP") {
        std::fs::copy(&html, &keep).unwrap();
        println!("kept: {}", Path::new(&keep).display());
    }
    let Some(chromium) = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("chromium"))
            .find(|c| c.is_file())
    }) else {
        println!("chromium: not on PATH, not opened");
        return;
    };
    let profile = tmp.path().join("profile");
    let start = Instant::now();
    let out = Command::new(chromium)
        .args(["--headless", "--disable-gpu", "--no-sandbox", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let took = start.elapsed().as_secs_f64();
    let dom = String::from_utf8_lossy(&out.stdout);
    let ready = dom
        .split("data-ready=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("never");
    println!(
        "chromium: opened and dumped in {took:.1} s; the page's script done {ready} ms after \
         navigation; script errors: {}",
        dom.contains("data-js-error=\"")
    );
}
