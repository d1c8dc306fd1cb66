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

import { createRequire } from 'node:module';
import diagnostics from 'node:diagnostics_channel';
import readline from 'node:readline';
import redis from 'redis';

const { createCluster, CHANNELS, RESP_TYPES, ErrorReply, ClientClosedError, TimeoutError } = redis;
const VERSION = createRequire(import.meta.url)('redis/package.json').version;
const READ_COMMANDS = new Set(['GET', 'MGET', 'EXISTS', 'STRLEN', 'GETRANGE', 'TTL', 'PTTL', 'TYPE',
  'LRANGE', 'LLEN', 'HGET', 'HGETALL', 'SMEMBERS', 'SCARD', 'ZRANGE', 'ZCARD', 'EVAL_RO']);

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
    cluster = createCluster({ rootNodes, defaults: { socket: { connectTimeout: timeout } } });
    // Without a listener an 'error' event (a node's socket failing) would end the process.
    cluster.on('error', (err) => process.stderr.write(`node-redis: ${err?.message}\n`));
    await cluster.connect();
  } catch (err) {
    write({ type: 'error', error: `${err?.name}: ${err?.message}` });
    return 1;
  }
  write({ type: 'hello', client: 'node-redis', version: VERSION, redirects: 'seen' });
  for (let line = await lines.next(); !line.done; line = await lines.next()) {
    write(await execute(cluster, JSON.parse(line.value), timeout));
  }
  await cluster.close().catch(() => {});
  return 0;
}

process.exit(await main());
