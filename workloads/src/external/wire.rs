//! The adapter protocol's lines, as slotcheck writes and reads them (one JSON object a line; see
//! README.md, "Adding a client"): `open` → `hello` (or `error`), then one request → one reply.
//! Protocol 2 adds batch requests: a `pipeline` (one reply part per command, in order) and a
//! `transaction` (one reply whose value holds `EXEC`'s replies); an adapter's hello says which
//! protocol it speaks (no `protocol` field: 1, single requests only).

use crate::executor::{ClientInfo, RedirectVisibility};
use checker::{GaveUp, Redirect};
use redis::{Arg, Cmd, Value};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// The first line slotcheck sends: where the cluster is and how long the library may wait.
#[derive(Debug, Serialize)]
pub(crate) struct Open<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub seeds: &'a [String],
    pub timeout_ms: u64,
}

/// One operation: `args` is the whole command (name first), `key` the key it routes by.
#[derive(Debug, Serialize)]
pub(crate) struct Request<'a> {
    pub id: u64,
    pub key: &'a str,
    pub args: Vec<&'a str>,
}

/// The child's answer to `open`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Greeting {
    Hello {
        client: String,
        version: String,
        redirects: Visibility,
        #[serde(default = "protocol_one")]
        protocol: u32,
    },
    Error {
        error: String,
    },
}

/// How the child says an operation ended (the history's outcomes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Outcome {
    Ok,
    Fail,
    Info,
}

/// The first protocol version with batch requests (`pipeline`, `transaction`).
pub(crate) const PROTOCOL_BATCHES: u32 = 2;

/// One command of a batch: the key it routes by and its words (name first).
#[derive(Debug, Serialize)]
pub(crate) struct Command<'a> {
    pub key: &'a str,
    pub args: Vec<&'a str>,
}

/// Several commands sent at once; the reply has one part per command, in order.
#[derive(Debug, Serialize)]
pub(crate) struct PipelineRequest<'a> {
    pub id: u64,
    pub pipeline: Vec<Command<'a>>,
}

/// `MULTI`, the commands (all on the key's slot), `EXEC`: one reply, its value `EXEC`'s array.
#[derive(Debug, Serialize)]
pub(crate) struct TransactionRequest<'a> {
    pub id: u64,
    pub transaction: Transaction<'a>,
}

/// A transaction's key and its commands' words.
#[derive(Debug, Serialize)]
pub(crate) struct Transaction<'a> {
    pub key: &'a str,
    pub commands: Vec<Vec<&'a str>>,
}

/// The child's answer to a pipeline: one part per command, in the pipeline's order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PipelineReply {
    pub id: u64,
    pub replies: Vec<Part>,
}

/// The child's answer to one request (or a transaction): its id and how it ended.
#[derive(Debug)]
pub(crate) struct Reply {
    pub id: u64,
    pub part: Part,
}

/// How one command (or transaction) ended: a reply line without its id, or one entry of a
/// pipeline's `replies`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Part {
    pub outcome: Outcome,
    #[serde(default)]
    pub value: Json,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub redirects: Vec<Redirect>,
    /// On `fail`/`info`: the library gave up following redirects (ignored on `ok`).
    #[serde(default)]
    pub gave_up: Option<GaveUp>,
}

/// The hello line's `redirects`: whether the adapter reports the library's redirects.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Visibility {
    Seen,
    Hidden,
}

/// A hello without `protocol` is from an adapter of protocol 1.
fn protocol_one() -> u32 {
    1
}

/// What the child's hello says: the client and the protocol version it speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hello {
    pub info: ClientInfo,
    pub protocol: u32,
}

/// Reads the answer to `open`: the client it names, or the child's reason for not starting.
pub(crate) fn parse_hello(line: &str) -> Result<Hello, String> {
    match serde_json::from_str::<Greeting>(line) {
        Ok(Greeting::Hello {
            client,
            version,
            redirects,
            protocol,
        }) => Ok(Hello {
            info: ClientInfo {
                name: client,
                version,
                redirects: match redirects {
                    Visibility::Seen => RedirectVisibility::Seen,
                    Visibility::Hidden => RedirectVisibility::Hidden,
                },
            },
            protocol,
        }),
        Ok(Greeting::Error { error }) => Err(error),
        Err(e) => Err(format!("not a hello line ({e}): {}", excerpt(line))),
    }
}

/// Reads one reply line: an `id` and the fields of a [`Part`].
pub(crate) fn parse_reply(line: &str) -> Result<Reply, String> {
    let bad = |e: &dyn std::fmt::Display| format!("not a reply line ({e}): {}", excerpt(line));
    let mut fields = match serde_json::from_str::<Json>(line) {
        Ok(Json::Object(fields)) => fields,
        Ok(_) => return Err(bad(&"not an object")),
        Err(e) => return Err(bad(&e)),
    };
    let id = match fields.remove("id").as_ref().and_then(Json::as_u64) {
        Some(id) => id,
        None => return Err(bad(&"no integer id")),
    };
    let part = serde_json::from_value(Json::Object(fields)).map_err(|e| bad(&e))?;
    Ok(Reply { id, part })
}

/// Reads the reply line to a pipeline.
pub(crate) fn parse_pipeline_reply(line: &str) -> Result<PipelineReply, String> {
    serde_json::from_str(line)
        .map_err(|e| format!("not a pipeline reply line ({e}): {}", excerpt(line)))
}

/// A command's words as strings; the protocol carries UTF-8 text only.
pub(crate) fn command_args(cmd: &Cmd) -> Result<Vec<&str>, String> {
    cmd.args_iter()
        .map(|arg| match arg {
            Arg::Simple(bytes) => std::str::from_utf8(bytes)
                .map_err(|_| format!("argument is not UTF-8: {}", String::from_utf8_lossy(bytes))),
            _ => Err("only plain arguments are supported (no cursors)".to_string()),
        })
        .collect()
}

/// A reply value as the library would have returned it: `null` → nil, an integer → integer, a
/// string → bulk string, `{"status": "OK"}` → OK (another status → simple string), an array →
/// array, a non-integral number → double, a boolean → boolean, `{"error": text}` → an error
/// reply (one command's error among a transaction's replies).
pub(crate) fn to_value(json: &Json) -> Result<Value, String> {
    Ok(match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(f)) if n.is_f64() => Value::Double(f),
            _ => return Err(format!("integer out of range: {n}")),
        },
        Json::String(s) => Value::BulkString(s.as_bytes().to_vec()),
        Json::Array(items) => Value::Array(items.iter().map(to_value).collect::<Result<_, _>>()?),
        Json::Object(map) => match (map.len(), map.get("status")) {
            (1, Some(Json::String(s))) if s == "OK" => Value::Okay,
            (1, Some(Json::String(s))) => Value::SimpleString(s.clone()),
            (1, None) => match map.get("error") {
                Some(Json::String(text)) => error_reply(text)?,
                _ => return Err(format!("an object must be {{\"status\": text}}: {json}")),
            },
            _ => return Err(format!("an object must be {{\"status\": text}}: {json}")),
        },
    })
}

/// An error reply with the server's text (`WRONGTYPE Operation against ...`).
fn error_reply(text: &str) -> Result<Value, String> {
    let line = text.replace(['\r', '\n'], " ");
    match redis::parse_redis_value(format!("-{line}\r\n").as_bytes()) {
        Ok(value @ Value::ServerError(_)) => Ok(value),
        _ => Err(format!("not an error text: {text:?}")),
    }
}

/// At most 200 characters of a line, for error messages.
pub(crate) fn excerpt(line: &str) -> String {
    const CHARS_MAX: usize = 200;
    let line = line.trim_end();
    match line.char_indices().nth(CHARS_MAX) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::RedirectKind;
    use serde_json::json;

    #[test]
    fn values_map_like_the_library_replies() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let table: Vec<(Json, Value)> = vec![
            (json!(null), Value::Nil),
            (json!(5), Value::Int(5)),
            (json!(-9007199254740993i64), Value::Int(-9007199254740993)),
            (json!("5"), bulk("5")),
            (json!(""), bulk("")),
            (json!({"status": "OK"}), Value::Okay),
            (
                json!({"status": "QUEUED"}),
                Value::SimpleString("QUEUED".into()),
            ),
            (json!(1.5), Value::Double(1.5)),
            (json!(true), Value::Boolean(true)),
            (
                json!([1, "a", null, [2]]),
                Value::Array(vec![
                    Value::Int(1),
                    bulk("a"),
                    Value::Nil,
                    Value::Array(vec![Value::Int(2)]),
                ]),
            ),
        ];
        for (json, want) in table {
            assert_eq!(to_value(&json), Ok(want), "{json}");
        }
        let err = to_value(&json!([{"error": "WRONGTYPE wrong kind"}])).unwrap();
        let Value::Array(items) = err else {
            panic!("{err:?}")
        };
        assert!(matches!(&items[0], Value::ServerError(e) if e.code() == "WRONGTYPE"));
        for bad in [
            json!({"error": 1}),
            json!({"status": 1}),
            json!({"ok": "OK"}),
            json!({"status": "OK", "x": 1}),
            json!(u64::MAX),
            json!([{"a": 1}]),
        ] {
            assert!(to_value(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hello_lines() {
        let info = |name: &str, version: &str, redirects| ClientInfo {
            name: name.into(),
            version: version.into(),
            redirects,
        };
        let table: Vec<(&str, Result<ClientInfo, &str>)> = vec![
            (
                r#"{"type":"hello","client":"redis-py","version":"8.1.0","redirects":"seen"}"#,
                Ok(info("redis-py", "8.1.0", RedirectVisibility::Seen)),
            ),
            (
                r#"{"type":"hello","client":"node-redis","version":"6.3.1","redirects":"hidden"}"#,
                Ok(info("node-redis", "6.3.1", RedirectVisibility::Hidden)),
            ),
            (
                r#"{"type":"error","error":"no seed answered"}"#,
                Err("no seed answered"),
            ),
        ];
        let two = r#"{"type":"hello","client":"x","version":"1","redirects":"seen","protocol":2}"#;
        assert_eq!(parse_hello(two).map(|h| h.protocol), Ok(2));
        assert_eq!(
            parse_hello(table[0].0).map(|h| h.protocol),
            Ok(1),
            "no field: 1"
        );
        for (line, want) in table {
            let got = parse_hello(line).map(|h| h.info);
            assert_eq!(got, want.map_err(str::to_string), "{line}");
        }
        for bad in [
            r#"{"type":"hello","client":"x","version":"1","redirects":"some"}"#,
            r#"{"type":"hello","client":"x"}"#,
            "hello",
            "",
        ] {
            assert!(parse_hello(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reply_lines() {
        let line = r#"{"id":7,"outcome":"ok","value":{"status":"OK"},"error":null,
            "node":"127.0.0.1:30002","redirects":[{"kind":"ask","slot":12,
            "from":"127.0.0.1:30001","to":"127.0.0.1:30002"}]}"#;
        let reply = parse_reply(&line.replace('\n', "")).unwrap();
        assert_eq!((reply.id, reply.part.outcome), (7, Outcome::Ok));
        assert_eq!(reply.part.node.as_deref(), Some("127.0.0.1:30002"));
        assert_eq!(
            reply.part.redirects,
            vec![Redirect {
                kind: RedirectKind::Ask,
                slot: 12,
                from: "127.0.0.1:30001".into(),
                to: "127.0.0.1:30002".into(),
            }]
        );
        let table: Vec<(&str, Option<Outcome>)> = vec![
            (
                r#"{"id":1,"outcome":"fail","error":"WRONGTYPE x"}"#,
                Some(Outcome::Fail),
            ),
            (
                r#"{"id":1,"outcome":"info","error":"timeout","value":null,"node":null}"#,
                Some(Outcome::Info),
            ),
            (r#"{"id":1,"outcome":"maybe"}"#, None),
            (r#"{"id":1,"outcome":"ok","extra":1}"#, None),
            (
                r#"{"id":1,"outcome":"ok","redirects":[{"kind":"bounce","slot":1,"from":"a","to":"b"}]}"#,
                None,
            ),
            (r#"{"outcome":"ok"}"#, None),
            (
                r#"{"id":1,"outcome":"fail","error":"TTL exhausted.","gave_up":{"kind":"moved","reply":"MOVED 1 a:1","hops":16}}"#,
                Some(Outcome::Fail),
            ),
            (
                r#"{"id":1,"outcome":"fail","gave_up":{"kind":"moved","hops":"x"}}"#,
                None,
            ),
            ("Traceback (most recent call last):", None),
        ];
        for (line, want) in table {
            assert_eq!(
                parse_reply(line).ok().map(|r| r.part.outcome),
                want,
                "{line}"
            );
        }
        let gave_up =
            r#"{"id":2,"outcome":"info","error":"x","gave_up":{"kind":"tryagain","hops":3}}"#;
        let reply = parse_reply(gave_up).unwrap();
        let want = GaveUp {
            kind: RedirectKind::TryAgain,
            reply: None,
            hops: 3,
        };
        assert_eq!(reply.part.gave_up, Some(want));
    }

    #[test]
    fn command_words() {
        let mut eval = redis::cmd("EVAL");
        eval.arg("return 1").arg(1).arg("register:3");
        assert_eq!(
            command_args(&eval),
            Ok(vec!["EVAL", "return 1", "1", "register:3"])
        );
        let mut bad = redis::cmd("SET");
        bad.arg("k").arg(&[0xffu8][..]);
        assert!(command_args(&bad).is_err());
    }

    #[test]
    fn excerpts_are_bounded() {
        assert_eq!(excerpt("short\n"), "short");
        let long = "é".repeat(300);
        assert_eq!(excerpt(&long).chars().count(), 203);
    }
}
