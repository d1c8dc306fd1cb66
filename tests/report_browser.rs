//! The run store and its report, end to end: a short real run with migrations and kills, its
//! `report.html` opened in headless Chromium (Debian's `chromium`, installed by
//! `scripts/setup.sh`), `slotcheck report` rebuilding the same bytes, an injected anomaly shown
//! with its explanation and slot phase, and the EDN export read back to the same verdict.
//!
//! The run is shared by the tests of this file and kept under `CARGO_TARGET_TMPDIR`, with the
//! screenshot (`report-browser/report.png`), as test artifacts.

use checker::{check, CheckOptions, Format, History, ModelKind, Validity};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use support::slotcheck;

mod support;

/// Longest a Chromium invocation may take (a report must open in well under 10 s).
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-browser")
}

/// The shared run: `slotcheck test` on Valkey, 8 s of migrations and kills, and its stdout.
fn run() -> &'static (PathBuf, i32, String) {
    static RUN: OnceLock<(PathBuf, i32, String)> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = artifacts().join("run");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(artifacts()).unwrap();
        let out = slotcheck()
            .args([
                "test",
                "--server",
                "valkey",
                "--masters",
                "3",
                "--clients",
                "10",
                "--keys",
                "20",
                "--duration",
                "8s",
                "--migrate-interval",
                "1200ms",
                "--nemesis",
                "migrate,kill",
                "--nemesis-interval",
                "2s",
                "--fault-hold",
                "1500ms",
                "--seed",
                "7",
                "--output",
            ])
            .arg(&dir)
            .output()
            .expect("run slotcheck test");
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let code = out.status.code().unwrap_or(-1);
        assert!(code == 0 || code == 1, "the run gives a verdict: {stdout}");
        (dir, code, stdout)
    })
}

/// `chromium` (or `$SLOTCHECK_CHROMIUM`); `scripts/setup.sh` installs Debian's package.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("SLOTCHECK_CHROMIUM") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
        .expect("chromium not found on PATH: run scripts/setup.sh (Debian package `chromium`)")
}

/// Runs headless Chromium on `page` with `args`, in a fresh profile, killed after
/// [`CHROMIUM_TIMEOUT`]; returns its output and how long it took.
fn chromium_on(page: &Path, args: &[String]) -> (Output, Duration) {
    let profile = tempfile::tempdir().unwrap();
    // Files, not pipes: a page's DOM is larger than a pipe holds while nobody reads it.
    let stdout = profile.path().join("stdout");
    let stderr = profile.path().join("stderr");
    let start = Instant::now();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .stdout(Stdio::from(std::fs::File::create(&stdout).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()))
        .spawn()
        .expect("start chromium");
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > CHROMIUM_TIMEOUT {
            let _ = child.kill();
            panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = Output {
        status: child.wait().unwrap(),
        stdout: std::fs::read(&stdout).unwrap(),
        stderr: std::fs::read(&stderr).unwrap(),
    };
    (output, start.elapsed())
}

#[test]
fn a_real_runs_report_opens_in_chromium_with_both_lanes() {
    let (dir, _, stdout) = run();
    for file in ["history.jsonl", "results.json", "report.html", "run.log"] {
        assert!(dir.join(file).is_file(), "the run directory holds {file}");
    }
    let node_logs = std::fs::read_dir(dir.join("cluster"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(node_logs, 3, "one directory (data and log) per node");
    let report = dir.join("report.html");
    assert!(
        stdout.contains(&format!("report: {}", report.display())),
        "the summary names the report: {stdout}"
    );
    support::assert_no_server_left(&dir.join("history.jsonl"));

    let logging = ["--enable-logging=stderr".to_string(), "--v=0".to_string()];
    let (out, took) = chromium_on(
        &report,
        &[logging.to_vec(), vec!["--dump-dom".into()]].concat(),
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {log}");
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(
        !dom.contains("data-js-error=\""),
        "a script error was caught"
    );
    let ready = dom
        .split("data-ready=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the page's script ran to its end");
    assert!(
        dom.contains("class=\"lane client\" id=\"lane-c0\""),
        "a client lane"
    );
    let nemesis = dom
        .split("class=\"lane nemesis\" id=\"lane-m0\"")
        .nth(1)
        .expect("a nemesis lane for migrations");
    let lane = nemesis.split("</g>").next().unwrap();
    assert!(
        lane.contains("ph-migrating"),
        "a migration's migrating phase: {lane}"
    );
    assert!(
        dom.contains("class=\"fault fault-kill\""),
        "a kill in a nemesis lane"
    );
    assert!(dom.contains("data-i=\"0\""), "ops in the client lanes");
    assert!(dom.contains("id=\"throughput\"") && dom.contains("id=\"redirects\""));
    println!("report.html opened in {took:?} (script done {ready} ms after navigation)");
    hover_and_zoom(&report);

    let shot = artifacts().join("report.png");
    let _ = std::fs::remove_file(&shot);
    let args = [
        format!("--screenshot={}", shot.display()),
        "--window-size=1400,1600".to_string(),
    ];
    let (out, _) = chromium_on(&report, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a real screenshot"
    );
    println!("screenshot: {}", shot.display());
}

/// What a user's pointer does, scripted: hover an op and a nemesis bar, then zoom in; the
/// tooltips' texts and the view's transform are read back from the DOM.
const POINTER: &str = r#"<script>(function () {
  var root = document.documentElement, svg = document.getElementById("tl-svg");
  function hover(selector, name) {
    var r = svg.querySelector(selector), b = r.getBoundingClientRect();
    r.dispatchEvent(new MouseEvent("mousemove", { bubbles: true, clientX: b.left + 1, clientY: b.top + 1 }));
    root.setAttribute(name, document.getElementById("tl-tip").textContent);
  }
  hover("rect[data-i]", "data-tip-op");
  hover("rect[data-n]", "data-tip-nemesis");
  document.getElementById("tl-in").click();
  root.setAttribute("data-zoomed", document.getElementById("tl-view").getAttribute("transform"));
})();</script>"#;

/// Hovers an op and a nemesis bar of `report` and zooms in, in Chromium.
fn hover_and_zoom(report: &Path) {
    let html = std::fs::read_to_string(report).unwrap();
    let page = artifacts().join("hover.html");
    std::fs::write(&page, html.replace("</body>", &format!("{POINTER}</body>"))).unwrap();
    let (out, _) = chromium_on(&page, &["--dump-dom".to_string()]);
    let dom = String::from_utf8_lossy(&out.stdout);
    let attr = |name: &str| {
        let start = format!("{name}=\"");
        dom.split(&start)
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(str::to_string)
    };
    let op = attr("data-tip-op").expect("hovering an op shows its tooltip");
    for part in [
        "process ",
        "node 127.0.0.1:",
        "slot ",
        "invoke: {",
        "complete: {",
    ] {
        assert!(op.contains(part), "the op's tooltip shows {part:?}: {op}");
    }
    let nemesis = attr("data-tip-nemesis").expect("hovering a nemesis bar shows its tooltip");
    assert!(nemesis.contains("migration of slot"), "{nemesis}");
    let zoomed = attr("data-zoomed").unwrap();
    let before = html.split("id=\"tl-view\" transform=\"").nth(1).unwrap();
    assert!(
        !before.starts_with(&zoomed),
        "zoom in changes the view: {zoomed}"
    );
}

/// Copies the run's history, results, report and verify findings to `name`, for a test that
/// rewrites them.
fn copy_run(name: &str) -> PathBuf {
    let (dir, _, _) = run();
    let copy = artifacts().join(name);
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(&copy).unwrap();
    for file in [
        "history.jsonl",
        "results.json",
        "report.html",
        "verify.json",
    ] {
        std::fs::copy(dir.join(file), copy.join(file)).unwrap();
    }
    copy
}

#[test]
fn slotcheck_report_rebuilds_the_same_bytes() {
    let (_, code, _) = run();
    let copy = copy_run("regenerated");
    let before: Vec<Vec<u8>> = ["report.html", "results.json"]
        .iter()
        .map(|f| std::fs::read(copy.join(f)).unwrap())
        .collect();
    std::fs::remove_file(copy.join("report.html")).unwrap();
    let out = slotcheck().arg("report").arg(&copy).output().unwrap();
    assert_eq!(out.status.code(), Some(*code), "the same verdict");
    let after: Vec<Vec<u8>> = ["report.html", "results.json"]
        .iter()
        .map(|f| std::fs::read(copy.join(f)).unwrap())
        .collect();
    assert!(
        before[0] == after[0],
        "report.html differs after `slotcheck report`"
    );
    assert!(
        before[1] == after[1],
        "results.json differs after `slotcheck report`"
    );
}

/// The run's `ok` reads invoked while their slot was being migrated by a migration that ended
/// (between its `migrate-start` and `migrate-end` lines), as (invocation index, completion
/// index, process, slot).
fn reads_during_migrations(lines: &[Value]) -> Vec<(usize, usize, u64, u64)> {
    let mut open: std::collections::HashMap<u64, usize> = Default::default();
    let mut windows: Vec<(u64, usize, usize)> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(slot) = l["value"]["slot"]
            .as_u64()
            .filter(|_| l["process"] == "nemesis")
        else {
            continue;
        };
        match l["f"].as_str() {
            Some("migrate-start") => drop(open.insert(slot, i)),
            Some("migrate-end") => windows.extend(open.remove(&slot).map(|s| (slot, s, i))),
            _ => {}
        }
    }
    let mut invoked: std::collections::HashMap<u64, Option<usize>> = Default::default();
    let mut found = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let (Some(p), Some("read")) = (l["process"].as_u64(), l["f"].as_str()) else {
            continue;
        };
        if l["type"] == "invoke" {
            let key = l["key"].as_str().unwrap_or("");
            let slot = u64::from(checker::key_slot(key.as_bytes()));
            let during = windows.iter().any(|&(s, a, b)| s == slot && a < i && i < b);
            invoked.insert(p, during.then_some(i));
        } else if let Some(Some(invoke)) = invoked.remove(&p).filter(|_| l["type"] == "ok") {
            found.push((invoke, i, p, l["slot"].as_u64().unwrap_or(0)));
        }
    }
    found
}

#[test]
fn an_injected_anomaly_shows_its_explanation_and_slot_phase() {
    let copy = copy_run("injected");
    let text = std::fs::read_to_string(copy.join("history.jsonl")).unwrap();
    let mut lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reads = reads_during_migrations(&lines);
    let &(invoke, at, process, slot) = reads.first().expect("a read during a migration");
    // A phantom: the read returns a value nothing wrote, on a key of its own in the same slot
    // (a hash tag), so that no other anomaly of the run explains that key first.
    let key = format!("{{{}}}phantom", lines[at]["key"].as_str().unwrap());
    for i in [invoke, at] {
        lines[i]["key"] = Value::from(key.as_str());
    }
    lines[at]["value"] = Value::from(987_654_321);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(copy.join("history.jsonl"), text).unwrap();
    let out = slotcheck().arg("report").arg(&copy).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let html = std::fs::read_to_string(copy.join("report.html")).unwrap();
    assert!(html.contains(&format!("key &quot;{key}&quot; is not linearizable.")));
    let read = format!("process {process} read -&gt; 987654321");
    assert!(html.contains(&read), "the proof names the phantom read");
    // The context names the read's slot and the migration phase it was in.
    let context = format!("(process {process} read): slot {slot} ");
    let after = html
        .split(&context)
        .nth(1)
        .expect("the read's slot and phase");
    let phase = after.split(' ').next().unwrap();
    assert!(
        ["starting", "importing", "migrating", "finalizing"].contains(&phase),
        "the read ran while slot {slot} was being migrated, not {phase:?}"
    );
}

/// Per-key verdicts of `history` with slotcheck's register semantics.
fn verdicts(history: &History) -> Vec<(String, Validity)> {
    let report = check(history, ModelKind::Register, &CheckOptions::default()).unwrap();
    report
        .keys
        .iter()
        .map(|k| (k.key.clone(), k.valid))
        .collect()
}

#[test]
fn the_edn_export_parses_and_round_trips_to_the_same_verdict() {
    let (dir, _, _) = run();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("histories");
    let cases = [
        dir.join("history.jsonl"),
        fixtures.join("register-stale-read-bad.jsonl"),
        fixtures.join("register-lost-write-bad.jsonl"),
        fixtures.join("register-ok.jsonl"),
    ];
    for (n, jsonl) in cases.iter().enumerate() {
        let edn = artifacts().join(format!("export-{n}.edn"));
        let out = slotcheck()
            .args(["export", "--edn"])
            .arg(jsonl)
            .arg("-o")
            .arg(&edn)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&edn).unwrap();
        let original = History::read_file(jsonl).unwrap();
        let mut reader = checker::edn::Reader::new(&text);
        let mut ops = 0;
        while let Some((_, op)) = reader.next_value().expect("valid EDN") {
            for field in ["process", "type", "f", "value", "time", "index"] {
                assert!(
                    op.get(field).is_some(),
                    "{}: op {ops} lacks :{field}",
                    edn.display()
                );
            }
            if op["process"] != "nemesis" && original.events[ops].key.is_some() {
                // `[key value]` tuples when every client op has a key, else `:key` beside the
                // value (a history with multi-key `txn` ops).
                let key = Value::from(original.events[ops].key.clone());
                let carried = op.get("key").unwrap_or(&op["value"][0]);
                assert_eq!(carried, &key);
            }
            ops += 1;
        }
        assert_eq!(ops, original.events.len(), "one op map per event");
        let imported = checker::import::read_file(&edn, None).unwrap();
        assert_eq!(
            imported.format,
            Format::JepsenEdn,
            "detected as Jepsen's EDN"
        );
        assert_eq!(
            verdicts(&imported.history),
            verdicts(&original),
            "{}",
            jsonl.display()
        );
    }
    // With Jepsen's own semantics (a nil read reads nothing), a stale read is still invalid.
    let imported = checker::import::read_file(&artifacts().join("export-1.edn"), None).unwrap();
    let model = imported.model().unwrap();
    let report = check(&imported.history, model, &imported.options()).unwrap();
    assert_eq!(report.valid, Validity::Invalid);
}
