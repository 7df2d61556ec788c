import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { request } from 'undici';
import { createUpstreamMirror } from '../src/cluster/upstream-mirror.js';
import { OPTIONS } from '../src/config.js';
import { ERROR_CODES, isLbErrorCode, statusOf } from '../src/errors.js';
import { CounterTable } from '../src/upstreams/counters.js';
import { startBalancer, startOrigin, stopAfterEach, testConfig } from './helpers.js';
import type { Origin, Running } from './helpers.js';

const SRC = fileURLToPath(new URL('../src', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** A pino logger whose lines land in `lines`, parsed. */
function capturingLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

describe('errors: one table of codes', () => {
  it('every code is LB_-prefixed and has an HTTP error status and a meaning', () => {
    for (const [code, { status, meaning }] of Object.entries(ERROR_CODES)) {
      assert.match(code, /^LB_[A-Z_]+$/);
      assert.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code}: ${status}`);
      assert.ok(meaning.length > 10, code);
      assert.equal(statusOf[code as keyof typeof ERROR_CODES], status);
    }
    assert.equal(statusOf.LB_INTERNAL, 500);
    assert.equal(statusOf.LB_NOT_FOUND, 404);
  });

  it('every code used in src is in the table: every quoted LB_ word that is not an env var, and every `error` a body names', () => {
    const envVars = new Set(OPTIONS.map((o) => o.meta.env));
    const unknown: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const text = readFileSync(file, 'utf8');
      const where = file.slice(SRC.length + 1);
      for (const [, word] of text.matchAll(/['"`](LB_[A-Z0-9_]+)['"`]/g)) {
        if (word !== undefined && !envVars.has(word) && !isLbErrorCode(word)) unknown.push(`${where}: ${word}`);
      }
      // `{ error: 'X' }` in code, `{"error":"X"}` in prepared JSON: whatever the prefix.
      for (const [, word] of text.matchAll(/\berror['"]?\s*:\s*['"]([A-Za-z_]+)['"]/g)) {
        if (word !== undefined && !isLbErrorCode(word)) unknown.push(`${where}: error ${word}`);
      }
    }
    assert.deepEqual(unknown, []);
  });
});

describe('errors: what clients are told', () => {
  let origins: readonly Origin[] = [];
  let lb: Running | undefined;
  stopAfterEach(() => ({ lb, origins }));

  it('an exception in our own code while proxying is 500 LB_INTERNAL, logged; not blamed on an upstream (LB_UPSTREAM_RESET)', async () => {
    const origin = await startOrigin((_req, res) => res.end('ok'));
    origins = [origin];
    const { logger, lines } = capturingLogger();
    lb = await startBalancer(testConfig([origin.port]), { logger });
    // A bug in the data path: the registry throws where it never should.
    const { registry } = lb.balancer;
    const available = registry.available.bind(registry);
    registry.available = () => {
      throw new TypeError('a bug of ours');
    };
    const res = await request(`${lb.url}/x`).finally(() => {
      registry.available = available;
    });
    const body = (await res.body.json()) as { error: string };
    assert.equal(res.statusCode, 500);
    assert.equal(body.error, 'LB_INTERNAL');
    assert.ok(lines.some((l) => l.msg === 'proxy handler failed' && l.level === 50));
  });

  it('a request whose deadline passes while queued is told so (503 LB_QUEUE_TIMEOUT), not that the client went away', async () => {
    const origin = await startOrigin((_req, res) => res.end('ok'));
    origins = [origin];
    lb = await startBalancer(testConfig([origin.port], { maxInFlight: 1, queueTimeoutMs: 60_000, requestTimeoutMs: 300 }));
    // The upstream's only place is taken (as by a long request), so the request waits in the queue.
    const { registry } = lb.balancer;
    const upstream = registry.list()[0];
    assert.ok(upstream && registry.acquire(upstream));
    try {
      const res = await request(`${lb.url}/queued`);
      const body = (await res.body.json()) as { error: string; message: string };
      assert.equal(res.statusCode, 503);
      assert.equal(body.error, 'LB_QUEUE_TIMEOUT');
      assert.match(body.message, /deadline/);
      assert.doesNotMatch(body.message, /client went away/);
    } finally {
      registry.release(upstream);
    }
  });
});

describe('worker thread: a negative in-flight count', () => {
  it('is logged once, with the upstream, its slot and the count, however many releases follow', async () => {
    const { logger, lines } = capturingLogger();
    const mirror = createUpstreamMirror({
      counters: CounterTable.create(8),
      pool: { connectTimeoutMs: 100, headersTimeoutMs: 100, bodyTimeoutMs: 100, keepAliveTimeoutMs: 100, connections: null },
      logger,
      onDropped: () => undefined,
      panic: true,
    });
    try {
      mirror.apply([{ key: 1, slot: 3, host: '127.0.0.1', port: 1, source: 'static', state: 'up', unresponsive: false, weight: 1, configuredWeight: 1, maxInFlight: 0 }]);
      const [upstream] = mirror.list();
      assert.ok(upstream);
      // A release without its acquire: the bug this log line is for.
      mirror.release(upstream);
      mirror.release(upstream);
      const logged = lines.filter((l) => l.msg === 'in-flight count went below zero');
      assert.equal(logged.length, 1);
      assert.deepEqual(
        { level: logged[0]?.level, upstream: logged[0]?.upstream, slot: logged[0]?.slot, inFlight: logged[0]?.inFlight },
        { level: 50, upstream: '127.0.0.1:1', slot: 3, inFlight: -1 },
      );
    } finally {
      await mirror.stop();
    }
  });
});

describe('errors: the documented table', () => {
  it('docs/contracts.md lists every code with its status, and no other LB_ code', () => {
    const doc = readFileSync(fileURLToPath(new URL('../../../docs/contracts.md', import.meta.url)), 'utf8');
    const rows = new Map([...doc.matchAll(/^\| `(LB_[A-Z_]+)` \| (\d{3}) \|/gm)].map(([, code, status]) => [code, Number(status)]));
    assert.deepEqual(rows, new Map(Object.entries(ERROR_CODES).map(([code, { status }]) => [code, status])));
  });
});
