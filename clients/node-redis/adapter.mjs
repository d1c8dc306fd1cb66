// slotcheck adapter for node-redis's cluster client (protocol: README.md, "Adding a client").
//
// Reads one JSON request a line on stdin and writes one JSON reply a line on stdout, in order;
// exits at end of input. The cluster runs with node-redis's defaults (16 redirects, RESP2, no
// replicas) except the connect timeout and the command timeout, both the open line's timeout_ms.
// Each request goes out as cluster.sendCommand(key, isReadonly, args). node-redis's command
// timeout ends when the command is written (a written command waits for its reply as long as the
// socket lives), so the adapter also stops waiting for a reply 100 ms after the library's timeout
// and reports `info` (`TimeoutError: no reply within N ms`); the command stays queued in the
// library, whose late reply is dropped.
//
// Redirects are seen: node-redis follows MOVED and ASK inside the cluster client, and publishes
// every command attempt on its diagnostics tracing channel `node-redis:command` (CHANNELS.
// TRACE_COMMAND, exported by the library) with the node it went to; an attempt that ends in a
// MOVED or ASK error reply is a hop (from = that node). node-redis does not retry TRYAGAIN or
// CLUSTERDOWN: they end the operation as error replies and are not hops.
//
// Outcomes. fail, only when the request certainly did not execute: the final error is an error
// reply from the server (node-redis resends only after MOVED/ASK, which are replies too, so every
// attempt was answered; past 16 redirects it throws the last MOVED/ASK reply, which is then not a
// hop it followed), "Cannot find node" after an ASK (the importing node was never sent the
// command), ClientClosedError (the command was refused before it was queued), or the library's
// TimeoutError (it fires only while the command waits to be written, e.g. for a node that went
// away, and takes it off the queue). info: everything else - the adapter's timeout after the
// write, a socket closed or reset while the command was written, any unexpected error.
//
// Give-ups carry "gave_up" (kind, the redirect reply's text, the hops followed before it):
//   - past maxCommandRedirections (16) node-redis throws the 17th MOVED/ASK reply itself;
//   - "Cannot find node X" after an ASK to a node its slot map does not know: that ASK;
//   - a TRYAGAIN or CLUSTERDOWN reply, which node-redis never retries: that reply.
// The reply given up on is not a hop: it leaves "redirects".
//
// Batches (protocol 2). node-redis's cluster client pipelines and runs transactions per routing
// key: cluster.multi(key) sends every command it holds to the node of that key's slot, as a
// pipeline (execAsPipeline) or as MULTI/EXEC (exec), and follows no MOVED or ASK. So a
// "pipeline" request becomes one cluster.multi(key).execAsPipeline() per slot among its commands,
// all issued at once (node-redis writes what is queued for one node together). A group answered
// whole gives each command its value. A group rejected: node-redis rejects the whole pipeline
// with the first error reply and drops the other replies, so a group of one command gets that
// command's outcome (a MOVED/ASK/TRYAGAIN/CLUSTERDOWN it did not follow is a give-up, as above),
// and every command of a larger group is info (which of them ran is unknown). A "transaction"
// request is cluster.multi(key) with its commands and exec(): one reply, EXEC's replies, an error
// among them as {"error": text} (node-redis reads EXEC's replies as strings without the type
// mapping, so the command tells a status OK from a bulk string; see execItem).

import { createRequire } from 'node:module';
import diagnostics from 'node:diagnostics_channel';
import readline from 'node:readline';
import redis from 'redis';

const {
  createCluster, CHANNELS, RESP_TYPES, ErrorReply, MultiErrorReply, ClientClosedError, TimeoutError,
} = redis;
const require = createRequire(import.meta.url);
const VERSION = require('redis/package.json').version;
// The key-slot function node-redis itself routes by (a dependency of @redis/client).
const keySlot = require('cluster-key-slot');
const READ_COMMANDS = new Set(['GET', 'MGET', 'EXISTS', 'STRLEN', 'GETRANGE', 'TTL', 'PTTL', 'TYPE',
  'LRANGE', 'LLEN', 'HGET', 'HGETALL', 'SMEMBERS', 'SCARD', 'ZRANGE', 'ZCARD', 'EVAL_RO']);

// Bulk strings as Buffers, so that toJson tells them from simple strings (+OK).
const TYPES = { [RESP_TYPES.BLOB_STRING]: Buffer };

// How much longer than the library's own timeout the adapter waits for a reply.
const REPLY_GRACE_MS = 100;

// What the tracing channel showed during the current operation.
const probe = { command: null, redirects: [], replies: [], node: null };

// At most 200 bytes of a reply text (the history format's bound), on a character boundary.
function cut(text) {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= 200) return text;
  return bytes.subarray(0, 200).toString('utf8').replace(/\uFFFD$/, '');
}

function resolve(to, from) {
  // A redirect with an empty host (`:30002`) means the sender's host.
  return to.startsWith(':') ? from.slice(0, from.lastIndexOf(':')) + to : to;
}

diagnostics.tracingChannel(CHANNELS.TRACE_COMMAND).subscribe({
  error(ctx) {
    const text = String(ctx.error?.message ?? '');
    const [word, slot, to] = text.split(' ');
    if ((word === 'MOVED' || word === 'ASK') && to !== undefined) {
      const from = `${ctx.serverAddress}:${ctx.serverPort}`;
      const hop = { kind: word.toLowerCase(), slot: Number(slot), from, to: resolve(to, from) };
      probe.redirects.push(hop);
      probe.replies.push(text);
    }
  },
  asyncEnd(ctx) {
    if (ctx.command === probe.command) probe.node = `${ctx.serverAddress}:${ctx.serverPort}`;
  },
});

function toJson(value) {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return value.toString('utf8'); // a bulk string
  if (typeof value === 'string') return { status: value }; // a simple string (+OK)
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map(toJson);
  throw new Error(`unexpected reply: ${String(value)}`);
}

class ReplyTimeout extends Error {
  constructor(ms) {
    super(`no reply within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

// The reply, or a ReplyTimeout after `ms`; a reply or error that comes later is dropped.
function within(promise, ms) {
  promise.catch(() => {});
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new ReplyTimeout(ms)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

// `TimeoutError: no reply within 400 ms`; the class name where the library leaves `name` as Error.
function describe(err) {
  const name = err?.name && err.name !== 'Error' ? err.name : err?.constructor?.name ?? 'Error';
  return err?.message ? `${name}: ${err.message}` : name;
}

function outcome(err) {
  if (err instanceof ErrorReply) return 'fail';
  if (err instanceof ClientClosedError || err instanceof TimeoutError) return 'fail';
  if (err instanceof Error && err.message.startsWith('Cannot find node')) return 'fail';
  return 'info';
}

// What the library gave up on (see the header), taking that reply off the hops; else null.
function givenUp(err) {
  const message = String(err?.message ?? '');
  let kind = null;
  let text = message;
  if (err instanceof ErrorReply && /^(MOVED|ASK) /.test(message)) {
    // Past its redirect limit node-redis throws the last MOVED/ASK: a hop it did not follow.
    kind = message.startsWith('MOVED') ? 'moved' : 'ask';
    probe.redirects.pop();
    probe.replies.pop();
  } else if (err instanceof ErrorReply && /^(TRYAGAIN|CLUSTERDOWN)\b/.test(message)) {
    kind = message.startsWith('TRYAGAIN') ? 'tryagain' : 'clusterdown';
  } else if (message.startsWith('Cannot find node') && probe.redirects.at(-1)?.kind === 'ask') {
    kind = 'ask';
    probe.redirects.pop();
    text = probe.replies.pop();
  }
  if (kind === null) return null;
  return { kind, reply: cut(text), hops: probe.redirects.length };
}

async function execute(cluster, request, timeout) {
  const args = request.args;
  probe.command = String(args[0]).toUpperCase();
  probe.redirects = [];
  probe.replies = [];
  probe.node = null;
  const reply = { id: request.id, outcome: 'ok', value: null, error: null };
  const options = { timeout, typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } };
  let value;
  try {
    const sent = cluster.sendCommand(request.key, READ_COMMANDS.has(probe.command), args, options);
    value = await within(sent, timeout + REPLY_GRACE_MS);
  } catch (err) {
    reply.outcome = outcome(err);
    reply.error = err instanceof ErrorReply ? err.message : describe(err);
    const gaveUp = givenUp(err);
    if (gaveUp) reply.gave_up = gaveUp;
  }
  if (reply.outcome === 'ok') {
    try {
      reply.value = toJson(value);
    } catch (err) {
      reply.outcome = 'info'; // it happened, but its result cannot be told
      reply.error = err.message;
    }
  }
  reply.node = probe.node;
  reply.redirects = probe.redirects;
  return reply;
}

function resetProbe(command) {
  probe.command = command;
  probe.redirects = [];
  probe.replies = [];
  probe.node = null;
}

// A reply part for an operation that ended with `err` (the probe holds what it met).
function failedPart(err) {
  const part = { outcome: outcome(err), value: null, error: null };
  part.error = err instanceof ErrorReply ? err.message : describe(err);
  const gaveUp = givenUp(err);
  if (gaveUp) part.gave_up = gaveUp;
  return part;
}

function okPart(value) {
  try {
    return { outcome: 'ok', value: toJson(value), error: null };
  } catch (err) {
    return { outcome: 'info', value: null, error: err.message }; // it happened; its result is unknown
  }
}

// What a command of a pipeline gave up on: node-redis follows no redirect in a pipeline, so a
// MOVED/ASK/TRYAGAIN/CLUSTERDOWN reply ends it after 0 hops; else null.
function pipelineGaveUp(err) {
  const match = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/.exec(String(err?.message ?? ''));
  if (!(err instanceof ErrorReply) || !match) return null;
  return { kind: match[1].toLowerCase(), reply: cut(err.message), hops: 0 };
}

// One slot's commands as one node-redis pipeline; a part per command.
async function pipelineGroup(cluster, commands, timeout) {
  const multi = cluster.multi(commands[0].key);
  for (const c of commands) {
    multi.addCommand(c.key, READ_COMMANDS.has(String(c.args[0]).toUpperCase()), c.args);
  }
  try {
    const values = await within(multi.execAsPipeline(), timeout + REPLY_GRACE_MS);
    return values.map((v) => ({ ...okPart(v), node: null, redirects: [] }));
  } catch (err) {
    if (commands.length === 1) {
      const part = { outcome: outcome(err), value: null, node: null, redirects: [] };
      part.error = err instanceof ErrorReply ? err.message : describe(err);
      const gaveUp = pipelineGaveUp(err);
      if (gaveUp) part.gave_up = gaveUp;
      return [part];
    }
    const error = `node-redis rejected the whole pipeline of ${commands.length} commands on one ` +
      `error, dropping the other replies (which ran is unknown): ${describe(err)}`;
    return commands.map(() => ({ outcome: 'info', value: null, error, node: null, redirects: [] }));
  }
}

async function pipeline(cluster, request, timeout) {
  const groups = new Map();
  request.pipeline.forEach((c, i) => {
    const slot = keySlot(c.key);
    if (!groups.has(slot)) groups.set(slot, []);
    groups.get(slot).push({ ...c, i });
  });
  const replies = new Array(request.pipeline.length);
  const sent = [...groups.values()].map(async (commands) => {
    const parts = await pipelineGroup(cluster, commands, timeout);
    commands.forEach((c, j) => { replies[c.i] = parts[j]; });
  });
  await Promise.all(sent);
  return { id: request.id, replies };
}

// Commands whose reply is the status +OK. node-redis reads EXEC's replies without the type
// mapping, so a status and a bulk string both come back as a JS string: the command tells them
// apart.
const STATUS_COMMANDS = new Set(['SET', 'MSET', 'SETEX', 'PSETEX', 'RENAME', 'LSET', 'LTRIM']);

// One of EXEC's replies as the protocol writes it.
function execItem(args, v) {
  if (v instanceof ErrorReply) return { error: v.message };
  if (typeof v === 'string') {
    return v === 'OK' && STATUS_COMMANDS.has(String(args[0]).toUpperCase()) ? { status: 'OK' } : v;
  }
  return toJson(v);
}

async function transaction(cluster, request, timeout) {
  const t = request.transaction;
  resetProbe('EXEC');
  const reply = { id: request.id, outcome: 'ok', value: null, error: null };
  try {
    const multi = cluster.multi(t.key);
    for (const args of t.commands) {
      multi.addCommand(t.key, READ_COMMANDS.has(String(args[0]).toUpperCase()), args);
    }
    const values = await within(multi.exec(), timeout + REPLY_GRACE_MS);
    reply.value = values.map((v, i) => execItem(t.commands[i], v));
  } catch (err) {
    if (err instanceof MultiErrorReply) {
      // EXEC ran; some of its commands answered with an error.
      reply.value = err.replies.map((v, i) => execItem(t.commands[i], v));
    } else {
      Object.assign(reply, err instanceof TypeError ? { outcome: 'info', error: err.message } : failedPart(err));
    }
  }
  reply.node = probe.node;
  reply.redirects = probe.redirects;
  return reply;
}

function handle(cluster, request, timeout) {
  if (request.pipeline) return pipeline(cluster, request, timeout);
  if (request.transaction) return transaction(cluster, request, timeout);
  return execute(cluster, request, timeout);
}

function write(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function main() {
  const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  const lines = input[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) return 0;
  let cluster;
  let timeout;
  try {
    const opened = JSON.parse(first.value);
    timeout = opened.timeout_ms;
    const rootNodes = opened.seeds.map((seed) => {
      const at = seed.lastIndexOf(':');
      return { socket: { host: seed.slice(0, at), port: Number(seed.slice(at + 1)) } };
    });
    // Bulk strings as Buffers on every node client too: a pipeline or transaction reads its
    // replies with the node client's own type mapping.
    const defaults = { socket: { connectTimeout: timeout }, commandOptions: { typeMapping: TYPES } };
    cluster = createCluster({ rootNodes, defaults });
    // Without a listener an 'error' event (a node's socket failing) would end the process.
    cluster.on('error', (err) => process.stderr.write(`node-redis: ${err?.message}\n`));
    await cluster.connect();
  } catch (err) {
    write({ type: 'error', error: `${err?.name}: ${err?.message}` });
    return 1;
  }
  write({ type: 'hello', client: 'node-redis', version: VERSION, redirects: 'seen', protocol: 2 });
  for (let line = await lines.next(); !line.done; line = await lines.next()) {
    write(await handle(cluster, JSON.parse(line.value), timeout));
  }
  await cluster.close().catch(() => {});
  return 0;
}

process.exit(await main());
