/**
 * The fault table of issue #13, measured: 300 GET/s (open loop, like a steady client population)
 * over 4 fake upstreams, one of which turns bad after 1 s. Prints one line per row; with the
 * default duration (4 s a row, 6 s for the restart row) it asserts the goals. A throughput and
 * tail check, so a soak suite (`make soak`, run once in CI), not part of `make test`.
 * `FAULT_TABLE_SECONDS=15` runs 4,500 requests a row, as the issue's table counts them:
 *   FAULT_TABLE_SECONDS=15 npx mocha --config .mocharc.soak.json
 * `FAULT_TABLE_ASSERT=0` only prints (to measure a build without the fixes). The client gives up
 * after 5 s (a client timeout); "truncated" = a 200 whose body ended early.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Agent, request } from 'undici';
import type { Config } from '../../src/config.js';
import { errorCode, evenly, startOpenLoopRun } from '../../src/lab/open-loop.js';
import type { OpenLoopRecord } from '../../src/lab/open-loop.js';
import { parseMetrics, startBalancer, testConfig, waitFor } from '../helpers.js';
import type { Running } from '../helpers.js';

const SECONDS = Number(process.env.FAULT_TABLE_SECONDS ?? 4);
const ASSERT = process.env.FAULT_TABLE_ASSERT !== '0';
const RATE = 300;
const FAULT_AT_MS = 1000;
/** A client that gives up after this long counts the request as timed out. */
const CLIENT_TIMEOUT_MS = 5000;
const BODY = Buffer.alloc(2048, 'x');

type Mode = 'ok' | 'reset-body' | '503' | 'hang';

/** A fake upstream on a fixed port (so it can be restarted there) whose mode the test switches. */
class FakeUpstream {
  mode: Mode = 'ok';
  server: Server | undefined;
  port = 0;
  private readonly sockets = new Set<Socket>();

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      this.handle(req, res);
    });
    server.keepAliveTimeout = 60_000;
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  get id(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Killed: the listener and every connection go at once (like SIGKILL). */
  async kill(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => {
      resolve();
    }));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    // Served only to show what a wrong --health-path does: every probe fails, traffic would not.
    if (req.url === '/nope') {
      res.writeHead(404, { 'content-length': 0 }).end();
      return;
    }
    switch (this.mode) {
      case 'ok':
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY.length }).end(BODY);
        return;
      case '503':
        res.writeHead(503, { 'content-type': 'text/plain', 'content-length': 11 }).end('overloaded\n');
        return;
      case 'hang':
        return;
      case 'reset-body':
        // Headers and a first part of the body, then the connection is reset: every response, /healthz too.
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY.length });
        res.write(BODY.subarray(0, 512), () => {
          req.socket.resetAndDestroy();
        });
        return;
    }
  }
}

interface Tally {
  sent: number;
  ok: number;
  truncated: number;
  timeouts: number;
  byStatus: Map<number, number>;
  errors: Map<string, number>;
  /** The slowest request, counted from its due time. */
  maxMs: number;
  /** When each truncated request left (performance.now()), to compare with when its upstream was ejected. */
  truncatedSentAt: number[];
}

type FaultRecord = OpenLoopRecord & { failure?: 'timeout' | 'truncated' | 'error' };

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'TimeoutError']);

/** Open-loop load on the project's engine: RATE GET /img a second for `durationMs`, whatever the answers. */
async function drive(url: string, durationMs: number): Promise<Tally> {
  const agent = new Agent({ connections: 256, headersTimeout: CLIENT_TIMEOUT_MS, bodyTimeout: CLIENT_TIMEOUT_MS, keepAliveTimeout: 4000 });
  // The engine's times count from its start, within microseconds of this.
  const startedAt = performance.now();
  const run = startOpenLoopRun<FaultRecord>({
    schedule: evenly(RATE, durationMs),
    durationMs,
    record: (times) => times,
    send: async (record) => {
      const res = await agent.request({ origin: url, path: '/img', method: 'GET', signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS) });
      record.status = res.statusCode;
      const body = await res.body.arrayBuffer();
      if (res.statusCode === 200 && body.byteLength !== BODY.length) record.failure = 'truncated';
    },
    // An error once the headers came (the status is noted) is a body cut short.
    failed: (record, err) => {
      record.detail = errorCode(err);
      record.failure = TIMEOUT_CODES.has(record.detail) ? 'timeout' : record.status === undefined ? 'error' : 'truncated';
    },
  });
  const records = await run.done;
  await agent.close();
  return tallyOf(records, startedAt);
}

function tallyOf(records: readonly FaultRecord[], startedAt: number): Tally {
  const tally: Tally = { sent: records.length, ok: 0, truncated: 0, timeouts: 0, byStatus: new Map(), errors: new Map(), maxMs: 0, truncatedSentAt: [] };
  for (const r of records) {
    tally.maxMs = Math.max(tally.maxMs, r.latencyMs);
    if (r.failure === 'timeout') tally.timeouts++;
    else if (r.failure === 'truncated') {
      tally.truncated++;
      tally.truncatedSentAt.push(startedAt + r.sentAt);
    }
    else if (r.failure === 'error') tally.errors.set(r.detail ?? '', (tally.errors.get(r.detail ?? '') ?? 0) + 1);
    else if (r.status === 200) tally.ok++;
    else if (r.status !== undefined) tally.byStatus.set(r.status, (tally.byStatus.get(r.status) ?? 0) + 1);
  }
  return tally;
}

function describeTally(t: Tally): string {
  const statuses = [...t.byStatus].map(([s, n]) => `${n}×${s}`).join(' ');
  const errors = [...t.errors].map(([e, n]) => `${n}×${e}`).join(' ');
  return `sent ${t.sent}, ok ${t.ok}, truncated ${t.truncated}, client timeouts ${t.timeouts}${statuses ? `, ${statuses}` : ''}${errors ? `, errors ${errors}` : ''}, slowest ${Math.round(t.maxMs)} ms`;
}

/** First time (ms after `since`) `check` holds, polled every 5 ms until `limitMs`; undefined if never. */
async function timeUntil(check: () => boolean, since: number, limitMs: number): Promise<number | undefined> {
  for (;;) {
    if (check()) return Math.round(performance.now() - since);
    if (performance.now() - since > limitMs) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const ms = (v: number | undefined): string => (v === undefined ? 'never' : `${v} ms`);

describe('fault table (issue #13): 300 GET/s over 4 upstreams, one turns bad', function () {
  this.timeout(120_000);
  let lb: Running | undefined;
  let upstreams: FakeUpstream[] = [];
  const results: string[] = [];

  const setUp = async (overrides: Partial<Config> = {}, argv: readonly string[] = [], waitUp = true): Promise<Running> => {
    upstreams = Array.from({ length: 4 }, () => new FakeUpstream());
    for (const u of upstreams) await u.start();
    // Default settings (active checks on, every default as shipped) on one data-path thread.
    lb = await startBalancer(testConfig(upstreams.map((u) => u.port), { shutdownTimeoutMs: 300, ...overrides }, ['--health-interval-ms', '1000', ...argv]));
    const running = lb;
    if (waitUp) await waitFor(() => running.balancer.registry.list().every((u) => u.state === 'up'), 5000, 'every upstream up');
    return running;
  };
  afterEach(async () => {
    await lb?.balancer.stop();
    lb = undefined;
    for (const u of upstreams) await u.kill();
  });
  after(() => {
    console.log(`\n      fault table (${RATE} GET/s, ${SECONDS} s a row):\n${results.map((r) => `      ${r}`).join('\n')}\n`);
  });

  const stateOf = (u: FakeUpstream): string | undefined => lb?.balancer.registry.get(u.id)?.state;

  it('reset body: the upstream sends headers and part of the body, then resets (every response, /healthz too)', async () => {
    const running = await setUp();
    const bad = upstreams[0];
    assert.ok(bad);
    const load = drive(running.url, SECONDS * 1000);
    await new Promise((resolve) => setTimeout(resolve, FAULT_AT_MS));
    bad.mode = 'reset-body';
    const faultAt = performance.now();
    const ejected = await timeUntil(() => stateOf(bad) === 'down', faultAt, SECONDS * 1000);
    // Back in rotation before the end would mean a probe passed on a broken body.
    const readmitted = ejected === undefined ? undefined : await timeUntil(() => stateOf(bad) === 'up', faultAt, SECONDS * 1000 - FAULT_AT_MS);
    const t = await load;
    results.push(`reset body   | ejected after ${ms(ejected)}, back in rotation ${readmitted === undefined ? 'no' : `after ${readmitted} ms`} | ${describeTally(t)}`);
    if (!ASSERT) return;
    assert.ok(ejected !== undefined && ejected <= 500, `ejected after ${ms(ejected)}`);
    assert.equal(readmitted, undefined, 'a probe let the broken upstream back in');
    // What was sent to it before it was ejected can be cut (5 failures eject it, plus whatever
    // was already on its way: a 233 ms stall of this one process, balancer and client alike, once
    // let 7 through). Once ejected, nothing more reaches it.
    const ejectedAt = faultAt + ejected;
    const afterEjection = t.truncatedSentAt.filter((at) => at > ejectedAt);
    assert.deepEqual(afterEjection.map((at) => Math.round(at - ejectedAt)), [], `${afterEjection.length} of ${t.truncated} truncated requests were sent after the ejection`);
  });

  it('503: the upstream starts answering 503 to everything', async () => {
    const running = await setUp();
    const bad = upstreams[1];
    assert.ok(bad);
    const load = drive(running.url, SECONDS * 1000);
    await new Promise((resolve) => setTimeout(resolve, FAULT_AT_MS));
    bad.mode = '503';
    const t = await load;
    results.push(`503          | ${describeTally(t)}`);
    if (!ASSERT) return;
    assert.equal(t.byStatus.get(503) ?? 0, 0, describeTally(t));
  });

  it('hang: the upstream accepts and never answers (default settings)', async () => {
    const running = await setUp();
    const bad = upstreams[2];
    assert.ok(bad);
    const load = drive(running.url, SECONDS * 1000);
    await new Promise((resolve) => setTimeout(resolve, FAULT_AT_MS));
    bad.mode = 'hang';
    const faultAt = performance.now();
    const ejected = await timeUntil(() => stateOf(bad) === 'down', faultAt, SECONDS * 1000);
    const t = await load;
    const metrics = parseMetrics(await (await request(`${running.adminUrl}/metrics`)).body.text());
    const moved = metrics.get(`lb_upstream_failures_total{upstream="${bad.id}",reason="ejected"}`) ?? 0;
    results.push(`hang         | ejected after ${ms(ejected)}, ${moved} request(s) moved off it then | ${describeTally(t)}`);
    if (!ASSERT) return;
    assert.equal(t.timeouts, 0, describeTally(t));
    assert.equal(t.ok, t.sent, describeTally(t));
  });

  it('killed, restarted after 3 s: back in rotation quickly', async () => {
    const running = await setUp();
    const bad = upstreams[3];
    assert.ok(bad);
    const load = drive(running.url, Math.max(SECONDS, 6) * 1000);
    await new Promise((resolve) => setTimeout(resolve, FAULT_AT_MS));
    await bad.kill();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await bad.start();
    const restartedAt = performance.now();
    const back = await timeUntil(() => stateOf(bad) === 'up', restartedAt, 4000);
    const t = await load;
    results.push(`kill+restart | back in rotation ${ms(back)} after the restart | ${describeTally(t)}`);
    if (!ASSERT) return;
    assert.ok(back !== undefined && back <= 1000, `back after ${ms(back)}`);
    assert.equal(t.ok, t.sent, describeTally(t));
  });

  it('every upstream fails its checks (wrong --health-path): panic mode serves', async () => {
    // The upstreams serve /img but 404 the probe's path: only the probe's expectations are wrong.
    const current = await setUp({}, ['--health-path', '/nope'], false);
    await waitFor(() => current.balancer.registry.list().every((u) => u.state === 'down'), 5000, 'every upstream down');
    const t = await drive(current.url, SECONDS * 1000);
    results.push(`all fail     | ${describeTally(t)}`);
    if (!ASSERT) return;
    assert.equal(t.ok, t.sent, describeTally(t));
  });

  it('Upgrade: h2c is not tunnelled to the upstream', async () => {
    const running = await setUp();
    let upgradedAtUpstream = 0;
    for (const u of upstreams) {
      u.server?.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
        upgradedAtUpstream++;
        socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
      });
    }
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${running.url}/`, { headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQAAP__' } });
      req.on('upgrade', (res, socket) => {
        socket.destroy();
        resolve(res.statusCode ?? 0);
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    results.push(`h2c          | client got ${status}, upstream saw ${upgradedAtUpstream} h2c upgrade(s)`);
    if (!ASSERT) return;
    assert.notEqual(status, 101);
    assert.equal(upgradedAtUpstream, 0);
  });
});
