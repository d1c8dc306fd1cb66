#!/usr/bin/env python3
"""slotcheck adapter for redis-py's RedisCluster (protocol: README.md, "Adding a client").

Reads one JSON request a line on stdin and writes one JSON reply a line on stdout, in order; exits
at end of input. The library runs with its defaults (retries, TTL of 16 redirects, slot map
refresh) except the socket timeouts, which come from the open line's timeout_ms.

Redirects are seen: redis-py follows MOVED/ASK/TRYAGAIN/CLUSTERDOWN inside RedisCluster, after
Connection.read_response raised them; the adapter wraps read_response and records each one (from =
that connection's host:port) before re-raising it to the library.

Outcomes. fail, only when the request certainly did not execute and no attempt of it may have:
  - the server answered with an error reply (WRONGTYPE, NOSCRIPT, ..., a CLUSTERDOWN or TRYAGAIN the
    library gave up on, a redirect loop past its TTL: "ClusterError: TTL exhausted"),
  - the library found no node for the slot, or could not connect (the error came from connect),
  and in either case no earlier attempt in the same operation lost its connection or timed out
  after sending (redis-py resends after ConnectionError/TimeoutError).
info: everything else - a read or write timeout, a connection lost after sending (also a pooled
connection to a node that died meanwhile: the write goes out, the read finds it closed), retries
exhausted after such a loss, any unexpected exception.

Give-ups. redis-py 8.1.0 stops following redirects in two ways, and the reply then carries
"gave_up" (kind, the last redirect reply's text, the hops followed before it):
  - ClusterError("TTL exhausted.") after 16 MOVED/ASK/TRYAGAIN replies in one command (its
    RedisClusterRequestTTL): the last of them;
  - ClusterDownError (CLUSTERDOWN, or MASTERDOWN) once its retries (3) are spent: that reply.
That last reply is not a hop: it leaves "redirects".
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".site"))

import redis  # noqa: E402
from redis.cluster import ClusterNode, RedisCluster  # noqa: E402
from redis.connection import Connection  # noqa: E402
from redis.exceptions import (  # noqa: E402
    AskError,
    ClusterDownError,
    ClusterError,
    ConnectionError,
    RedisClusterException,
    ResponseError,
    TimeoutError,
    TryAgainError,
)


class Probe:
    """What the wrapped connection saw during the current operation."""

    def __init__(self):
        self.begin(None)

    def begin(self, slot):
        self.slot = slot
        self.redirects = []
        self.replies = []  # each redirect's reply text, as the server sent it
        self.node = None
        self.raw = None  # the last reply read, before redis-py's response callbacks
        self.unsure = False  # a request may have gone out without its reply being read
        self.connect_errors = []  # raised while connecting: nothing was sent on that connection

    def from_connect(self, e):
        return any(e is c for c in self.connect_errors)


PROBE = Probe()
_read_response = Connection.read_response
_send_packed_command = Connection.send_packed_command
_connect_check_health = Connection.connect_check_health


def _addr(conn):
    return f"{conn.host}:{conn.port}"


def _redirect(kind, slot, conn, to, e):
    frm = _addr(conn)
    PROBE.redirects.append({"kind": kind, "slot": slot, "from": frm, "to": to or frm})
    PROBE.replies.append(error_text(e))


def read_response(self, *args, **kwargs):
    try:
        reply = _read_response(self, *args, **kwargs)
    except AskError as e:  # MovedError is an AskError
        kind = "moved" if e.status_code == "MOVED" else "ask"
        _redirect(kind, e.slot_id, self, f"{e.host}:{e.port}", e)
        raise
    except TryAgainError as e:
        _redirect("tryagain", PROBE.slot, self, None, e)
        raise
    except ClusterDownError as e:  # CLUSTERDOWN, and MASTERDOWN, which redis-py handles alike
        _redirect("clusterdown", PROBE.slot, self, None, e)
        raise
    except (ConnectionError, TimeoutError):
        PROBE.unsure = True
        raise
    PROBE.node = _addr(self)
    PROBE.raw = reply
    return reply


def send_packed_command(self, *args, **kwargs):
    try:
        return _send_packed_command(self, *args, **kwargs)
    except (ConnectionError, TimeoutError) as e:
        if not PROBE.from_connect(e):
            PROBE.unsure = True
        raise


def connect_check_health(self, *args, **kwargs):
    try:
        return _connect_check_health(self, *args, **kwargs)
    except BaseException as e:
        PROBE.connect_errors.append(e)
        raise


Connection.read_response = read_response
Connection.send_packed_command = send_packed_command
Connection.connect_check_health = connect_check_health


def text(raw):
    return raw.decode("utf-8", "replace")


def to_json(value, raw):
    """A reply as the protocol writes it; `raw` (the reply before redis-py's callbacks) tells a
    +OK that redis-py turned into True from an integer that it turned into a bool."""
    if isinstance(value, bool):
        if raw == b"OK":
            return {"status": "OK"}
        return int(value)
    if value is None or isinstance(value, (int, float)):
        return value
    if isinstance(value, bytes):
        return text(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return [to_json(v, None) for v in value]
    raise TypeError(f"unexpected reply type {type(value).__name__}: {value!r}")


def error_text(e):
    """The error as the server sent it where redis-py kept the code (MOVED 12 host:port)."""
    code = getattr(e, "status_code", None)
    if isinstance(e, ResponseError) and code:
        return f"{code} {e}"
    if isinstance(e, ResponseError):
        return str(e)
    return f"{type(e).__name__}: {e}"


def outcome(e):
    if PROBE.unsure:
        return "info"
    if isinstance(e, (ConnectionError, TimeoutError)):
        return "fail" if PROBE.from_connect(e) else "info"
    if isinstance(e, (ResponseError, ClusterError, RedisClusterException)):
        return "fail"
    return "info"


def execute(client, request):
    args = request["args"]
    PROBE.begin(client.keyslot(request["key"]))
    reply = {"id": request["id"], "outcome": "ok", "value": None, "error": None}
    try:
        value = client.execute_command(*args)
        reply["value"] = to_json(value, PROBE.raw)
    except Exception as e:  # noqa: BLE001 - every library error becomes an outcome
        reply["outcome"] = outcome(e)
        reply["error"] = error_text(e)
        # The redirect it gave up on (the last CLUSTERDOWN, or the last MOVED/ASK/TRYAGAIN when
        # its TTL of redirects ran out) is not a hop it followed: gave_up names it.
        if isinstance(e, ClusterError) and PROBE.redirects:
            last = PROBE.redirects.pop()
            reply["gave_up"] = {
                "kind": last["kind"],
                "reply": PROBE.replies.pop().encode()[:200].decode("utf-8", "ignore"),
                "hops": len(PROBE.redirects),
            }
        # redis-py notes on the error the connection (or node) it last tried.
        tried = getattr(e, "connection", None)
        if getattr(tried, "host", None) and getattr(tried, "port", None):
            PROBE.node = _addr(tried)
    reply["node"] = PROBE.node
    reply["redirects"] = PROBE.redirects
    return reply


def write(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    line = sys.stdin.readline()
    if not line:
        return 0
    try:
        opened = json.loads(line)
        timeout = opened["timeout_ms"] / 1000.0
        nodes = []
        for seed in opened["seeds"]:
            host, port = seed.rsplit(":", 1)
            nodes.append(ClusterNode(host, int(port)))
        client = RedisCluster(
            startup_nodes=nodes, socket_timeout=timeout, socket_connect_timeout=timeout
        )
    except Exception as e:  # noqa: BLE001
        write({"type": "error", "error": f"{type(e).__name__}: {e}"})
        return 1
    write(
        {"type": "hello", "client": "redis-py", "version": redis.__version__, "redirects": "seen"}
    )
    for line in sys.stdin:
        if not line.endswith("\n"):
            break  # a request cut short: slotcheck is gone
        write(execute(client, json.loads(line)))
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
