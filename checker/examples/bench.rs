//! Checker throughput on generated histories: time, ops/s and peak memory (VmHWM), as a table,
//! and how check time grows from 1M to 10M register ops (the target: at most 11x).
//!
//! `cargo run --release -p slotcheck-checker --example bench` runs the standard table (register
//! 1M and 10M ops over 1000 keys, 50 clients, 1% info; list-append 1M). Every history is first
//! generated into the system's temp dir; then `RUNS` rounds each check every history once, each
//! check in a child process so that its peak memory is its own; the histories are removed at the
//! end. Interleaving the rounds exposes the cases alike to the load of a shared machine, and the
//! growth ratio is computed within each round as well as from the minimum and median times, in
//! this one run, never against numbers from another day. One case (generated, checked `RUNS`
//! times): `... --example bench -- <model> <ops> [keys] [clients] [info] [seed] [stream|history]`.
//! To keep a history for profiling: `... -- gen <model> <ops> [keys ...] <path>` (`-`: standard
//! output), then `... -- check <model> <path> [stream|history]` checks it once (`-`: standard
//! input). No assertions: numbers.
//!
//! `... -- sizes [10000,100000,...] [one,old,stream,history]` is the per-size table of issue 20:
//! register histories of 10k, 100k, 1M, 2M and 10M ops (1000 keys, 50 clients, 1% info), on
//! both sides of the old 256 MiB threshold, each checked once by each path named (by default
//! `one` at every size and `old` at 1M), printing wall and CPU time per op and peak memory
//! (VmHWM) per op, raw and above the peak of checking an empty history (the process's own
//! floor). The paths: `one` is `check_file_analyzed`, what `slotcheck check` runs on a
//! register-family history at every size (the streaming check and the redirect-aware analysis
//! of the reduced history it keeps); `old` is what it ran below 256 MiB before (`check_file`,
//! then the whole `History` read again for `analyze_redirects`); `stream` is `check_file` alone
//! (no analysis); `history` is the in-memory check (`History` then `check`, no analysis). Histories up to 2M ops are written to
//! the temp dir first; larger ones are piped from a generator process straight into the check
//! (a 10M-op history is 1.7 GB of text), so their wall time includes waiting on the generator
//! and the CPU time is the figure to read. The in-memory path (`History` then `check`) is shown
//! at 1M ops for comparison.

use checker::gen::{write_history, GenConfig};
use checker::{
    analyze_redirects, check, check_file, check_file_analyzed, CheckOptions, History, ModelKind,
};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Checks per case; the table reports their minimum and median.
const RUNS: usize = 3;

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user and system, all threads) this process has used, from `/proc/self/stat`
/// (in USER_HZ, 100 per second on Linux).
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// The child: checks the file at `path` once and prints
/// `RESULT check_s hwm_mib verdict steps cpu_s`.
fn check_once(model: ModelKind, path: &Path, path_kind: &str) {
    let (start, cpu_start) = (Instant::now(), cpu_s());
    let opts = CheckOptions::default();
    let report = match path_kind {
        "history" => check(&History::read_file(path).unwrap(), model, &opts).unwrap(),
        // A pipe is read once: the analysis runs if no key needs its ops read again.
        "one" if path.as_os_str() == "-" => {
            let stdin = checker::Source::open(path).unwrap();
            checker::check_source_analyzed(stdin, model, &opts)
                .unwrap()
                .0
        }
        "one" => check_file_analyzed(path, model, &opts).unwrap(),
        "old" => {
            let mut report = check_file(path, model, &opts).unwrap();
            let history = History::read_file(path).unwrap();
            analyze_redirects(&history, model, &opts, &mut report).unwrap();
            report
        }
        _ => check_file(path, model, &opts).unwrap(),
    };
    let check_s = start.elapsed().as_secs_f64();
    let steps: u64 = report.keys.iter().map(|k| k.steps).sum();
    println!(
        "RESULT\t{check_s:.3}\t{:.1}\t{}\t{steps}\t{:.2}",
        vm_hwm_kib() as f64 / 1024.0,
        report.valid,
        cpu_s() - cpu_start
    );
}

/// One generated history and its checks: a row of the table.
struct Case {
    cfg: GenConfig,
    path_kind: String,
    path: PathBuf,
    mb: f64,
    gen_s: f64,
    /// Check times of every run, in run order.
    check_s: Vec<f64>,
    /// CPU seconds of every run (all threads, user and system), in run order.
    cpu_s: Vec<f64>,
    hwm_mib: u64,
    verdict: String,
}

/// The generator's settings from `<model> <ops> [keys] [clients] [info] [seed]`.
fn config(args: &[String]) -> GenConfig {
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    GenConfig {
        model: args[0].parse().expect("model"),
        ops: args[1].parse().expect("ops"),
        keys: arg(2, "1000").parse().unwrap(),
        clients: arg(3, "50").parse().unwrap(),
        info_fraction: arg(4, "0.01").parse().unwrap(),
        seed: arg(5, "1").parse().unwrap(),
    }
}

impl Case {
    /// Generates the history `args` describes: `<model> <ops> [keys] [clients] [info] [seed]
    /// [stream|history]`.
    fn generate(args: &[String]) -> Case {
        let cfg = config(args);
        let path = std::env::temp_dir().join(format!(
            "slotcheck-bench-{}-{}-{}.jsonl",
            cfg.model,
            cfg.ops,
            std::process::id()
        ));
        let gen_s = write(&cfg, &path);
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Case {
            cfg,
            path_kind: args.get(6).cloned().unwrap_or_else(|| "stream".into()),
            path,
            mb: bytes as f64 / 1e6,
            gen_s,
            check_s: Vec::new(),
            cpu_s: Vec::new(),
            hwm_mib: 0,
            verdict: "-".into(),
        }
    }

    /// Checks the history once, in a child process; returns the check time.
    fn run(&mut self) -> Option<f64> {
        let out = Command::new(std::env::current_exe().unwrap())
            .arg("check")
            .arg(self.cfg.model.name())
            .arg(&self.path)
            .arg(&self.path_kind)
            .output()
            .expect("run a check");
        let text = String::from_utf8_lossy(&out.stdout);
        let Some(line) = text.lines().find(|l| l.starts_with("RESULT")) else {
            eprintln!(
                "{} {} failed: {}",
                self.cfg.model,
                self.cfg.ops,
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        };
        let c: Vec<&str> = line.split('\t').collect();
        let t = c[1].parse().unwrap_or(f64::NAN);
        self.check_s.push(t);
        self.cpu_s
            .push(c.get(5).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN));
        self.hwm_mib = self
            .hwm_mib
            .max(c[2].parse::<f64>().map_or(0, |m| m as u64));
        self.verdict = c[3].to_string();
        Some(t)
    }

    fn min(&self) -> f64 {
        sorted(&self.check_s).first().copied().unwrap_or(f64::NAN)
    }

    fn median(&self) -> f64 {
        median(&self.check_s)
    }

    fn print(&self) {
        println!(
            "{:<12} {:<7} {:>9} {:>5} {:>7} {:>7.0} {:>6.2} {:>8.2} {:>8.2} {:>9.0} {:>7.2} {:>9} {:>7}",
            self.cfg.model.name(),
            self.path_kind,
            self.cfg.ops,
            self.cfg.keys,
            self.cfg.clients,
            self.mb,
            self.gen_s,
            self.min(),
            self.median(),
            self.cfg.ops as f64 / self.median(),
            median(&self.cpu_s),
            self.hwm_mib,
            self.verdict
        );
    }
}

fn sorted(times: &[f64]) -> Vec<f64> {
    let mut t = times.to_vec();
    t.sort_by(f64::total_cmp);
    t
}

fn median(times: &[f64]) -> f64 {
    let t = sorted(times);
    t.get(t.len() / 2).copied().unwrap_or(f64::NAN)
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes the history of `cfg` to `path`; returns the seconds it took.
fn write(cfg: &GenConfig, path: &Path) -> f64 {
    let start = Instant::now();
    if path.as_os_str() == "-" {
        let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        write_history(cfg, &mut out).unwrap();
        out.flush().unwrap();
        return start.elapsed().as_secs_f64();
    }
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    write_history(cfg, &mut out).unwrap();
    out.flush().unwrap();
    start.elapsed().as_secs_f64()
}

fn print_header() {
    println!(
        "{:<12} {:<7} {:>9} {:>5} {:>7} {:>7} {:>6} {:>8} {:>8} {:>9} {:>7} {:>9} {:>7}",
        "model",
        "path",
        "ops",
        "keys",
        "clients",
        "MB",
        "gen s",
        "min s",
        "median s",
        "ops/s",
        "cpu s",
        "peak MiB",
        "verdict"
    );
}

/// Sizes of the `sizes` table.
const SIZES: [u64; 5] = [10_000, 100_000, 1_000_000, 2_000_000, 10_000_000];
/// Above this many ops the `sizes` table pipes the history instead of writing it to a file.
const PIPE_OPS_MIN: u64 = 5_000_000;

/// One check of the `sizes` table: (wall s, peak MiB, verdict, CPU s).
fn check_child(cfg: &GenConfig, path_kind: &str) -> Option<(f64, f64, String, f64)> {
    let exe = std::env::current_exe().unwrap();
    let gen_args = |path: &str| {
        let mut a = vec![
            "gen".to_string(),
            cfg.model.name().to_string(),
            cfg.ops.to_string(),
        ];
        a.extend([cfg.keys.to_string(), cfg.clients.to_string()]);
        a.extend([
            cfg.info_fraction.to_string(),
            cfg.seed.to_string(),
            path.to_string(),
        ]);
        a
    };
    let check = |path: &str, stdin: std::process::Stdio| {
        Command::new(&exe)
            .args(["check", cfg.model.name(), path, path_kind])
            .stdin(stdin)
            .output()
            .expect("run a check")
    };
    let out = if cfg.ops >= PIPE_OPS_MIN {
        let mut gen = Command::new(&exe)
            .args(gen_args("-"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run the generator");
        let out = check("-", gen.stdout.take().unwrap().into());
        gen.wait().expect("the generator");
        out
    } else {
        let path =
            std::env::temp_dir().join(format!("slotcheck-sizes-{}.jsonl", std::process::id()));
        let path = path.to_string_lossy().to_string();
        Command::new(&exe)
            .args(gen_args(&path))
            .status()
            .expect("generate");
        let out = check(&path, std::process::Stdio::null());
        let _ = std::fs::remove_file(&path);
        out
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(line) = text.lines().find(|l| l.starts_with("RESULT")) else {
        eprintln!(
            "{} failed: {}",
            cfg.ops,
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    };
    let c: Vec<&str> = line.split('\t').collect();
    Some((
        c[1].parse().ok()?,
        c[2].parse().ok()?,
        c[3].to_string(),
        c[5].parse().ok()?,
    ))
}

/// The `sizes` table (see the module doc).
fn sizes(list: Option<&String>, kinds: Option<&String>) {
    let sizes: Vec<u64> = match list {
        Some(l) => l.split(',').map(|s| s.parse().expect("a size")).collect(),
        None => SIZES.to_vec(),
    };
    let kinds: Vec<&str> = kinds.map_or(vec!["one"], |k| k.split(',').collect());
    let cfg = |ops| GenConfig::register(1000, 50, ops, 1);
    let floor = check_child(&cfg(0), "stream").map_or(0.0, |r| r.1);
    println!("floor: checking an empty history peaks at {floor:.1} MiB");
    println!(
        "{:>9} {:<7} {:>8} {:>8} {:>10} {:>10} {:>9} {:>10} {:>12} {:>7}",
        "ops",
        "path",
        "wall s",
        "cpu s",
        "wall µs/op",
        "cpu µs/op",
        "peak MiB",
        "bytes/op",
        "above floor",
        "verdict"
    );
    let mut rows: Vec<(u64, &str)> = kinds
        .iter()
        .flat_map(|&k| sizes.iter().map(move |&n| (n, k)))
        .collect();
    if sizes.contains(&1_000_000) && kinds.len() == 1 {
        rows.push((1_000_000, "old"));
    }
    for (ops, kind) in rows {
        let Some((wall, peak_mib, verdict, cpu)) = check_child(&cfg(ops), kind) else {
            continue;
        };
        let per = |x: f64| x * 1e6 / ops as f64;
        let bytes = |mib: f64| mib * 1048576.0 / ops as f64;
        println!(
            "{ops:>9} {kind:<7} {wall:>8.2} {cpu:>8.2} {:>10.3} {:>10.3} {peak_mib:>9.0} {:>10.0} {:>12.0} {verdict:>7}",
            per(wall),
            per(cpu),
            bytes(peak_mib),
            bytes(peak_mib - floor)
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("sizes") => {
            sizes(args.get(1), args.get(2));
            return;
        }
        Some("check") => {
            let model: ModelKind = args[1].parse().expect("model");
            let kind = args.get(3).map_or("stream", String::as_str);
            check_once(model, Path::new(&args[2]), kind);
            return;
        }
        Some("gen") => {
            let (path, rest) = args[1..]
                .split_last()
                .expect("gen <model> <ops> ... <path>");
            write(&config(rest), Path::new(path));
            return;
        }
        _ => {}
    }
    let table: Vec<Vec<String>> = if args.is_empty() {
        [
            ["register", "1000000"],
            ["register", "10000000"],
            ["list-append", "1000000"],
        ]
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect()
    } else {
        vec![args]
    };
    let mut cases: Vec<Case> = table.iter().map(|args| Case::generate(args)).collect();
    for round in 1..=RUNS {
        let times: Vec<String> = cases
            .iter_mut()
            .map(|c| {
                let t = c.run();
                let t = t.map_or("failed".into(), |t| format!("{t:.2} s"));
                format!("{} {}: {t}", c.cfg.model, c.cfg.ops)
            })
            .collect();
        let ratio = match &cases[..] {
            [one, ten, ..] if one.check_s.len() == round && ten.check_s.len() == round => {
                format!(
                    "; 10M/1M {:.2}x",
                    ten.check_s[round - 1] / one.check_s[round - 1]
                )
            }
            _ => String::new(),
        };
        println!("round {round}/{RUNS}: {}{ratio}", times.join(", "));
    }
    print_header();
    for case in &cases {
        case.print();
    }
    if table.len() > 1 {
        let (one, ten) = (&cases[0], &cases[1]);
        let per_round: Vec<f64> = ten
            .check_s
            .iter()
            .zip(&one.check_s)
            .map(|(t, o)| t / o)
            .collect();
        println!(
            "register 10M / 1M check time: {:.2}x by median, {:.2}x by min, {:.2}x median of the \
             rounds' ratios; CPU time {:.2}x by median (targets: <= 11x; 10M < 60 s with peak \
             < 4096 MiB)",
            ten.median() / one.median(),
            ten.min() / one.min(),
            median(&per_round),
            median(&ten.cpu_s) / median(&one.cpu_s)
        );
    }
}
