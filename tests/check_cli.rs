//! `slotcheck check` as a user runs it: the built binary on the fixture histories, on directories
//! of them, on malformed and cut histories, and on peer corpora (read in place from
//! `../shared/corpora`) whose format it must detect by itself.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn slotcheck() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slotcheck"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("histories")
        .join(name)
}

fn corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora")
}

/// Runs `slotcheck check ARGS...` and returns (exit code, stdout, stderr).
fn check(args: &[&dyn AsRef<std::ffi::OsStr>]) -> (i32, String, String) {
    let mut cmd = slotcheck();
    cmd.arg("check");
    for a in args {
        cmd.arg(a);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run slotcheck");
    let (out, err) = (
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    );
    (status.code().unwrap_or(-1), out, err)
}

/// The verdict `expected.tsv` gives the corpus file at `path` (relative to the corpora).
fn expected(path: &str) -> &'static str {
    let tsv = std::fs::read_to_string(corpora().join("expected.tsv")).expect("expected.tsv");
    let line = tsv
        .lines()
        .find(|l| l.split('\t').next() == Some(path))
        .unwrap_or_else(|| panic!("{path} is not in expected.tsv"));
    match line.rsplit('\t').next() {
        Some("valid") => "valid",
        Some("invalid") => "invalid",
        other => panic!("expected.tsv: {other:?}"),
    }
}

/// One event line of a register history.
fn event(kind: &str, process: u64, f: &str, key: &str, value: &str, time: u64) -> String {
    format!(
        r#"{{"type":"{kind}","process":{process},"f":"{f}","key":"{key}","value":{value},"time":{time}}}"#
    ) + "\n"
}

#[test]
fn valid_fixtures_exit_0_and_bad_ones_1_with_redirect_context() {
    for name in ["register-ok.jsonl", "register-info-ok.jsonl"] {
        let (code, out, err) = check(&[&fixture(name)]);
        assert_eq!(code, 0, "{name}: {out}{err}");
        assert!(out.starts_with("register-linearizable: valid"), "{out}");
    }
    let (code, out, err) = check(&[&fixture("register-stale-read-bad.jsonl")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("register-linearizable: INVALID"), "{out}");
    assert!(out.contains("key \"k2\" is not linearizable"), "{out}");
    assert!(out.contains("line 8: process"), "names write 21: {out}");
    // The redirect-aware analysis ran: its summary and each explained op's context are printed.
    assert!(out.contains("migrations: "), "{out}");
    assert!(out.contains("  at line 8 "), "{out}");
}

#[test]
fn a_directory_gets_one_line_per_file_and_details_for_invalid_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let sub = tmp.path().join("more");
    std::fs::create_dir(&sub).unwrap();
    let names = [
        "register-ok.jsonl",
        "register-stale-read-bad.jsonl",
        "register-info-ok.jsonl",
    ];
    for name in names {
        std::fs::copy(fixture(name), tmp.path().join(name)).unwrap();
    }
    std::fs::copy(
        fixture("register-phantom-bad.jsonl"),
        sub.join("register-phantom-bad.jsonl"),
    )
    .unwrap();
    std::fs::write(tmp.path().join(".hidden.jsonl"), "not a history\n").unwrap();

    let (code, out, err) = check(&[&tmp.path()]);
    assert_eq!(code, 1, "{out}{err}");
    let rows: Vec<(&str, &str)> = out
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(cols.len(), 6, "path verdict N ops T ms: {l:?}");
            assert_eq!((cols[3], cols[5]), ("ops", "ms"), "{l:?}");
            (cols[0], cols[1])
        })
        .collect();
    let root = tmp.path().display().to_string();
    let want = [
        (format!("{root}/more/register-phantom-bad.jsonl"), "invalid"),
        (format!("{root}/register-info-ok.jsonl"), "valid"),
        (format!("{root}/register-ok.jsonl"), "valid"),
        (format!("{root}/register-stale-read-bad.jsonl"), "invalid"),
    ];
    let want: Vec<(&str, &str)> = want.iter().map(|(p, v)| (p.as_str(), *v)).collect();
    assert_eq!(rows, want, "sorted by name, hidden file skipped: {out}");
    assert!(out.contains(&format!("== {root}/register-stale-read-bad.jsonl\n")));
    assert!(out.contains(&format!("== {root}/more/register-phantom-bad.jsonl\n")));
    assert!(
        !out.contains(&format!("== {root}/register-ok.jsonl")),
        "{out}"
    );
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("overall: invalid (4 files: 2 valid, 2 invalid, 0 unknown"),
        "{last}"
    );
    // Without the invalid files, the same directory is valid.
    std::fs::remove_file(tmp.path().join("register-stale-read-bad.jsonl")).unwrap();
    std::fs::remove_dir_all(&sub).unwrap();
    let (code, out, _) = check(&[&tmp.path()]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn json_carries_jepsen_valid_and_per_file_lines() {
    let (code, out, _) = check(&[&"--json", &fixture("register-stale-read-bad.jsonl")]);
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(report["valid"], Value::Bool(false));
    assert_eq!(report["checker"], "register-linearizable");
    assert!(report["redirect_analysis"].is_object(), "{out}");
    let (code, out, _) = check(&[&"--json", &fixture("register-ok.jsonl")]);
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["valid"], true);
    // Eight ops, three invoked while slot 7629 migrated, two of them redirected (moved, ask).
    let coverage = &report["redirect_analysis"]["coverage"];
    assert_eq!(
        (
            &coverage["ops"],
            &coverage["in_migration"],
            &coverage["redirected"]
        ),
        (&Value::from(8), &Value::from(3), &Value::from(2)),
        "{out}"
    );
    assert_eq!(coverage["hops"]["ask"], 1, "{out}");
    assert!(coverage.get("batches").is_none(), "no batch: left out");

    let files = [
        fixture("register-ok.jsonl"),
        fixture("register-phantom-bad.jsonl"),
    ];
    let (code, out, _) = check(&[&"--json", &files[0], &files[1]]);
    assert_eq!(code, 1);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    for (line, (file, valid)) in lines.iter().zip([(&files[0], true), (&files[1], false)]) {
        assert_eq!(line["file"], file.display().to_string());
        assert_eq!(line["valid"], valid);
        assert!(line["time_ms"].as_f64().unwrap() >= 0.0);
    }
}

#[test]
fn malformed_history_is_254_naming_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.jsonl");
    let text = event("invoke", 0, "write", "k", "1", 10)
        + r#"{"type":"ok","process":0,"f":"write","key":"k","value":1,"time":-5}"#
        + "\n";
    std::fs::write(&bad, text).unwrap();
    let (code, out, err) = check(&[&bad]);
    assert_eq!(code, 254, "{out}{err}");
    assert!(err.contains("bad.jsonl:2"), "names the line: {err}");
    assert!(err.contains("field `time`"), "names the field: {err}");

    // Among other files it is a row of its own; an invalid file still wins, else 254.
    let (code, out, _) = check(&[&fixture("register-ok.jsonl"), &bad]);
    assert_eq!(code, 254, "{out}");
    let row = out.lines().find(|l| l.contains("bad.jsonl")).unwrap();
    assert_eq!(row.split_whitespace().nth(1), Some("error"), "{out}");
    assert!(out.contains("field `time`"), "{out}");
    let (code, out, _) = check(&[&fixture("register-phantom-bad.jsonl"), &bad]);
    assert_eq!(code, 1, "{out}");

    let missing = tmp.path().join("missing.jsonl");
    let (code, _, err) = check(&[&missing]);
    assert_eq!(code, 254);
    assert!(err.contains("missing.jsonl"), "{err}");
}

#[test]
fn a_history_cut_mid_line_still_gets_a_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let mut text = std::fs::read_to_string(fixture("register-ok.jsonl")).unwrap();
    text.truncate(text.len() - 7);
    let cut = tmp.path().join("cut.jsonl");
    std::fs::write(&cut, &text).unwrap();
    let (code, out, err) = check(&[&cut]);
    assert!(err.contains("cut short"), "warns: {err}");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("warning: "), "{out}");
}

#[test]
fn corpus_files_are_detected_and_get_their_upstream_verdicts() {
    let files = [
        "porcupine/test_data/jepsen/etcd_000.log",
        "porcupine/test_data/jepsen/etcd_002.log",
        "knossos/data/cas-register/bad/cas-failure.edn",
        "knossos/data/cas-register/good/memstress3-0.edn",
        "knossos/data/multi-register/good/multi-register.edn",
        "porcupine/test_data/kv/c01-bad.txt",
        "porcupine/test_data/kv/c10-ok.txt",
    ];
    for file in files {
        let want = expected(file);
        let (code, out, err) = check(&[&corpora().join(file)]);
        assert_eq!(
            code,
            if want == "valid" { 0 } else { 1 },
            "{file}: {out}{err}"
        );
        assert!(
            out.lines().next().unwrap().contains(": valid") == (want == "valid"),
            "{file}: {out}"
        );
    }
    // A whole corpus directory, format detected per file.
    let dir = corpora().join("knossos/data/cas-register/bad");
    let (code, out, err) = check(&[&dir]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out.lines().filter(|l| l.contains("  invalid  ")).count(), 7);
}

#[test]
fn model_and_format_mismatches_are_clear_errors() {
    let kv = corpora().join("porcupine/test_data/kv/c01-ok.txt");
    let (code, _, err) = check(&[&"--model", &"register", &kv]);
    assert_eq!(code, 254, "{err}");
    assert!(
        err.contains("--model register does not fit this porcupine-kv history"),
        "{err}"
    );
    assert!(err.contains("pass --model kv"), "{err}");

    let jsonl = fixture("register-ok.jsonl");
    let (code, _, err) = check(&[&"--format", &"knossos-edn", &jsonl]);
    assert_eq!(code, 254, "{err}");
    assert!(
        err.contains("as knossos-edn (its content looks like jsonl)"),
        "{err}"
    );

    let (code, _, err) = check(&[&"--model", &"nope", &jsonl]);
    assert_eq!(code, 254, "bad arguments: {err}");
    assert!(err.contains("unknown model \"nope\""), "{err}");
    let (code, _, _) = check(&[]);
    assert_eq!(code, 254, "no FILE");
}

#[test]
fn initial_value_and_header_workload_choose_how_to_check() {
    let tmp = tempfile::tempdir().unwrap();
    let reads_5 = tmp.path().join("reads-5.jsonl");
    let text = event("invoke", 0, "read", "k", "null", 10) + &event("ok", 0, "read", "k", "5", 20);
    std::fs::write(&reads_5, text).unwrap();
    let (code, out, _) = check(&[&reads_5]);
    assert_eq!(code, 1, "the key starts absent: {out}");
    let (code, out, _) = check(&[&"--initial", &"5", &reads_5]);
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = check(&[&"--initial", &"five", &reads_5]);
    assert_eq!(code, 254, "{err}");
    assert!(err.contains("option `initial`"), "{err}");

    let header = |workload: &str| {
        format!(
            r#"{{"type":"header","format":"slotcheck-history","version":1,"workload":"{workload}"}}"#
        ) + "\n"
    };
    let counter = tmp.path().join("counter.jsonl");
    let text = header("counter")
        + &event("invoke", 0, "incr", "c", "1", 10)
        + &event("ok", 0, "incr", "c", "1", 20)
        + &event("invoke", 1, "read", "c", "null", 30)
        + &event("ok", 1, "read", "c", "1", 40);
    std::fs::write(&counter, text).unwrap();
    let (code, out, err) = check(&[&counter]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("counter-linearizable: valid"), "{out}");

    let list = tmp.path().join("list.jsonl");
    let text = header("list-append")
        + &event("invoke", 0, "append", "l", "1", 10)
        + &event("ok", 0, "append", "l", "1", 20)
        + &event("invoke", 1, "read", "l", "null", 30)
        + &event("ok", 1, "read", "l", "[]", 40);
    std::fs::write(&list, text).unwrap();
    let (code, out, err) = check(&[&list]);
    assert_eq!(
        code, 1,
        "the read misses an acknowledged append: {out}{err}"
    );
    assert!(out.starts_with("elle-list-append: INVALID"), "{out}");
    assert!(
        out.contains("anomalies: G-single-item-realtime 1, lost-write 1"),
        "Elle-style analysis: {out}"
    );
    assert!(
        out.contains("  non-linearizable, cause"),
        "a list key's own class is not a register's: {out}"
    );
}

#[test]
fn a_terminal_report_explains_at_most_ten_invalid_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("phantoms.jsonl");
    let text: String = (0..12)
        .map(|i| {
            let key = format!("k{i:02}");
            event("invoke", i, "read", &key, "null", 10) + &event("ok", i, "read", &key, "99", 20)
        })
        .collect();
    std::fs::write(&path, text).unwrap();
    let (code, out, _) = check(&[&path]);
    assert_eq!(code, 1);
    assert!(
        out.contains("(12 keys: 0 valid, 12 invalid, 0 unknown)"),
        "{out}"
    );
    assert_eq!(out.matches("is not linearizable").count(), 10, "{out}");
    assert!(out.contains("key \"k09\" is not linearizable"), "{out}");
    assert!(!out.contains("key \"k10\""), "{out}");
    assert!(
        out.contains("... and 2 more invalid keys (use --json for all)"),
        "{out}"
    );
    let (_, out, _) = check(&[&"--json", &path]);
    let report: Value = serde_json::from_str(&out).unwrap();
    let explained = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["explanation"].is_object())
        .count();
    assert_eq!(explained, 12);
}

#[test]
fn pikiwidb_histories_check_to_their_findings() {
    let (code, out, _) = check(&[&fixture("pika-hll-type-changed.jsonl")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("type-changed on [\"hll:{k6}\"]"), "{out}");
    assert!(
        out.contains("ended done at line 427, after SLOTSRELOAD on 127.0.0.1:17082 at line 425"),
        "{out}"
    );
    let (code, out, _) = check(&[&fixture("pika-case-wrapper-error.jsonl")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("pika lowercases the key to hll:{k20}, whose slot is 270"),
        "{out}"
    );
}

/// The rw-register analysis infers version orders under the assumptions a slotcheck
/// rw-register history's run made (its header), or those the flags name: process 0 writes 1,
/// then 2, then reads 1, which is `cyclic-versions` under `sequential-keys` or
/// `linearizable-keys` and nothing without them.
#[test]
fn rw_register_assumptions_come_from_the_header_or_the_flags() {
    let (code, out, err) = check(&[&fixture("cyclic-versions-bad.jsonl")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("anomalies: cyclic-versions 2"), "{out}");
    assert!(
        out.contains("This rests on the assumption sequential-keys"),
        "{out}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("txn.jsonl");
    let text = std::fs::read_to_string(fixture("cyclic-versions-bad.jsonl")).unwrap();
    std::fs::write(&path, text.replace("\"rw-register\"", "\"txn\"")).unwrap();
    for (flag, want) in [
        (None, 0),
        (Some("--wfr-keys"), 0),
        (Some("--sequential-keys"), 1),
        (Some("--linearizable-keys"), 1),
    ] {
        let (code, out, err) = match flag {
            Some(flag) => check(&[&flag, &path]),
            None => check(&[&path]),
        };
        assert_eq!(code, want, "{flag:?}: {out}{err}");
    }
}
