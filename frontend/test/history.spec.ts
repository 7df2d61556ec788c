import assert from 'node:assert/strict';
import { TOTAL_ID, createTrafficHistory } from '../src/history.js';
import type { Snapshot, UpstreamSnapshot } from '../src/snapshot.js';

const up = (id: string, requests: number, inFlight = 0): UpstreamSnapshot => ({
  id,
  requests,
  inFlight,
  weight: 1,
  errors: 0,
  state: 'up',
  available: true,
  source: 'static',
  longLived: 0,
  maxInFlight: 0,
});

const snap = (time: number, upstreams: UpstreamSnapshot[]): Snapshot => ({
  time,
  instance: 'test',
  tieBreak: 'rotation',
  policy: 'least-connections',
  explain: false,
  panic: false,
  totals: {
    requests: upstreams.reduce((s, u) => s + u.requests, 0),
    inFlight: upstreams.reduce((s, u) => s + u.inFlight, 0),
    errors: 0,
  },
  imbalance: 1,
  upstreams,
  decisions: [],
  peers: [],
});

const T0 = 1_700_000_000_000; // a multiple of 500 ms, so buckets start at T0

describe('createTrafficHistory', () => {
  it('derives requests per second from the totals over the rate window', () => {
    const h = createTrafficHistory({ rateWindowMs: 1000 });
    // a: 10 requests per second, b: 2 per second, every 100 ms like the balancer.
    for (let i = 0; i <= 30; i++) h.ingest(snap(T0 + i * 100, [up('a', i), up('b', Math.floor(i / 5))]));
    assert.ok(Math.abs(h.rate('a') - 10) < 1e-9, `rate a ${h.rate('a')}`);
    assert.ok(Math.abs(h.rate('b') - 2) < 0.3, `rate b ${h.rate('b')}`);
    assert.ok(Math.abs(h.totalRate() - 12) < 0.3);
    assert.equal(h.rate('unknown'), 0);
  });

  it('treats a lower total as a balancer restart, never as a negative rate', () => {
    const h = createTrafficHistory();
    for (let i = 0; i <= 10; i++) h.ingest(snap(T0 + i * 100, [up('a', 100 + i)]));
    h.ingest(snap(T0 + 1100, [up('a', 0)]));
    assert.equal(h.rate('a'), 0);
    h.ingest(snap(T0 + 1600, [up('a', 5)]));
    assert.ok(Math.abs(h.rate('a') - 10) < 1e-9);
    assert.ok(h.totalRate() >= 0);
  });

  it('keeps the highest in-flight of each half-second bucket and aligns new upstreams with nulls', () => {
    const h = createTrafficHistory({ stepMs: 500 });
    h.ingest(snap(T0, [up('a', 0, 1)]));
    h.ingest(snap(T0 + 100, [up('a', 0, 7)]));
    h.ingest(snap(T0 + 400, [up('a', 0, 2)]));
    h.ingest(snap(T0 + 500, [up('a', 0, 3), up('b', 0, 4)]));
    h.ingest(snap(T0 + 1000, [up('b', 0, 1)])); // closes the second bucket; a has left
    h.ingest(snap(T0 + 1500, [up('b', 0, 0)]));
    const cols = h.inFlightColumns(60_000);
    assert.deepEqual(cols.x, [T0 / 1000, T0 / 1000 + 0.5, T0 / 1000 + 1]);
    assert.deepEqual(cols.ids, ['a', 'b']);
    assert.deepEqual(cols.series.get('a'), [7, 3, null]);
    assert.deepEqual(cols.series.get('b'), [null, 4, 1]);
    assert.equal(cols.series.has(TOTAL_ID), false);
    assert.ok(h.rateColumns(60_000).series.has(TOTAL_ID));
  });

  it('breaks the lines over a gap instead of bridging it', () => {
    const h = createTrafficHistory({ stepMs: 500 });
    h.ingest(snap(T0, [up('a', 0, 1)]));
    h.ingest(snap(T0 + 10_000, [up('a', 0, 2)])); // 10 s without data (disconnected)
    h.ingest(snap(T0 + 10_500, [up('a', 0, 0)]));
    const cols = h.inFlightColumns(60_000);
    assert.deepEqual(cols.series.get('a'), [1, null, 2]);
    assert.equal(cols.x.length, 3);
  });

  it('reports the peak in-flight over a window, including the open bucket', () => {
    const h = createTrafficHistory({ stepMs: 500 });
    h.ingest(snap(T0, [up('a', 0, 9)]));
    for (let i = 1; i <= 40; i++) h.ingest(snap(T0 + i * 500, [up('a', 0, i === 40 ? 2 : 1)]));
    assert.equal(h.peakInFlight('a', 60_000), 9);
    assert.equal(h.peakInFlight('a', 5_000), 2);
    assert.equal(h.peakInFlight('nobody', 60_000), 0);
  });

  it('drops points older than its capacity and upstreams with nothing left to draw', () => {
    const h = createTrafficHistory({ stepMs: 500, capacityMs: 5_000 });
    h.ingest(snap(T0, [up('gone', 0, 1), up('a', 0, 0)]));
    for (let i = 1; i <= 30; i++) h.ingest(snap(T0 + i * 500, [up('a', 0, 0)]));
    assert.ok(h.length <= 11, `kept ${h.length} buckets`);
    assert.deepEqual(h.inFlightColumns(60_000).ids, ['a']);
  });

  it('limits the columns to the requested window', () => {
    const h = createTrafficHistory({ stepMs: 500 });
    for (let i = 0; i <= 20; i++) h.ingest(snap(T0 + i * 500, [up('a', i, 1)]));
    // Buckets 0..19 are closed (the 20th is still open): the newest point is at 9.5 s.
    const cols = h.inFlightColumns(2_000);
    assert.deepEqual(cols.x, [7.5, 8, 8.5, 9, 9.5].map((s) => T0 / 1000 + s));
  });

  it('ignores a slightly older snapshot and restarts after a big step back in time', () => {
    const h = createTrafficHistory({ stepMs: 500 });
    for (let i = 0; i <= 4; i++) h.ingest(snap(T0 + i * 500, [up('a', i * 5, 1)]));
    const before = h.version;
    h.ingest(snap(T0 + 1900, [up('a', 0, 50)]));
    assert.equal(h.version, before);
    assert.equal(h.peakInFlight('a', 60_000), 1);
    h.ingest(snap(T0 - 3_600_000, [up('a', 0, 3)]));
    assert.equal(h.length, 0);
    assert.equal(h.peakInFlight('a', 60_000), 3);
  });
});
