//! Peak memory and time of a register check held in memory vs bounded by spilling, on the same
//! generated history, as a table and as ratios.
//!
//! `cargo run --release -p slotcheck-checker --example bounded -- [ops] [keys] [budget_mib]
//! [rounds] [path]` generates a register history (default 10M ops over 1000 keys, 50 clients, 1%
//! info, seed 1) into `path` (default: the system's temp dir; removed at the end), then in each of
//! `rounds` rounds (default 2) checks it once unbounded (every compact op held in memory) and once
//! bounded by `budget_mib` MiB (default: the library's `HELD_BYTES_MAX`), each check in a child
//! process so that its peak memory (VmHWM) is its own. The two paths alternate within a round, so
//! that both meet the same page cache and machine load; ratios are bounded over unbounded, from
//! the medians. Verdicts must agree. `... -- check <path> <budget_bytes>` checks once. No
//! assertions: numbers.

use checker::gen::{write_history, GenConfig};
use checker::{check_file_bounded, CheckOptions, ModelKind, HELD_BYTES_MAX};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The child: checks `path` once holding at most `budget` bytes of ops; prints
/// `RESULT seconds peak_mib verdict keys`.
fn check_once(path: &Path, budget: usize) {
    let start = Instant::now();
    let opts = CheckOptions::default();
    let report = check_file_bounded(path, ModelKind::Register, &opts, budget).unwrap();
    println!(
        "RESULT\t{:.3}\t{}\t{}\t{}",
        start.elapsed().as_secs_f64(),
        vm_hwm_kib() / 1024,
        report.valid,
        report.keys.len()
    );
}

/// One check in a child process: seconds, peak MiB, verdict.
fn run(path: &Path, budget: usize) -> (f64, u64, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("check")
        .arg(path)
        .arg(budget.to_string())
        .output()
        .expect("run a check");
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(line) = text.lines().find(|l| l.starts_with("RESULT")) else {
        panic!("check failed: {}", String::from_utf8_lossy(&out.stderr));
    };
    let c: Vec<&str> = line.split('\t').collect();
    let verdict = format!("{} ({} keys)", c[3], c[4]);
    (c[1].parse().unwrap(), c[2].parse().unwrap(), verdict)
}

fn median<T: Copy + PartialOrd>(values: &[T]) -> T {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Removes the generated history when done, however the run ends.
struct Generated(PathBuf);

impl Drop for Generated {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("check") {
        check_once(Path::new(&args[1]), args[2].parse().expect("budget bytes"));
        return;
    }
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let cfg = GenConfig {
        model: ModelKind::Register,
        ops: arg(0, "10000000").parse().expect("ops"),
        keys: arg(1, "1000").parse().expect("keys"),
        clients: 50,
        info_fraction: 0.01,
        seed: 1,
    };
    let budget = args.get(2).map_or(HELD_BYTES_MAX, |m| {
        m.parse::<usize>().expect("budget MiB") << 20
    });
    let rounds: usize = arg(3, "2").parse().expect("rounds");
    let path = args.get(4).map_or_else(
        || std::env::temp_dir().join(format!("slotcheck-bounded-{}.jsonl", std::process::id())),
        PathBuf::from,
    );
    let generated = Generated(path);
    let start = Instant::now();
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&generated.0).unwrap());
    write_history(&cfg, &mut out).unwrap();
    out.flush().unwrap();
    drop(out);
    let mb = std::fs::metadata(&generated.0).map_or(0, |m| m.len()) as f64 / 1e6;
    println!(
        "register, {} ops, {} keys, {mb:.0} MB, generated in {:.1} s; budget {} MiB",
        cfg.ops,
        cfg.keys,
        start.elapsed().as_secs_f64(),
        budget >> 20
    );
    let paths = [("unbounded", usize::MAX), ("bounded", budget)];
    let mut results: Vec<Vec<(f64, u64, String)>> = vec![Vec::new(); paths.len()];
    for round in 1..=rounds {
        for (i, &(name, bytes)) in paths.iter().enumerate() {
            let r = run(&generated.0, bytes);
            println!(
                "round {round}/{rounds} {name}: {:.2} s, {} MiB, {}",
                r.0, r.1, r.2
            );
            results[i].push(r);
        }
    }
    println!(
        "{:<10} {:>9} {:>5} {:>7} {:>9} {:>9}  verdict",
        "path", "ops", "keys", "MB", "median s", "peak MiB"
    );
    let mut medians = Vec::new();
    for ((name, _), runs) in paths.iter().zip(&results) {
        let s = median(&runs.iter().map(|r| r.0).collect::<Vec<_>>());
        let mib = runs.iter().map(|r| r.1).max().unwrap_or(0);
        println!(
            "{name:<10} {:>9} {:>5} {mb:>7.0} {s:>9.2} {mib:>9}  {}",
            cfg.ops, cfg.keys, runs[0].2
        );
        medians.push((s, mib as f64));
    }
    let agree = results.iter().flatten().all(|r| r.2 == results[0][0].2);
    println!(
        "bounded / unbounded: time {:.2}x, peak memory {:.2}x; verdicts {}",
        medians[1].0 / medians[0].0,
        medians[1].1 / medians[0].1,
        if agree { "agree" } else { "DIFFER" }
    );
}
