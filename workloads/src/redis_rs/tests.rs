use super::*;

/// A server's error reply as the connection returns it (a value, not an `Err`).
fn reply(line: &str) -> Value {
    redis::parse_redis_value(format!("-{line}\r\n").as_bytes()).unwrap()
}

fn io(kind: std::io::ErrorKind) -> RedisError {
    std::io::Error::from(kind).into()
}

fn incr() -> Cmd {
    let mut cmd = redis::cmd("INCR");
    cmd.arg("k");
    cmd
}

const SECOND: Duration = Duration::from_secs(1);

/// What the library returned (`None`: the deadline passed first).
type Reply = Option<RedisResult<Value>>;

#[test]
fn outcome_is_fail_only_for_a_refusal_with_nothing_lost() {
    let lost = vec!["127.0.0.1:30001: broken pipe".to_string()];
    let fail = |t: &str| Err(OpError::Fail(t.to_string()));
    let table: Vec<(Reply, &[String], Result<Value, OpError>)> = vec![
        (Some(Ok(Value::Int(3))), &[], Ok(Value::Int(3))),
        (Some(Ok(Value::Int(3))), &lost, Ok(Value::Int(3))),
        (Some(Ok(reply("WRONGTYPE no"))), &[], fail("WRONGTYPE no")),
        (Some(Ok(reply("ERR unknown"))), &[], fail("ERR unknown")),
        (
            Some(Ok(reply("MOVED 7 :30002"))),
            &[],
            fail("MOVED 7 :30002"),
        ),
        (
            Some(Ok(reply("TRYAGAIN later"))),
            &[],
            fail("TRYAGAIN later"),
        ),
        (
            Some(Ok(reply("CLUSTERDOWN down"))),
            &[],
            fail("CLUSTERDOWN down"),
        ),
    ];
    for (given, lost, want) in table {
        assert_eq!(outcome(given.clone(), lost, SECOND), want, "{given:?}");
    }
    let infos: Vec<(Reply, &[String])> = vec![
        (None, &[]),
        (Some(Err(io(std::io::ErrorKind::TimedOut))), &[]),
        (Some(Err(io(std::io::ErrorKind::ConnectionReset))), &[]),
        (Some(Ok(reply("WRONGTYPE no"))), &lost),
        (Some(Ok(reply("MOVED 7 :30002"))), &lost),
    ];
    for (given, lost) in infos {
        let got = outcome(given.clone(), lost, SECOND);
        assert!(
            matches!(got, Err(OpError::Info(_))),
            "{given:?} {lost:?}: {got:?}"
        );
    }
    let text = format!("{:?}", outcome(Some(Ok(reply("ERR x"))), &lost, SECOND));
    assert!(
        text.contains("an earlier send may have run: 127.0.0.1:30001"),
        "{text}"
    );
}

#[test]
fn gave_up_names_only_redirect_replies() {
    let table = [
        ("MOVED 7 10.0.0.1:1", Some(RedirectKind::Moved)),
        ("ASK 7 10.0.0.1:1", Some(RedirectKind::Ask)),
        ("TRYAGAIN x", Some(RedirectKind::TryAgain)),
        ("CLUSTERDOWN x", Some(RedirectKind::ClusterDown)),
        ("WRONGTYPE x", None),
    ];
    for (line, want) in table {
        let want = want.map(|kind| (kind, line.to_string()));
        assert_eq!(gave_up_on(&Ok(reply(line))), want, "{line}");
    }
    assert_eq!(gave_up_on(&Err(io(std::io::ErrorKind::BrokenPipe))), None);
    assert_eq!(gave_up_on(&Ok(Value::Okay)), None);
}

#[test]
fn observer_records_the_ops_own_requests() {
    let observer = Observer::default();
    let (src, dst) = ("127.0.0.1:30001", "127.0.0.1:30002");
    assert!(observer.sent(src, &incr()).is_none(), "no op: background");
    observer.begin(&incr(), 7);
    let first = observer.sent(src, &incr()).unwrap();
    observer.ended(first, src, Some(&Ok(reply("ASK 7 :30002"))));
    let asking = observer.sent(dst, &redis::cmd("ASKING")).unwrap();
    observer.ended(asking, dst, Some(&Ok(Value::Okay)));
    let second = observer.sent(dst, &incr()).unwrap();
    observer.ended(second, dst, Some(&Ok(Value::Int(1))));
    let op = observer.finish();
    let ask = Redirect {
        kind: RedirectKind::Ask,
        slot: 7,
        from: src.into(),
        to: dst.into(),
    };
    assert_eq!(op.redirects, vec![ask]);
    assert_eq!(op.answered.as_deref(), Some(dst));
    assert!(op.lost.is_empty());
    let trace: Vec<(&str, &str, &str)> = op
        .trace
        .iter()
        .map(|s| (s.node.as_str(), s.command.as_str(), s.reply.as_str()))
        .collect();
    let want = vec![
        (src, "INCR", "ASK 7 :30002"),
        (dst, "ASKING", "ok"),
        (dst, "INCR", "ok"),
    ];
    assert_eq!(trace, want);
}

#[test]
fn observer_counts_losses_of_the_op_only() {
    let observer = Observer::default();
    let node = "127.0.0.1:30001";
    observer.begin(&incr(), 7);
    let stale = observer.sent(node, &incr()).unwrap();
    observer.finish();
    observer.begin(&incr(), 7);
    // A request of the earlier op ends during this one: ignored.
    observer.ended(stale, node, None);
    let ping = observer.sent(node, &redis::cmd("PING")).unwrap();
    observer.ended(ping, node, Some(&Err(io(std::io::ErrorKind::BrokenPipe))));
    let dropped = observer.sent(node, &incr()).unwrap();
    observer.ended(
        dropped,
        node,
        Some(&Err(io(std::io::ErrorKind::BrokenPipe))),
    );
    let abandoned = observer.sent(node, &incr()).unwrap();
    observer.ended(abandoned, node, None);
    let op = observer.finish();
    assert_eq!(op.lost.len(), 2, "{:?}", op.lost);
    assert!(op.lost[1].contains("abandoned"), "{:?}", op.lost);
    assert_eq!(op.tried.as_deref(), Some(node));
    assert_eq!(op.answered, None);
    assert_eq!(op.trace.len(), 3);
}

#[test]
fn tryagain_stays_on_the_node() {
    let observer = Observer::default();
    let node = "127.0.0.1:30001";
    observer.begin(&incr(), 9);
    let t = observer.sent(node, &incr()).unwrap();
    observer.ended(t, node, Some(&Ok(reply("TRYAGAIN Multiple keys"))));
    let op = observer.finish();
    assert_eq!(op.redirects.len(), 1);
    assert_eq!(
        (
            op.redirects[0].kind,
            op.redirects[0].slot,
            op.redirects[0].to.as_str()
        ),
        (RedirectKind::TryAgain, 9, node)
    );
}

#[test]
fn resolves_empty_hosts() {
    assert_eq!(resolve(":30002", "127.0.0.1:30001"), "127.0.0.1:30002");
    assert_eq!(resolve("10.0.0.2:1", "127.0.0.1:30001"), "10.0.0.2:1");
}

#[test]
fn version_matches_the_lock_file() {
    let lock = include_str!("../../../Cargo.lock");
    let pinned = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"redis\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim_matches('"'));
    assert_eq!(pinned, Some(REDIS_RS_VERSION));
}
