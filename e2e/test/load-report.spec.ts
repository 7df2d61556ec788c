import assert from 'node:assert/strict';
import type { LoadRun, RequestRecord } from '../load/open-loop.js';
import { perSecondTable, summarize } from '../load/report.js';

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
