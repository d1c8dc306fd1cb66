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

Batches (protocol 2). A "pipeline" request runs through redis-py's cluster pipeline
(RedisCluster.pipeline(), execute(raise_on_error=False)): it writes each node's commands at once,
then resends every command answered MOVED/ASK/TRYAGAIN, or lost to a connection error or timeout,
one at a time through RedisCluster.execute_command. Each command has its own probe: the adapter
wraps the pipeline's per-node read (NodeCommands.read) to know whose reply is being read, and the
pipeline's one-at-a-time resend (parent_execute_command) to know which command is resent; the
hops each command met, first in the batch and then alone, are its own. When a node's batch lost
its connection (redis-py then marks every command of that node failed, also those already
answered, and resends them all), every command of that node is info, whatever its resend
returned. A "transaction" request runs through RedisCluster.pipeline(transaction=True) (MULTI,
the commands, EXEC on the key's node, redis-py 8.1.0's cluster transactions); it has one probe,
and its value is EXEC's replies, an error among them as {"error": text}. redis-py returns a status
reply inside EXEC as bytes (b"OK", no response callback); the adapter reads b"OK" as the status OK
for the commands whose reply is one (SET, MSET, ...).
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".site"))

import redis  # noqa: E402
from redis.cluster import ClusterNode, ClusterPipeline, NodeCommands, RedisCluster  # noqa: E402
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


class Current:
    """The probe that the wrapped connection reports to: the single operation's, or, inside a
    pipeline, the probe of the command whose reply is being read or which is being resent."""

    probe = Probe()
    commands = None  # inside a pipeline: each command's probe, by position
    resends = None  # inside a pipeline: the commands still to be resent one at a time, in order


def probe():
    return Current.probe


PROBE = Probe()
Current.probe = PROBE
_nc_read = NodeCommands.read
_nc_write = NodeCommands.write
_read_response = Connection.read_response
_send_packed_command = Connection.send_packed_command
_connect_check_health = Connection.connect_check_health


def _addr(conn):
    return f"{conn.host}:{conn.port}"


def _redirect(kind, slot, conn, to, e):
    frm = _addr(conn)
    probe().redirects.append({"kind": kind, "slot": slot, "from": frm, "to": to or frm})
    probe().replies.append(error_text(e))


def read_response(self, *args, **kwargs):
    try:
        reply = _read_response(self, *args, **kwargs)
    except AskError as e:  # MovedError is an AskError
        kind = "moved" if e.status_code == "MOVED" else "ask"
        _redirect(kind, e.slot_id, self, f"{e.host}:{e.port}", e)
        raise
    except TryAgainError as e:
        _redirect("tryagain", probe().slot, self, None, e)
        raise
    except ClusterDownError as e:  # CLUSTERDOWN, and MASTERDOWN, which redis-py handles alike
        _redirect("clusterdown", probe().slot, self, None, e)
        raise
    except (ConnectionError, TimeoutError):
        probe().unsure = True
        raise
    probe().node = _addr(self)
    probe().raw = reply
    return reply


def send_packed_command(self, *args, **kwargs):
    try:
        return _send_packed_command(self, *args, **kwargs)
    except (ConnectionError, TimeoutError) as e:
        if not probe().from_connect(e):
            probe().unsure = True
        raise


def connect_check_health(self, *args, **kwargs):
    try:
        return _connect_check_health(self, *args, **kwargs)
    except BaseException as e:
        probe().connect_errors.append(e)
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


def outcome(e, p):
    if p.unsure:
        return "info"
    if isinstance(e, (ConnectionError, TimeoutError)):
        return "fail" if p.from_connect(e) else "info"
    if isinstance(e, (ResponseError, ClusterError, RedisClusterException)):
        return "fail"
    return "info"


def failed(reply, p, e):
    """Fills `reply` for the library error `e` of the operation probe `p` watched."""
    reply["outcome"] = outcome(e, p)
    reply["error"] = error_text(e)
    # The redirect it gave up on (the last CLUSTERDOWN, or the last MOVED/ASK/TRYAGAIN when
    # its TTL of redirects ran out) is not a hop it followed: gave_up names it.
    if isinstance(e, ClusterError) and p.redirects:
        last = p.redirects.pop()
        reply["gave_up"] = {
            "kind": last["kind"],
            "reply": p.replies.pop().encode()[:200].decode("utf-8", "ignore"),
            "hops": len(p.redirects),
        }
    # redis-py notes on the error the connection (or node) it last tried.
    tried = getattr(e, "connection", None)
    if getattr(tried, "host", None) and getattr(tried, "port", None):
        p.node = _addr(tried)


def execute(client, request):
    args = request["args"]
    PROBE.begin(client.keyslot(request["key"]))
    reply = {"id": request["id"], "outcome": "ok", "value": None, "error": None}
    try:
        value = client.execute_command(*args)
        reply["value"] = to_json(value, PROBE.raw)
    except Exception as e:  # noqa: BLE001 - every library error becomes an outcome
        failed(reply, PROBE, e)
    reply["node"] = PROBE.node
    reply["redirects"] = PROBE.redirects
    return reply


def node_write(self):
    """NodeCommands.write inside a pipeline: what the write met is each of its commands'."""
    if Current.commands is None:
        return _nc_write(self)
    Current.resends = None  # a new round of the pipeline: its resends are computed again
    node, outer = Probe(), Current.probe
    Current.probe = node
    try:
        return _nc_write(self)
    finally:
        Current.probe = outer
        for c in self.commands:
            p = Current.commands[c.position]
            p.connect_errors += node.connect_errors
            p.unsure = p.unsure or node.unsure


def node_read(self):
    """NodeCommands.read inside a pipeline: each reply is read with its command's probe; a
    connection lost while reading leaves every command of the node unsure (redis-py marks them
    all failed, also those already answered, and resends them)."""
    if Current.commands is None:
        return _nc_read(self)
    parse, outer = self.parse_response, Current.probe
    pending = iter([c for c in self.commands if c.result is None])

    def parse_one(connection, command_name, **options):
        c = next(pending, None)
        Current.probe = outer if c is None else Current.commands[c.position]
        return parse(connection, command_name, **options)

    self.parse_response = parse_one
    try:
        return _nc_read(self)
    finally:
        self.parse_response = parse
        Current.probe = outer
        if any(isinstance(c.result, (ConnectionError, TimeoutError)) for c in self.commands):
            for c in self.commands:
                Current.commands[c.position].unsure = True


NodeCommands.write = node_write
NodeCommands.read = node_read


def watch_resends(pipe, stack, batch):
    """Makes the pipeline's one-at-a-time resends report to the resent command's probe: redis-py
    resends, in position order, every command whose batch result was a retryable error."""
    parent = pipe.parent_execute_command

    def resend(*args, **options):
        if Current.resends is None:
            retry = ClusterPipeline.ERRORS_ALLOW_RETRY
            ordered = sorted(stack, key=lambda c: c.position)
            Current.resends = [c for c in ordered if isinstance(c.result, retry)]
        c = Current.resends.pop(0) if Current.resends else None
        Current.probe = batch if c is None else Current.commands[c.position]
        try:
            return parent(*args, **options)
        finally:
            Current.probe = batch

    pipe.parent_execute_command = resend


def part(p, result):
    """One command's reply part from its probe and its result (a value or an exception)."""
    reply = {"outcome": "ok", "value": None, "error": None}
    if isinstance(result, Exception):
        failed(reply, p, result)
    else:
        try:
            reply["value"] = to_json(result, p.raw)
        except TypeError as e:
            reply["outcome"], reply["error"] = "info", str(e)
    reply["node"] = p.node
    reply["redirects"] = p.redirects
    return reply


def pipeline(client, request):
    commands = request["pipeline"]
    probes = []
    for c in commands:
        p = Probe()
        p.begin(client.keyslot(c["key"]))
        probes.append(p)
    batch = Probe()
    Current.probe, Current.commands, Current.resends = batch, probes, None
    try:
        pipe = client.pipeline()
        for c in commands:
            pipe.execute_command(*c["args"])
        watch_resends(pipe, list(pipe._execution_strategy.command_queue), batch)
        results = pipe.execute(raise_on_error=False)
    except Exception as e:  # noqa: BLE001 - the whole pipeline failed: each command says how
        results = [e] * len(commands)
    finally:
        Current.probe, Current.commands = PROBE, None
    for p in probes:
        p.connect_errors += batch.connect_errors
        p.unsure = p.unsure or batch.unsure
    replies = [part(p, r) for p, r in zip(probes, results)]
    return {"id": request["id"], "replies": replies}


def transaction(client, request):
    t = request["transaction"]
    p = Probe()
    p.begin(client.keyslot(t["key"]))
    Current.probe = p
    reply = {"id": request["id"], "outcome": "ok", "value": None, "error": None}
    try:
        pipe = client.pipeline(transaction=True)
        for args in t["commands"]:
            pipe.execute_command(*args)
        values = pipe.execute(raise_on_error=False)
        reply["value"] = [exec_item(args, v) for args, v in zip(t["commands"], values)]
    except Exception as e:  # noqa: BLE001 - every library error becomes an outcome
        failed(reply, p, e)
    finally:
        Current.probe = PROBE
    reply["node"] = p.node
    reply["redirects"] = p.redirects
    return reply


# Commands whose reply is the status +OK; redis-py's cluster transaction hands it back as b"OK",
# which is all a bulk string "OK" would be too, so the command tells them apart.
STATUS_COMMANDS = {"SET", "MSET", "SETEX", "PSETEX", "RENAME", "LSET", "LTRIM"}


def exec_item(args, value):
    """One of EXEC's replies as the protocol writes it."""
    if isinstance(value, Exception):
        return {"error": error_text(value)}
    if value == b"OK" and str(args[0]).upper() in STATUS_COMMANDS:
        return {"status": "OK"}
    return to_json(value, None)


def handle(client, request):
    if "pipeline" in request:
        return pipeline(client, request)
    if "transaction" in request:
        return transaction(client, request)
    return execute(client, request)


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
        {"type": "hello", "client": "redis-py", "version": redis.__version__, "redirects": "seen",
         "protocol": 2}
    )
    for line in sys.stdin:
        if not line.endswith("\n"):
            break  # a request cut short: slotcheck is gone
        write(handle(client, json.loads(line)))
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
