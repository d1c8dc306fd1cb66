//! Reading histories: round trips, errors that name line and field, cut last lines.

use super::*;

fn parse(text: &str) -> Result<History, HistoryError> {
    History::parse(text.as_bytes(), "h.jsonl")
}

#[test]
fn round_trips_an_event() {
    let mut e = Event::new(
        EventType::Ok,
        Process::Client(3),
        "read",
        Value::from(7),
        42,
    );
    e.key = Some("k1".into());
    e.redirects.push(Redirect {
        kind: RedirectKind::Ask,
        slot: 9,
        from: "127.0.0.1:7000".into(),
        to: "127.0.0.1:7001".into(),
    });
    e.redirects.push(Redirect {
        kind: RedirectKind::WrapperRetry,
        slot: 9,
        from: "127.0.0.1:7001".into(),
        to: "127.0.0.1:7001".into(),
    });
    let line = serde_json::to_string(&e).unwrap();
    assert!(line.contains(r#""kind":"ask""#), "{line}");
    assert!(line.contains(r#""kind":"wrapper-retry""#), "{line}");
    let h = parse(&(line + "\n")).unwrap();
    assert_eq!(h.events, vec![e]);
}

#[test]
fn batch_round_trips_and_is_checked() {
    let line =
        r#"{"type":"ok","process":1,"f":"txn","value":[["r","{a}x",1]],"time":5,"batch":"multi"}"#;
    let h = parse(&format!("{line}\n")).unwrap();
    assert_eq!(h.events[0].batch, Some(Batch::Multi));
    let back = serde_json::to_string(&h.events[0]).unwrap();
    assert!(back.contains(r#""batch":"multi""#), "{back}");
    let bad = line.replace(r#""multi""#, r#""queue""#);
    let err = parse(&format!("{bad}\n")).unwrap_err().to_string();
    assert!(err.starts_with("h.jsonl:1: field `batch`: "), "{err}");
}

#[test]
fn gave_up_round_trips_and_is_checked() {
    let line = r#"{"type":"fail","process":2,"f":"write","key":"k","value":3,"time":9,"error":"Too many Cluster redirections?","gave_up":{"kind":"ask","reply":"ASK 12 127.0.0.1:30002","hops":16}}"#;
    let h = parse(&format!("{line}\n")).unwrap();
    let want = GaveUp::new(RedirectKind::Ask, "ASK 12 127.0.0.1:30002", 16);
    assert_eq!(h.events[0].gave_up, Some(want.clone()));
    let back = serde_json::to_string(&h.events[0]).unwrap();
    assert_eq!(parse(&back).unwrap().events[0].gave_up, Some(want));
    let no_reply = line.replace(r#""reply":"ASK 12 127.0.0.1:30002","#, "");
    assert_eq!(
        parse(&no_reply).unwrap().events[0]
            .gave_up
            .as_ref()
            .unwrap()
            .reply,
        None
    );
    let bad = [
        (
            line.replace(r#""kind":"ask""#, r#""kind":"bounce""#),
            "unknown variant `bounce`",
        ),
        (
            line.replace(r#""hops":16"#, r#""hops":-1"#),
            "invalid value",
        ),
        (line.replace(r#","hops":16"#, ""), "missing field `hops`"),
        (
            line.replace(r#""gave_up":{"#, r#""gave_up":5,"x":{"#),
            "invalid type",
        ),
        (
            line.replace(r#""type":"fail""#, r#""type":"ok""#),
            "only a fail or info",
        ),
    ];
    for (text, message) in bad {
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.starts_with("h.jsonl:1: field `gave_up`: "), "{err}");
        assert!(err.contains(message), "{err}");
    }
}

#[test]
fn gave_up_cuts_the_reply() {
    let long = format!("MOVED 1 {}", "é".repeat(150));
    let cut = GaveUp::new(RedirectKind::Moved, &long, 3).reply.unwrap();
    assert!(cut.len() <= GAVE_UP_REPLY_BYTES_MAX && cut.len() >= GAVE_UP_REPLY_BYTES_MAX - 1);
    assert!(long.starts_with(&cut));
}

#[test]
fn names_line_and_field() {
    let text = concat!(
        r#"{"type":"header","format":"slotcheck-history","version":1,"seed":5}"#,
        "\n",
        r#"{"type":"invoke","process":0,"f":"read","key":"a","value":null,"time":1}"#,
        "\n",
        r#"{"type":"ok","process":0,"f":"read","key":"a","value":null,"time":"x"}"#,
        "\n"
    );
    let err = parse(text).unwrap_err().to_string();
    assert_eq!(
        err,
        "h.jsonl:3: field `time`: expected non-negative integer nanoseconds, got \"x\""
    );
}

#[test]
fn cut_last_line_is_a_warning() {
    let text = concat!(
        r#"{"type":"invoke","process":"nemesis","f":"kill","value":{},"time":1}"#,
        "\n",
        r#"{"type":"invoke","process":0,"f":"re"#
    );
    let h = parse(text).unwrap();
    assert_eq!(h.events.len(), 1);
    assert_eq!(h.events[0].process, Process::Nemesis);
    assert_eq!(h.warnings.len(), 1);
}

#[test]
fn a_last_line_cut_inside_a_character_is_a_warning() {
    let first = r#"{"type":"invoke","process":0,"f":"write","key":"é","value":1,"time":1}"#;
    let text = format!("{first}\n{first}");
    let at = text.rfind('é').unwrap();
    // Cut one byte into the two-byte `é`, and one byte before it.
    for cut in [at + 1, at] {
        let h = History::parse(&text.as_bytes()[..cut], "h.jsonl").unwrap();
        assert_eq!(h.events.len(), 1, "cut at {cut}");
        assert_eq!(h.warnings.len(), 1, "cut at {cut}");
        assert!(h.warnings[0].starts_with("h.jsonl:2: last line is cut short"));
    }
    // Not the last line, or not a cut: an error naming the file and line.
    let mut bad = text.as_bytes()[..at + 1].to_vec();
    bad.extend_from_slice(b"\"}\n");
    bad.extend_from_slice(first.as_bytes());
    let err = History::parse(&bad[..], "h.jsonl").unwrap_err().to_string();
    assert!(err.starts_with("h.jsonl:2: not valid UTF-8"), "{err}");
    let mut bad = first.as_bytes().to_vec();
    bad[40] = 0xff;
    let err = History::parse(&bad[..], "h.jsonl").unwrap_err().to_string();
    assert_eq!(err, "h.jsonl:1: not valid UTF-8 (from byte 41 of the line)");
}

#[test]
fn a_line_past_the_bound_is_an_error_naming_it() {
    let ok = r#"{"type":"invoke","process":0,"f":"write","key":"k","value":1,"time":1}"#;
    let pad = LINE_BYTES_MAX - ok.len();
    let at_most = format!("{ok}{}\n", " ".repeat(pad));
    assert!(parse(&format!("{ok}\n{at_most}{ok}")).is_ok());
    let past = format!("{ok}\n{ok}{}\n{ok}\n", " ".repeat(pad + 1));
    let err = parse(&past).unwrap_err().to_string();
    assert_eq!(
        err,
        "h.jsonl:2: line is longer than 64 MiB, the most a history line may hold"
    );
}

#[test]
fn cut_line_in_the_middle_is_an_error() {
    let text = "{\"type\":\"invoke\"\n{}\n";
    assert!(matches!(
        parse(text),
        Err(HistoryError::Syntax { line: 1, .. })
    ));
}

#[test]
fn unknown_fields_are_ignored_and_bad_process_named() {
    let ok = r#"{"type":"info","process":1,"f":"write","key":"a","value":1,"time":5,"zz":1}"#;
    assert!(parse(ok).is_ok());
    let bad = r#"{"type":"info","process":-1,"f":"write","key":"a","value":1,"time":5}"#;
    let err = parse(bad).unwrap_err();
    assert!(matches!(err, HistoryError::Field { ref field, .. } if field == "process"));
}

#[test]
fn redirect_kind_names_are_their_serialized_names() {
    for kind in RedirectKind::ALL {
        let json = serde_json::to_value(kind).unwrap();
        assert_eq!(json, Value::from(kind.name()), "{kind:?}");
        let back: RedirectKind = serde_json::from_value(json).unwrap();
        assert_eq!(back, kind);
    }
    let codis: Vec<&str> = RedirectKind::ALL
        .iter()
        .filter(|k| k.is_codis())
        .map(|k| k.name())
        .collect();
    assert_eq!(
        codis,
        [
            "mgrt-one",
            "wrapper-moved",
            "wrapper-retry",
            "wrapper-error"
        ]
    );
}
