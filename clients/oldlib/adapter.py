#!/usr/bin/env python3
"""oldlib: a small cluster client of our own that can make one mistake of real old client
libraries on purpose, speaking slotcheck's adapter protocol (README.md, "Adding a client").

Pure Python 3 standard library: RESP2 over plain sockets, one connection per node. It keeps its
own slot map from CLUSTER SLOTS (CRC16 with hash tags), follows MOVED (updates the map, resends
to the new owner), follows ASK (sends ASKING and the command as one pipeline on one connection to
the importing node, leaves the map alone), backs off (20 ms, doubling to 500 ms) and resends on
TRYAGAIN and CLUSTERDOWN (refreshing the map after CLUSTERDOWN), and gives up on the 17th
redirect reply of one command (16 hops followed). After a timeout or a lost connection it
refreshes the slot map before its next command.

    python3 clients/oldlib/adapter.py --mistake none|ask-without-asking|ask-refresh|resend-incr

  none                a correct client;
  ask-without-asking  follows ASK to the importing node without ASKING (the target answers MOVED
                      back to the source, which answers ASK again, to the hop limit);
  ask-refresh         on ASK refreshes the slot map and resends to the owner it names, the source,
                      never visiting the ASK target (old redis-rs), to the hop limit;
  resend-incr         after a socket timeout on any command reconnects and resends it (up to 3
                      times) and reports the resent attempt's reply as the outcome, so an INCR may
                      be applied twice while the history says it was applied once.

Redirects are seen: every MOVED/ASK/TRYAGAIN/CLUSTERDOWN followed is a hop (from = the node that
sent it; to = the node it named, or the node retried for TRYAGAIN/CLUSTERDOWN).

Outcomes. fail, only when the command certainly did not execute: an error reply (WRONGTYPE,
NOSCRIPT, MASTERDOWN, ..., and the redirect reply given up on at the hop limit), or a connect
that failed before anything was sent, and in either case no earlier attempt of the command timed
out or lost its connection. info: everything else (a timeout, a connection lost after sending,
a reply that cannot be read) - except under resend-incr, whose resent attempt's reply is reported
as if it were the only one (the mistake).

Give-ups carry "gave_up": {"kind", "reply" (the redirect reply's text, at most 200 bytes), "hops"
(the hops followed before it)}; that reply is not a hop.
"""

import argparse
import json
import socket
import sys
import time

SLOTS = 16384
HOPS_MAX = 16
BACKOFF_FIRST_S = 0.02
BACKOFF_MAX_S = 0.5
RESENDS_MAX = 3
REPLY_BYTES_MAX = 200
MISTAKES = ("none", "ask-without-asking", "ask-refresh", "resend-incr")
VERSION = "1.0"


def _crc16_table():
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


CRC16_TABLE = _crc16_table()


def crc16(data):
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ CRC16_TABLE[((crc >> 8) ^ b) & 0xFF]
    return crc


def key_slot(key):
    """The key's hash slot: CRC16 of the hash tag (the first non-empty {...}) or the key."""
    k = key.encode()
    start = k.find(b"{")
    if start >= 0:
        end = k.find(b"}", start + 1)
        if end > start + 1:
            k = k[start + 1 : end]
    return crc16(k) % SLOTS


class ErrorReply:
    """A RESP error reply (`-MOVED 12 host:port`): the server answered and did not run it."""

    def __init__(self, text):
        self.text = text
        self.word = text.split(" ", 1)[0]


class Lost(Exception):
    """The connection failed or timed out after the request may have been sent."""

    def __init__(self, text, timed_out):
        super().__init__(text)
        self.timed_out = timed_out


class Conn:
    """One connection to one node; RESP2 requests are written as arrays of bulk strings."""

    def __init__(self, addr, timeout_s):
        host, port = addr.rsplit(":", 1)
        self.addr = addr
        self.sock = socket.create_connection((host, int(port)), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def close(self):
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass

    def request(self, commands):
        """Sends `commands` as one pipeline and returns their replies; raises Lost."""
        out = bytearray()
        for words in commands:
            out += b"*%d\r\n" % len(words)
            for w in words:
                b = w.encode()
                out += b"$%d\r\n%s\r\n" % (len(b), b)
        try:
            self.sock.sendall(out)
            return [self.read() for _ in commands]
        except socket.timeout:
            raise Lost(f"timeout waiting for {self.addr}", True) from None
        except (OSError, EOFError, ValueError) as e:
            raise Lost(f"connection to {self.addr} lost: {type(e).__name__}: {e}", False) from None

    def line(self):
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise EOFError("connection closed")
        return line[:-2]

    def read(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return {"status": rest.decode("utf-8", "replace")}
        if kind == b"-":
            return ErrorReply(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.reader.read(n + 2)
            if len(data) != n + 2:
                raise EOFError("connection closed")
            return data[:-2].decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ValueError(f"not a RESP2 reply: {line[:40]!r}")


def resolve(to, frm):
    """A redirect target with an empty host (`:30002`) means the sender's host."""
    if to.startswith(":"):
        return frm.rsplit(":", 1)[0] + to
    return to


class Client:
    def __init__(self, seeds, timeout_s, mistake):
        self.seeds = list(seeds)
        self.timeout_s = timeout_s
        self.mistake = mistake
        self.owners = [None] * SLOTS
        self.conns = {}
        self.stale = False

    def conn(self, addr):
        """The connection to `addr`, opened if need be; raises OSError when it cannot connect."""
        c = self.conns.get(addr)
        if c is None:
            c = Conn(addr, self.timeout_s)
            self.conns[addr] = c
        return c

    def drop(self, addr):
        c = self.conns.pop(addr, None)
        if c is not None:
            c.close()

    def refresh(self):
        """Replaces the slot map by CLUSTER SLOTS from the first seed or known node that answers."""
        known = [a for a in dict.fromkeys(self.owners) if a and a not in self.seeds]
        last = "no seeds"
        for addr in self.seeds + known:
            try:
                (reply,) = self.conn(addr).request([["CLUSTER", "SLOTS"]])
            except (OSError, Lost) as e:
                self.drop(addr)
                last = f"{addr}: {e}"
                continue
            if not isinstance(reply, list) or not reply:
                last = f"{addr}: {getattr(reply, 'text', reply)!r}"
                continue
            owners = [None] * SLOTS
            for entry in reply:
                start, end, master = entry[0], entry[1], entry[2]
                host = master[0] or addr.rsplit(":", 1)[0]
                for s in range(start, end + 1):
                    owners[s] = f"{host}:{master[1]}"
            self.owners = owners
            return None
        return last

    def owner(self, slot):
        if self.owners[slot] is None:
            self.refresh()
        return self.owners[slot]

    def execute(self, key, args):
        slot = key_slot(key)
        if self.stale:
            self.stale = False
            self.refresh()
        hops = []
        reply = {"outcome": "ok", "value": None, "error": None, "node": None, "redirects": hops}

        def finish(outcome, error, node):
            reply.update(outcome=outcome, error=error, node=node)
            return reply

        addr = self.owner(slot)
        if addr is None:
            return finish("fail", f"no node owns slot {slot}", None)
        asking = False
        resends = 0  # attempts resent after a timeout (resend-incr): the first may have run
        backoff_s = BACKOFF_FIRST_S
        while True:
            commands = [["ASKING"], args] if asking else [args]
            try:
                answers = self.conn(addr).request(commands)
            except OSError as e:  # the connect failed: nothing was sent this time
                self.drop(addr)
                self.stale = True
                return finish("info" if resends else "fail", f"connect to {addr}: {e}", addr)
            except Lost as e:
                self.drop(addr)
                self.stale = True
                if self.mistake == "resend-incr" and e.timed_out and resends < RESENDS_MAX:
                    resends += 1
                    continue  # the mistake: resend, and report what the resent attempt gets
                return finish("info", str(e), addr)
            answer = answers[-1]
            if not isinstance(answer, ErrorReply):
                reply["value"] = answer
                return finish("ok", None, addr)
            text = answer.text
            kind = {"MOVED": "moved", "ASK": "ask", "TRYAGAIN": "tryagain",
                    "CLUSTERDOWN": "clusterdown"}.get(answer.word)
            redirect = None
            if kind in ("moved", "ask"):
                parts = text.split(" ")
                if len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < SLOTS:
                    redirect = (int(parts[1]), resolve(parts[2], addr))
                else:
                    kind = None
            if kind is None:
                if answer.word in ("READONLY", "MASTERDOWN"):
                    self.stale = True  # a failover moved the master
                # Under resend-incr this reply may be a resent attempt's: reporting it as the
                # outcome is the mistake.
                return finish("fail", text, addr)
            if len(hops) >= HOPS_MAX:
                cut = text.encode()[:REPLY_BYTES_MAX].decode("utf-8", "ignore")
                reply["gave_up"] = {"kind": kind, "reply": cut, "hops": len(hops)}
                error = f"Too many Cluster redirections ({len(hops)} hops): {text}"
                return finish("fail", error, addr)
            asking = False
            if kind == "moved":
                hop_slot, to = redirect
                self.owners[hop_slot] = to
                nxt = to
            elif kind == "ask":
                hop_slot, to = redirect
                if self.mistake == "ask-refresh":
                    self.refresh()
                    nxt = self.owners[slot] or addr
                else:
                    asking = self.mistake != "ask-without-asking"
                    nxt = to
            else:
                time.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, BACKOFF_MAX_S)
                if kind == "clusterdown":
                    self.refresh()
                hop_slot = slot
                nxt = self.owners[slot] or addr
                to = nxt
            hops.append({"kind": kind, "slot": hop_slot, "from": addr, "to": to})
            addr = nxt


def write(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mistake", choices=MISTAKES, default="none")
    mistake = parser.parse_args().mistake
    line = sys.stdin.readline()
    if not line:
        return 0
    try:
        opened = json.loads(line)
        client = Client(opened["seeds"], opened["timeout_ms"] / 1000.0, mistake)
        why = client.refresh()
        if why is not None:
            raise RuntimeError(f"no node answered CLUSTER SLOTS: {why}")
    except Exception as e:  # noqa: BLE001
        write({"type": "error", "error": f"{type(e).__name__}: {e}"})
        return 1
    write({"type": "hello", "client": "oldlib", "version": f"{VERSION} ({mistake})",
           "redirects": "seen"})
    for line in sys.stdin:
        if not line.endswith("\n"):
            break  # a request cut short: slotcheck is gone
        request = json.loads(line)
        try:
            reply = client.execute(request["key"], request["args"])
        except Exception as e:  # noqa: BLE001 - a bug of ours: unknown whether it ran
            reply = {"outcome": "info", "value": None, "error": f"{type(e).__name__}: {e}",
                     "node": None, "redirects": []}
        write({"id": request["id"], **reply})
    return 0


if __name__ == "__main__":
    sys.exit(main())
