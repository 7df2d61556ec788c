import assert from 'node:assert/strict';
import { parseSnapshot, parseSnapshotText } from '../src/snapshot.js';
import { example } from './snapshot-example.js';


describe('parseSnapshot', () => {
  it('accepts the example of docs/contracts.md unchanged', () => {
    assert.deepEqual(parseSnapshot(example), example);
  });

  it('keeps a drain\'s deadline for the countdown; an older balancer\'s snapshot gets defaults', () => {
    const s = parseSnapshot({
      time: 1,
      upstreams: [{ id: 'a:1', inFlight: 1, requests: 2, state: 'draining', drain: { startedAt: 0, deadline: 30_000, remainingMs: 29_000, drained: false } }],
    });
    assert.ok(s);
    const [u] = s.upstreams;
    assert.ok(u);
    assert.equal(s.policy, '');
    assert.equal(u.longLived, 0);
    assert.equal(u.inFlightCluster, undefined, 'no peers field from a balancer older than count sharing');
    assert.deepEqual(u.drain, { deadline: 30_000, drained: false });
    assert.deepEqual(s.peers, [], 'no peers from a balancer older than count sharing');
  });

  it('keeps each peer with its state and age (null before its first report); skips a malformed one', () => {
    const s = parseSnapshot({
      time: 1,
      upstreams: [],
      peers: [{ address: '10.0.0.7:9001', ageMs: 12, state: 'live' }, { address: '10.0.0.8:9001', ageMs: null, state: 'dropped' }, { state: 'live' }, 'x'],
    });
    assert.deepEqual(s?.peers, [
      { address: '10.0.0.7:9001', ageMs: 12, state: 'live' },
      { address: '10.0.0.8:9001', ageMs: null, state: 'dropped' },
    ]);
  });

  it('rejects what is not a snapshot', () => {
    for (const bad of [null, 42, 'x', [], {}, { time: 1 }, { upstreams: [] }, { time: 'now', upstreams: [] }]) {
      assert.equal(parseSnapshot(bad), undefined, JSON.stringify(bad));
    }
  });

  it('skips malformed and duplicate upstreams but keeps the rest', () => {
    const s = parseSnapshot({
      time: 1,
      upstreams: [
        { id: 'a:1', inFlight: 1, requests: 2 },
        { id: 'a:1', inFlight: 9, requests: 9 },
        { id: '', inFlight: 0, requests: 0 },
        { id: 'b:1', inFlight: 'x', requests: 0 },
        'junk',
        { id: 'c:1', inFlight: 0, requests: 5, state: 'down' },
      ],
    });
    assert.ok(s);
    assert.deepEqual(
      s.upstreams.map((u) => [u.id, u.inFlight, u.state, u.available]),
      [
        ['a:1', 1, 'unproven', false],
        ['c:1', 0, 'down', false],
      ],
    );
  });

  it('derives missing totals from the upstreams and defaults the rest', () => {
    const s = parseSnapshot({
      time: 5,
      upstreams: [
        { id: 'a:1', inFlight: 1, requests: 2, errors: 1, state: 'up' },
        { id: 'b:1', inFlight: 3, requests: 4 },
      ],
    });
    assert.ok(s);
    assert.deepEqual(s.totals, { requests: 6, inFlight: 4, errors: 1 });
    assert.equal(s.imbalance, 1);
    assert.equal(s.upstreams[0]?.available, true);
    assert.equal(s.upstreams[1]?.weight, 1);
    assert.deepEqual(s.decisions, []);
  });

  it('passes unknown states through', () => {
    const s = parseSnapshot({ time: 1, upstreams: [{ id: 'a:1', inFlight: 0, requests: 0, state: 'probation' }] });
    assert.equal(s?.upstreams[0]?.state, 'probation');
  });
});

describe('parseSnapshotText', () => {
  it('parses SSE data and returns undefined for broken JSON', () => {
    assert.equal(parseSnapshotText(JSON.stringify(example))?.totals.requests, 120);
    assert.equal(parseSnapshotText('{"time":'), undefined);
    assert.equal(parseSnapshotText(''), undefined);
  });
});
