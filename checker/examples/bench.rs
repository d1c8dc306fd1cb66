//! Checker throughput on generated histories: time, ops/s and peak memory (VmHWM), as a table.
//!
//! `cargo run --release -p slotcheck-checker --example bench` runs the standard table (register
//! 1M and 10M ops over 1000 keys, 50 clients, 1% info; list-append 1M), each case in a child
//! process so that its peak memory is its own. One case:
//! `... --example bench -- <model> <ops> [keys] [clients] [info] [seed] [stream|history]`.
//! Histories are written to the system's temp dir and removed afterwards. No assertions: numbers.

use checker::gen::{write_history, GenConfig};
use checker::{check, check_file, CheckOptions, History, ModelKind};
use std::io::{BufWriter, Write};
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

fn one(args: &[String]) {
    let model: ModelKind = args[0].parse().expect("model");
    let ops: u64 = args[1].parse().expect("ops");
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let cfg = GenConfig {
        model,
        keys: arg(2, "1000").parse().unwrap(),
        clients: arg(3, "50").parse().unwrap(),
        ops,
        info_fraction: arg(4, "0.01").parse().unwrap(),
        seed: arg(5, "1").parse().unwrap(),
    };
    let path_kind = arg(6, "stream");
    let path = std::env::temp_dir().join(format!(
        "slotcheck-bench-{}-{}-{}.jsonl",
        model,
        ops,
        std::process::id()
    ));
    let start = Instant::now();
    {
        let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
        write_history(&cfg, &mut out).unwrap();
        out.flush().unwrap();
    }
    let gen_s = start.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let start = Instant::now();
    let report = if path_kind == "history" {
        let history = History::read_file(&path).unwrap();
        check(&history, model, &CheckOptions::default()).unwrap()
    } else {
        check_file(&path, model, &CheckOptions::default()).unwrap()
    };
    let check_s = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    let steps: u64 = report.keys.iter().map(|k| k.steps).sum();
    println!(
        "RESULT\t{model}\t{path_kind}\t{ops}\t{}\t{}\t{:.0}\t{:.2}\t{:.2}\t{:.0}\t{}\t{}\t{steps}",
        cfg.keys,
        cfg.clients,
        bytes as f64 / 1e6,
        gen_s,
        check_s,
        ops as f64 / check_s,
        vm_hwm_kib() / 1024,
        report.valid,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        one(&args);
        return;
    }
    let cases: [&[&str]; 3] = [
        &["register", "1000000"],
        &["register", "10000000"],
        &["list-append", "1000000"],
    ];
    println!(
        "{:<12} {:<7} {:>9} {:>5} {:>7} {:>7} {:>7} {:>8} {:>11} {:>8} {:>7}",
        "model",
        "path",
        "ops",
        "keys",
        "clients",
        "MB",
        "gen s",
        "check s",
        "ops/s",
        "VmHWM MiB",
        "verdict"
    );
    let mut times = Vec::new();
    for case in cases {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(case.iter())
            .output()
            .expect("run a case");
        let text = String::from_utf8_lossy(&out.stdout);
        let Some(line) = text.lines().find(|l| l.starts_with("RESULT")) else {
            eprintln!("{case:?} failed: {}", String::from_utf8_lossy(&out.stderr));
            continue;
        };
        let c: Vec<&str> = line.split('\t').collect();
        println!(
            "{:<12} {:<7} {:>9} {:>5} {:>7} {:>7} {:>7} {:>8} {:>11} {:>8} {:>7}",
            c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11]
        );
        times.push((
            c[1].to_string(),
            c[3].to_string(),
            c[8].parse::<f64>().unwrap_or(0.0),
        ));
    }
    if let [(_, _, t1), (_, _, t10), ..] = &times[..] {
        println!("register 10M / 1M check time: {:.2}x", t10 / t1);
    }
}
