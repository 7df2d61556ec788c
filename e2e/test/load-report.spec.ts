import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorCodeOf, startOpenLoop, type LoadRun, type RequestRecord } from '../load/open-loop.js';
import { describeFailures, describeSummary, perSecondTable, summarize } from '../load/report.js';

/** A finished, successful request: due at `dueAt`, sent `lateMs` later, answered after `latencyMs` from its due time. */
const request = (seq: number, dueAt: number, lateMs: number, latencyMs: number): RequestRecord => ({
  seq,
  path: '/images/1',
  dueAt,
  sentAt: dueAt + lateMs,
  endAt: dueAt + latencyMs,
  latencyMs,
  ok: true,
  status: 200,
  replica: 'a:8002',
});

describe('load report: the load tool\'s own lateness', () => {
  // Latency counts from the due time, so a starved client looks like a slow cluster unless the
  // report says how late the client itself sent (README, "The cluster under change").
  const records = [request(0, 0, 1, 5), request(1, 500, 310, 620), request(2, 1200, 2, 9)];

  it('summarize gives the most any request was sent after its due time, per window', () => {
    assert.equal(summarize(records).late, 310);
    assert.equal(summarize(records, 1000).late, 2);
    assert.equal(summarize([]).late, 0);
  });

  it('the per-second table has a late column and its wall-clock start', () => {
    const run: LoadRun = { options: { origin: 'http://127.0.0.1:1', ratePerSecond: 2, durationMs: 2000, paths: ['/images/1'] }, startedAtEpoch: Date.UTC(2026, 11, 3, 12, 0, 0), records, marks: [] };
    const lines = perSecondTable(run).split('\n');
    assert.equal(lines[0], 'second 0 = 2026-12-03T12:00:00.000Z');
    assert.match(lines[1] ?? '', /\blate\b/);
    assert.match(lines[2] ?? '', /^\s+0\s+2\s+2\s+0\s+1\s.*\s310 ms\s/);
    assert.match(lines[3] ?? '', /^\s+1\s+1\s+1\s+0\s+0\s.*\s2 ms\s/);
  });
});

describe('load report: slow means slower than the request\'s own expected time', () => {
  // On a default cluster /images/4 takes 10 s: counting it as "over 0.5 s" made every request slow
  // and the table said nothing (issue 22).
  const timed = (seq: number, latencyMs: number, expectedMs?: number): RequestRecord => ({
    ...request(seq, seq * 100, 0, latencyMs),
    path: expectedMs === 10_000 ? '/images/4' : '/images/1',
    ...(expectedMs === undefined ? {} : { expectedMs }),
  });
  const records = [timed(0, 10_300, 10_000), timed(1, 10_600, 10_000), timed(2, 1_020, 1_000), timed(3, 600)];

  it('counts a request as slow only more than 0.5 s beyond its expected time (beyond 0 when unknown)', () => {
    const s = summarize(records);
    assert.equal(s.slow, 2);
    assert.equal(s.withExpected, 3);
    assert.equal(s.beyond.max, 600);
    assert.equal(s.beyond.p50, 300);
    assert.equal(s.max, 10_600);
  });

  it('the per-second table counts slow the same way and has a +p99 column', () => {
    const run: LoadRun = { options: { origin: 'http://127.0.0.1:1', ratePerSecond: 10, durationMs: 1000, paths: ['/images/1', '/images/4'] }, startedAtEpoch: 0, records, marks: [] };
    const lines = perSecondTable(run).split('\n');
    assert.match(lines[1] ?? '', /\s\+p99\s/);
    assert.match(lines[2] ?? '', /^\s+0\s+4\s+4\s+0\s+2\s+\S+ s\s+\S+ s\s+10\.60 s\s+600 ms\s/);
  });

  it('describeSummary gives the part beyond the expected time when the requests had one', () => {
    assert.match(describeSummary(summarize(records)), /2 over 500 ms beyond expected.*beyond expected p50 300 ms, p99 600 ms, max 600 ms/);
    assert.doesNotMatch(describeSummary(summarize([timed(0, 5)])), /beyond/);
  });
});

describe('load report: failures named by status and error code', () => {
  const failed = (seq: number, failure: RequestRecord['failure'], detail: string, status?: number): RequestRecord => ({
    ...request(seq, seq, 0, 20),
    ok: false,
    failure,
    detail,
    ...(status === undefined ? {} : { status }),
  });

  it('counts alike failures together, most frequent first', () => {
    const records = [
      ...[0, 1, 2, 3, 4].map((i) => failed(i, 'status', '504 LB_UPSTREAM_TIMEOUT', 504)),
      failed(5, 'reset', 'ECONNRESET'),
      failed(6, 'reset', 'ECONNRESET'),
      failed(7, 'status', '502', 502),
      request(8, 8, 0, 5),
    ];
    const s = summarize(records);
    assert.deepEqual(s.failedBy, { '504 LB_UPSTREAM_TIMEOUT': 5, 'reset ECONNRESET': 2, '502': 1 });
    assert.equal(describeFailures(s), '8 failed: 504 LB_UPSTREAM_TIMEOUT ×5, reset ECONNRESET ×2, 502 ×1');
    assert.equal(describeFailures(summarize([request(0, 0, 0, 5)])), '0 failed');
  });

  it('errorCodeOf reads the code of a JSON error answer and nothing else', () => {
    assert.equal(errorCodeOf('{"error":"LB_UPSTREAM_TIMEOUT","message":"the upstream did not answer in time"}'), 'LB_UPSTREAM_TIMEOUT');
    assert.equal(errorCodeOf('<html>502 Bad Gateway</html>'), undefined);
    assert.equal(errorCodeOf('{"error":5}'), undefined);
    assert.equal(errorCodeOf('null'), undefined);
  });
});

describe('open-loop: error codes and expected times on the wire', function () {
  this.timeout(20_000);
  let server: Server;
  let origin = '';
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/fail') {
        res.writeHead(504, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'LB_UPSTREAM_TIMEOUT', message: 'the upstream did not answer in time' }));
      } else if (req.url === '/plain-fail') {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<html>bad gateway</html>');
      } else if (req.url === '/redone') {
        // An image whose replica died near its end: redone elsewhere, it takes about twice its time.
        // Every bound the tests check is a second or more away, so a busy machine's late timers
        // cannot decide them.
        setTimeout(() => res.end('png'), 3100);
      } else if (req.url === '/hang') {
        // Never answers (closed by the test's teardown).
      } else {
        // A slow image: answers within its delay, as a backend does.
        setTimeout(() => res.end('png'), 1200);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('names a failed answer by its status and JSON code, and keeps each request\'s expected time', async () => {
    const loop = startOpenLoop({ origin, ratePerSecond: 100, durationMs: 30, paths: ['/fail', '/plain-fail', '/slow'], expectedMs: { '/slow': 2000 } });
    const run = await loop.done;
    const byPath = new Map(run.records.map((r) => [r.path, r]));
    assert.equal(byPath.get('/fail')?.detail, '504 LB_UPSTREAM_TIMEOUT');
    assert.equal(byPath.get('/plain-fail')?.detail, '502');
    assert.equal(byPath.get('/slow')?.expectedMs, 2000);
    assert.equal(byPath.get('/fail')?.expectedMs, undefined);
  });

  it('gives a request its expected time on top of the client timeout', async () => {
    // 1.2 s: past the 200 ms timeout, well within it plus the path's 2 s.
    const loop = startOpenLoop({ origin, ratePerSecond: 10, durationMs: 100, paths: ['/slow'], timeoutMs: 200, expectedMs: { '/slow': 2000 } });
    const [r] = (await loop.done).records;
    assert.equal(r?.ok, true, `${r?.failure ?? ''} ${r?.detail ?? ''}`);
    assert.equal(summarize((await loop.done).records).slow, 0);
  });

  it('waits for a request redone from the start after its replica died (twice its time): slow, not failed', async () => {
    // 3.1 s: past 100 ms + 2 s, within 100 ms + 2 × 2 s. A killed replica's 10 s image that had
    // run 9.9 s is answered at about 20 s by the replica the balancer retried it on.
    const loop = startOpenLoop({ origin, ratePerSecond: 10, durationMs: 100, paths: ['/redone'], timeoutMs: 100, expectedMs: { '/redone': 2000 } });
    const [r] = (await loop.done).records;
    assert.equal(r?.ok, true, `${r?.failure ?? ''} ${r?.detail ?? ''}`);
    assert.equal(summarize((await loop.done).records).slow, 1);
  });

  it('names its own timeout TimeoutError (not DOMException\'s numeric code)', async () => {
    const loop = startOpenLoop({ origin, ratePerSecond: 10, durationMs: 100, paths: ['/hang'], timeoutMs: 150 });
    const [r] = (await loop.done).records;
    assert.equal(r?.failure, 'timeout');
    assert.equal(r.detail, 'TimeoutError');
  });
});
