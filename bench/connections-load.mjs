// The client side of bench/connections.mjs: opens many keep-alive connections to one target and
// keeps them open, steered by the harness over stdin/stdout. A process of its own, so its sockets
// and memory are not the harness's, and the harness can read the target's RSS while this one idles.
//
//   node bench/connections-load.mjs --port P --count N [--path /tiny] [--concurrency C] [--timeout-ms T]
//
// Protocol (one JSON object per line on stdout, after a word):
//   OPENED {...}   every connection was opened and got one full response (or failed: counted)
//   SECOND {...}   after stdin line "second": one more request on every connection that was held
//   CLOSED {...}   after stdin line "close" (or EOF on stdin: the harness is gone): all destroyed
// Each summary: { ok, failed, reasons: { reason: count }, ms, open }.
//
// Raw node:net and a minimal HTTP/1.1 reader, not node:http: an http.Agent or a parser per socket
// would make this process the bottleneck (and the bigger memory user) at 10,000 connections.
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    count: { type: 'string' },
    path: { type: 'string', default: '/tiny' },
    concurrency: { type: 'string', default: '200' },
    'timeout-ms': { type: 'string', default: '30000' },
  },
});
const port = Number(values.port);
const count = Number(values.count);
const concurrency = Number(values.concurrency);
const timeoutMs = Number(values['timeout-ms']);
for (const [name, n] of Object.entries({ port, count, concurrency, 'timeout-ms': timeoutMs })) {
  if (!Number.isInteger(n) || n < 1) {
    console.error(`connections-load: --${name} must be a positive integer`);
    process.exit(2);
  }
}
const REQUEST = Buffer.from(`GET ${values.path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: lcb-bench-connections\r\n\r\n`);
const HEAD_END = Buffer.from('\r\n\r\n');
const CHUNKED_END = Buffer.from('0\r\n\r\n');

/**
 * One client connection. `request()` resolves when a full 2xx response arrived with the connection
 * still usable, and rejects with a short reason otherwise (the reason is what the summary counts).
 */
class Client {
  constructor() {
    this.socket = null;
    this.buffer = Buffer.alloc(0);
    this.pending = null;
    this.closed = false;
    /** Why the connection is unusable although still open (bytes arrived while idle), or null. */
    this.broken = null;
  }

  open() {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      this.socket = socket;
      socket.setNoDelay(true);
      const timer = setTimeout(() => { socket.destroy(new Error('connect timeout')); }, timeoutMs);
      socket.once('connect', () => { clearTimeout(timer); resolve(); });
      socket.on('data', (chunk) => { this.onData(chunk); });
      socket.on('error', (err) => {
        clearTimeout(timer);
        this.fail(err.code ?? err.message);
        reject(new Error(err.code ?? err.message));
      });
      socket.on('close', () => {
        clearTimeout(timer);
        this.closed = true;
        this.fail('closed by the target');
        reject(new Error('closed by the target'));
      });
    });
  }

  request() {
    if (this.closed) return Promise.reject(new Error('closed by the target while idle'));
    if (this.broken !== null) return Promise.reject(new Error(this.broken));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.fail(`no response within ${timeoutMs} ms`); }, timeoutMs);
      this.pending = {
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (reason) => { clearTimeout(timer); reject(new Error(reason)); },
      };
      this.socket.write(REQUEST);
    });
  }

  /** Settles the pending request with `reason`; the connection is no use after this. */
  fail(reason) {
    const pending = this.pending;
    this.pending = null;
    pending?.reject(reason);
  }

  onData(chunk) {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    if (this.pending === null) {
      this.broken = 'unexpected bytes while idle';
      return;
    }
    const headEnd = this.buffer.indexOf(HEAD_END);
    if (headEnd < 0) return;
    const head = this.buffer.toString('latin1', 0, headEnd);
    const body = this.buffer.subarray(headEnd + 4);
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]);
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
    let complete;
    if (length !== undefined) complete = body.length >= Number(length);
    else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) complete = body.subarray(-CHUNKED_END.length).equals(CHUNKED_END);
    else complete = false; // a body delimited by close: the connection would not be kept
    if (!complete) return;
    this.buffer = Buffer.alloc(0);
    const pending = this.pending;
    this.pending = null;
    if (!(status >= 200 && status < 300)) pending.reject(`status ${status || 'unreadable'}`);
    else if (/\r\nconnection:\s*close/i.test(head)) pending.reject('response said Connection: close');
    else pending.resolve();
  }
}

/** Runs `fn(item)` for every item, at most `limit` at a time: paced so accept queues never overflow. */
async function forEachLimited(items, limit, fn) {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next];
      next += 1;
      await fn(item);
    }
  });
  await Promise.all(lanes);
}

/** Runs one phase over `clients`; those that fail are destroyed and dropped from `held`. */
async function phase(clients, step) {
  const started = Date.now();
  const reasons = {};
  const ok = [];
  await forEachLimited(clients, concurrency, async (client) => {
    try {
      await step(client);
      ok.push(client);
    } catch (err) {
      reasons[err.message] = (reasons[err.message] ?? 0) + 1;
      client.socket?.destroy();
    }
  });
  return { held: ok, summary: { ok: ok.length, failed: clients.length - ok.length, reasons, ms: Date.now() - started } };
}

function report(word, summary, clients) {
  const open = clients.filter((c) => !c.closed).length;
  process.stdout.write(`${word} ${JSON.stringify({ ...summary, open })}\n`);
}

const all = Array.from({ length: count }, () => new Client());
let held = all;

function closeAll() {
  for (const client of all) client.socket?.destroy();
  report('CLOSED', { ok: 0, failed: 0, reasons: {}, ms: 0 }, []);
  process.exit(0);
}

const first = await phase(held, async (client) => { await client.open(); await client.request(); });
held = first.held;
report('OPENED', first.summary, held);

const commands = createInterface({ input: process.stdin });
commands.on('close', closeAll);
for await (const line of commands) {
  if (line === 'second') {
    const second = await phase(held, (client) => client.request());
    held = second.held;
    report('SECOND', second.summary, held);
  } else if (line === 'close') {
    closeAll();
  } else {
    console.error(`connections-load: unknown command ${JSON.stringify(line)}`);
  }
}
