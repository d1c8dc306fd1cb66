//! `slotcheck check` on hostile input, as a user meets it: histories piped in (`-`,
//! `/dev/stdin`, a FIFO), cut inside a character, huge values and lines, malformed values and
//! empty files. Each test runs the built binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("histories")
        .join(name)
}

/// Runs `slotcheck check ARGS...` with `stdin` written to its standard input; returns (exit
/// code, stdout, stderr). Fails the test if the run takes more than a minute (a hang).
fn check_with_stdin(args: &[&dyn AsRef<std::ffi::OsStr>], stdin: &[u8]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slotcheck"));
    cmd.arg("check");
    for a in args {
        cmd.arg(a);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run slotcheck");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The checker may stop reading early (an error); a broken pipe is then expected.
        let _ = pipe.write_all(&input);
    });
    let output = wait(child, Duration::from_secs(60));
    writer.join().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    (output.status.code().unwrap_or(-1), out, err)
}

/// Runs `slotcheck check ARGS...` with nothing on its standard input.
fn check(args: &[&dyn AsRef<std::ffi::OsStr>]) -> (i32, String, String) {
    check_with_stdin(args, b"")
}

/// Waits for `child` at most `limit`, killing it and failing the test past that.
fn wait(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("slotcheck check hung for {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The report without its lines that name the input.
fn verdict(out: &str) -> String {
    out.lines().next().unwrap_or("").to_string()
}

#[test]
fn a_piped_history_is_checked_as_the_file_is() {
    let bad = fixture("register-lost-write-bad.jsonl");
    let text = std::fs::read(&bad).unwrap();
    let (file_code, file_out, _) = check(&[&bad]);
    assert_eq!(file_code, 1, "{file_out}");
    for arg in ["-", "/dev/stdin"] {
        let (code, out, err) = check_with_stdin(&[&arg], &text);
        assert_eq!(code, 1, "{arg}: {out}{err}");
        assert_eq!(out, file_out, "{arg}: the same report");
    }

    // A Knossos file, and a history larger than any read-ahead buffer.
    let knossos = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpora/knossos/data/cas-register/bad/rethink-fail.edn");
    if knossos.exists() {
        let (code, out, _) = check(&[&knossos]);
        let piped = check_with_stdin(&[&"-"], &std::fs::read(&knossos).unwrap());
        assert_eq!((piped.0, verdict(&piped.1)), (code, verdict(&out)));
        assert_eq!(code, 1, "{out}");
    }
    let (large, _) =
        checker::gen::history_text(&checker::gen::GenConfig::register(8, 6, 20_000, 7));
    assert!(large.len() > 1 << 20, "{} bytes", large.len());
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("large.jsonl");
    std::fs::write(&path, &large).unwrap();
    let (code, out, err) = check(&[&path]);
    assert_eq!(code, 0, "{out}{err}");
    let (piped_code, piped_out, piped_err) = check_with_stdin(&[&"-"], large.as_bytes());
    assert_eq!(piped_code, 0, "{piped_out}{piped_err}");
    assert_eq!(verdict(&piped_out), verdict(&out));
}

#[test]
fn a_fifo_with_a_writer_is_read_once() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("history.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let text = std::fs::read(fixture("register-lost-write-bad.jsonl")).unwrap();
    let path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let _ = f.write_all(&text);
    });
    let (code, out, err) = check(&[&fifo]);
    writer.join().unwrap();
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("lost-write"), "{out}");
}

/// One event line of a register history.
fn event(kind: &str, process: u64, f: &str, key: &str, value: &str, time: u64) -> String {
    format!(
        r#"{{"type":"{kind}","process":{process},"f":"{f}","key":"{key}","value":{value},"time":{time}}}"#
    ) + "\n"
}

#[test]
fn a_last_line_cut_inside_a_character_is_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let text = event("invoke", 0, "write", "k", "1", 10)
        + &event("ok", 0, "write", "k", "1", 20)
        + &event("invoke", 1, "read", "ключ", "null", 30);
    let at = text.rfind('ю').unwrap();
    for cut in [at + 1, at] {
        let path = tmp.path().join(format!("cut-{cut}.jsonl"));
        std::fs::write(&path, &text.as_bytes()[..cut]).unwrap();
        let (code, out, err) = check(&[&path]);
        assert_eq!(code, 0, "cut at {cut}: {out}{err}");
        assert!(err.contains(":3: last line is cut short"), "{err}");
    }
    let mut bad = text.clone().into_bytes();
    bad[text.find("\"ok\"").unwrap() + 1] = 0xff;
    let path = tmp.path().join("bad.jsonl");
    std::fs::write(&path, &bad).unwrap();
    let (code, out, err) = check(&[&path]);
    assert_eq!(code, 254, "{out}{err}");
    assert!(err.contains("bad.jsonl:2: not valid UTF-8"), "{err}");
}

#[test]
fn a_line_past_the_bound_is_254_naming_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("long.jsonl");
    let key = "k".repeat(checker::history::LINE_BYTES_MAX);
    let text = event("invoke", 0, "write", "k", "1", 10) + &event("ok", 0, "write", &key, "1", 20);
    std::fs::write(&path, text).unwrap();
    for format in [&[][..], &["--format", "jsonl"][..]] {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&path];
        args.extend(format.iter().map(|f| f as &dyn AsRef<std::ffi::OsStr>));
        let (code, out, err) = check(&args);
        assert_eq!(code, 254, "{format:?}: {out}{err}");
        assert!(
            err.contains("long.jsonl:2: line is longer than 64 MiB"),
            "{format:?}: {err}"
        );
    }
}

#[test]
fn errors_echo_at_most_a_few_hundred_bytes_of_a_value() {
    let tmp = tempfile::tempdir().unwrap();
    let huge = "é".repeat(5 << 20);
    let cases = [
        (
            "time.jsonl",
            event("invoke", 0, "write", "k", "1", 10)
                .replace("\"time\":10", &format!("\"time\":\"{huge}\"")),
            "field `time`",
        ),
        (
            "process.jsonl",
            event("invoke", 0, "write", "k", "1", 10)
                .replace("\"process\":0", &format!("\"process\":\"{huge}\"")),
            "field `process`",
        ),
        (
            "value.jsonl",
            event("invoke", 0, "write", "k", &format!("\"{huge}\""), 10),
            "value",
        ),
        (
            "process.edn",
            format!("{{:process \"{huge}\", :type :invoke, :f :read, :value nil}}\n"),
            ":process",
        ),
    ];
    for (name, text, what) in cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        let (code, out, err) = check(&[&path]);
        assert_eq!(code, 254, "{name}: {out}");
        assert!(
            err.contains(what),
            "{name}: {}",
            &err[..err.len().min(2000)]
        );
        assert!(err.len() < 2048, "{name}: {} bytes of error", err.len());
        assert!(
            err.contains(" bytes)") && err.contains("… ("),
            "{name}: {err}"
        );
    }
}

#[test]
fn malformed_values_in_elle_histories_are_254_naming_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let header = |workload: &str| {
        format!(
            r#"{{"type":"header","format":"slotcheck-history","version":1,"workload":"{workload}"}}"#
        ) + "\n"
    };
    let append = header("list-append")
        + &event("invoke", 0, "append", "x", "1", 10)
        + &event("ok", 0, "append", "x", "1.5", 20);
    let add = header("set")
        + &event("invoke", 0, "add", "x", "1", 10)
        + &event("ok", 0, "add", "x", "1.5", 20);
    let txn = header("txn")
        + &event("invoke", 0, "txn", "x", "\"s\"", 10)
        + &event("ok", 0, "txn", "x", r#"[["r","x",[1]]]"#, 20);
    let cases: [(&str, &str, &[&str], &str); 5] = [
        ("append.jsonl", &append, &[], ":3 (event 1): field `value`"),
        (
            "append-model.jsonl",
            &append,
            &["--model", "list-append"],
            "line 3 (event 1): field `value`",
        ),
        ("add.jsonl", &add, &[], ":3 (event 1): field `value`"),
        (
            "add-model.jsonl",
            &add,
            &["--model", "set"],
            "line 3 (event 1): field `value`",
        ),
        ("txn.jsonl", &txn, &[], ":2 (event 0): field `value`"),
    ];
    for (name, text, flags, want) in cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&path];
        args.extend(flags.iter().map(|f| f as &dyn AsRef<std::ffi::OsStr>));
        let (code, out, err) = check(&args);
        assert_eq!(code, 254, "{name}: {out}{err}");
        assert!(err.contains(name), "{name}: names the file: {err}");
        assert!(err.contains(want.trim_start_matches(':')), "{name}: {err}");
    }
}

#[test]
fn an_empty_file_is_254_whichever_way_it_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.jsonl");
    std::fs::write(&empty, " \n\n").unwrap();
    for format in [
        None,
        Some("jsonl"),
        Some("knossos-edn"),
        Some("porcupine-kv"),
    ] {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&empty];
        let flag = format.map(|f| ["--format", f]);
        if let Some(flag) = &flag {
            args.extend(flag.iter().map(|f| f as &dyn AsRef<std::ffi::OsStr>));
        }
        let (code, out, err) = check(&args);
        assert_eq!(code, 254, "{format:?}: {out}{err}");
        assert!(err.contains("empty.jsonl: empty"), "{format:?}: {err}");
    }
    let (code, _, err) = check_with_stdin(&[&"-"], b"");
    assert_eq!(code, 254, "{err}");
    assert!(err.contains("<stdin>: empty"), "{err}");
    // In a directory it is skipped, as a file in no known format is.
    std::fs::copy(fixture("register-ok.jsonl"), tmp.path().join("ok.jsonl")).unwrap();
    let (code, out, err) = check(&[&tmp.path(), &"--format", &"jsonl"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 skipped"), "{out}");
}

#[test]
fn an_unrecognised_key_type_in_a_types_history_is_unknown() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("types.jsonl");
    let text = r#"{"type":"header","format":"slotcheck-history","version":1,"workload":"types"}"#
        .to_string()
        + "\n"
        + &event("invoke", 0, "write", "blob:{k0}", "1", 10)
        + &event("ok", 0, "write", "blob:{k0}", "1", 20);
    std::fs::write(&path, text).unwrap();
    let (code, out, err) = check(&[&path, &"--json"]);
    assert_eq!(code, 2, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["valid"], "unknown");
    let why = report["keys"][0]["unknown"].as_str().unwrap();
    assert!(why.contains("key type \"blob\""), "{why}");
}
