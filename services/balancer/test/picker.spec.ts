import assert from 'node:assert/strict';
import { pickLeastConnections } from '../src/picker/least-connections.js';
import type { Candidate, TieBreak } from '../src/picker/types.js';
import { seededRandom } from './helpers.js';

const c = (id: string, inFlight: number, weight = 1): Candidate => ({ id, inFlight, weight });

function distribution(candidates: Candidate[], tieBreak: TieBreak, picks: number, seed = 42): Map<string, number> {
  const random = seededRandom(seed);
  const counts = new Map<string, number>();
  for (let turn = 0; turn < picks; turn++) {
    const pick = pickLeastConnections(candidates, { tieBreak, random, turn });
    assert.ok(pick);
    counts.set(pick.chosen.id, (counts.get(pick.chosen.id) ?? 0) + 1);
  }
  return counts;
}

describe('picker: least connections', () => {
  it('returns undefined when there is no candidate', () => {
    assert.equal(pickLeastConnections([], { tieBreak: 'rotation', random: Math.random, turn: 0 }), undefined);
  });

  it('says when there was only one candidate', () => {
    assert.deepEqual(pickLeastConnections([c('a', 9)], { tieBreak: 'rotation', random: Math.random, turn: 3 }), {
      chosen: c('a', 9),
      reason: 'only-candidate',
    });
  });

  const cases: { name: string; candidates: Candidate[]; chosen: string }[] = [
    { name: 'lowest in-flight wins', candidates: [c('a', 3), c('b', 1), c('c', 2)], chosen: 'b' },
    { name: 'the last one can win', candidates: [c('a', 1), c('b', 1), c('c', 0)], chosen: 'c' },
    { name: 'in-flight is divided by weight', candidates: [c('a', 4, 4), c('b', 2, 1)], chosen: 'a' },
    { name: 'a heavy upstream takes more before losing', candidates: [c('a', 5, 3), c('b', 2, 1)], chosen: 'a' },
    { name: 'weight does not hide load', candidates: [c('a', 7, 3), c('b', 2, 1)], chosen: 'b' },
  ];
  for (const t of cases) {
    it(t.name, () => {
      for (const tieBreak of ['rotation', 'random'] as const) {
        const pick = pickLeastConnections(t.candidates, { tieBreak, random: seededRandom(1), turn: 7 });
        assert.ok(pick);
        assert.equal(pick.chosen.id, t.chosen);
        assert.equal(pick.reason, 'least-loaded');
      }
    });
  }

  it('never lets the first candidate win every tie (rotation: exactly even)', () => {
    const counts = distribution([c('a', 0), c('b', 0), c('c', 0), c('d', 0)], 'rotation', 4000);
    assert.deepEqual([...counts.values()], [1000, 1000, 1000, 1000]);
  });

  it('spreads ties evenly at random with a seeded generator (within 5%)', () => {
    const counts = distribution([c('a', 2), c('b', 2), c('c', 2), c('d', 2)], 'random', 20000, 7);
    assert.equal(counts.size, 4);
    for (const n of counts.values()) assert.ok(Math.abs(n - 5000) < 250, `count ${n}`);
  });

  it('breaks ties in proportion to weight (rotation exact, random within 5%)', () => {
    const set = [c('a', 0, 3), c('b', 0, 1)];
    const rotation = distribution(set, 'rotation', 4000);
    assert.equal(rotation.get('a'), 3000);
    assert.equal(rotation.get('b'), 1000);
    const random = distribution(set, 'random', 20000, 3);
    assert.ok(Math.abs((random.get('a') ?? 0) - 15000) < 750);
  });

  it('reports the tie-break that decided', () => {
    const set = [c('a', 1), c('b', 1)];
    assert.equal(pickLeastConnections(set, { tieBreak: 'rotation', random: Math.random, turn: 0 })?.reason, 'tie-rotation');
    assert.equal(pickLeastConnections(set, { tieBreak: 'random', random: Math.random, turn: 0 })?.reason, 'tie-random');
  });

  it('keeps a simulated closed loop balanced by weight over thousands of picks', () => {
    // Simulation: 12 clients, each request lasts a random number of ticks; weights 1, 2, 3.
    const random = seededRandom(2024);
    const ups = [
      { id: 'w1', inFlight: 0, weight: 1 },
      { id: 'w2', inFlight: 0, weight: 2 },
      { id: 'w3', inFlight: 0, weight: 3 },
    ];
    const served = new Map<string, number>();
    const active: { up: (typeof ups)[number]; left: number }[] = [];
    for (let turn = 0; turn < 6000; turn++) {
      while (active.length < 12) {
        const pick = pickLeastConnections(ups, { tieBreak: 'rotation', random, turn });
        assert.ok(pick);
        pick.chosen.inFlight++;
        served.set(pick.chosen.id, (served.get(pick.chosen.id) ?? 0) + 1);
        active.push({ up: pick.chosen, left: 1 + Math.floor(random() * 5) });
      }
      for (let i = active.length - 1; i >= 0; i--) {
        const a = active[i];
        if (a && --a.left === 0) {
          a.up.inFlight--;
          active.splice(i, 1);
        }
      }
    }
    const total = [...served.values()].reduce((x, y) => x + y, 0);
    for (const u of ups) {
      const share = (served.get(u.id) ?? 0) / total;
      assert.ok(Math.abs(share - u.weight / 6) < 0.03, `${u.id} share ${share.toFixed(3)}`);
    }
  });

  it('keeps rotation even while busy upstreams leave and rejoin the tie (200 req/s, 3-12 ms each, 6 upstreams)', () => {
    // Seeded simulation of the data path: the one just picked is usually still busy at the next
    // pick. Rotating over only the tied ones (turn mod their number) gave one upstream 60 % of
    // the others' share here; rotation over every upstream's position keeps them within 2 %.
    for (const tieBreak of ['rotation', 'latency'] as const) {
      const random = seededRandom(7);
      const ups = ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => ({ id, inFlight: 0, weight: 1 }));
      const ends: { at: number; up: (typeof ups)[number] }[] = [];
      const counts = new Map<string, number>();
      for (let now = 0, turn = 0; now < 200_000; now += 5, turn++) {
        for (let i = ends.length - 1; i >= 0; i--) {
          const e = ends[i];
          if (e && e.at <= now) {
            e.up.inFlight--;
            ends.splice(i, 1);
          }
        }
        const pick = pickLeastConnections(ups, { tieBreak, random, turn, latencyMs: () => 3 });
        assert.ok(pick);
        pick.chosen.inFlight++;
        ends.push({ at: now + 3 + random() * 9, up: pick.chosen });
        counts.set(pick.chosen.id, (counts.get(pick.chosen.id) ?? 0) + 1);
      }
      const mean = 40_000 / 6;
      for (const [id, n] of counts) assert.ok(Math.abs(n - mean) < mean * 0.02, `${tieBreak}: ${id} got ${n} of 40000 (mean ${Math.round(mean)})`);
    }
  });

  describe('latency tie-break', () => {
    const lat = (ms: Record<string, number>) => (x: Candidate): number => ms[x.id] ?? 0;
    const pickAll = (set: Candidate[], ms: Record<string, number>, picks = 4000): Map<string, number> => {
      const counts = new Map<string, number>();
      for (let turn = 0; turn < picks; turn++) {
        const pick = pickLeastConnections(set, { tieBreak: 'latency', random: Math.random, turn, latencyMs: lat(ms) });
        assert.ok(pick);
        counts.set(pick.chosen.id, (counts.get(pick.chosen.id) ?? 0) + 1);
      }
      return counts;
    };

    it('leaves a tied replica that answers much slower lately out of the tie', () => {
      const set = [c('a', 0), c('b', 0), c('c', 0), c('d', 0)];
      const counts = pickAll(set, { a: 2, b: 3, c: 55, d: 1 });
      assert.equal(counts.get('c'), undefined);
      assert.deepEqual([counts.get('a'), counts.get('b'), counts.get('d')], [1334, 1333, 1333]);
      const pick = pickLeastConnections(set, { tieBreak: 'latency', random: Math.random, turn: 0, latencyMs: lat({ c: 55 }) });
      assert.equal(pick?.reason, 'tie-latency');
    });

    it('rotates evenly among replicas a few milliseconds apart, and over never-measured ones (0)', () => {
      assert.deepEqual([...pickAll([c('a', 1), c('b', 1), c('c', 1)], { a: 1, b: 12, c: 21 }).values()], [1334, 1333, 1333]);
      assert.deepEqual([...pickAll([c('a', 0), c('b', 0)], {}).values()], [2000, 2000]);
      const pick = pickLeastConnections([c('a', 0), c('b', 0)], { tieBreak: 'latency', random: Math.random, turn: 1, latencyMs: lat({ a: 5, b: 9 }) });
      assert.equal(pick?.reason, 'tie-rotation');
    });

    it('scales the tolerance with the typical tied replica (lower median): 2x plus 20 ms', () => {
      const counts = pickAll([c('a', 0), c('b', 0), c('c', 0), c('d', 0)], { a: 400, b: 410, c: 839, d: 841 }, 300);
      assert.equal(counts.get('d'), undefined);
      assert.deepEqual([counts.get('a'), counts.get('b'), counts.get('c')], [100, 100, 100]);
    });

    it('measures against the typical replica, not the luckiest: one fast outlier does not push out the rest', () => {
      const counts = pickAll([c('lucky', 0), c('b', 0), c('c', 0), c('d', 0)], { lucky: 1, b: 30, c: 45, d: 70 }, 400);
      // Typical (lower median) 30 ms: the limit is 80 ms, so nobody is left out.
      assert.deepEqual([...counts.values()], [100, 100, 100, 100]);
    });

    it('never lets latency beat load: a slow replica with fewer in flight still wins', () => {
      const pick = pickLeastConnections([c('fast', 2), c('slow', 1)], { tieBreak: 'latency', random: Math.random, turn: 0, latencyMs: lat({ fast: 1, slow: 900 }) });
      assert.deepEqual(pick, { chosen: c('slow', 1), reason: 'least-loaded' });
    });

    it('keeps weights among the replicas left in the tie', () => {
      const counts = pickAll([c('a', 0, 3), c('b', 0, 1), c('slow', 0, 5)], { a: 1, b: 1, slow: 100 });
      assert.deepEqual([counts.get('a'), counts.get('b'), counts.get('slow')], [3000, 1000, undefined]);
    });

    it('picks the one fast replica of a tie outright, and behaves as rotation without a latency source', () => {
      const set = [c('a', 0), c('b', 0)];
      assert.deepEqual(pickLeastConnections(set, { tieBreak: 'latency', random: Math.random, turn: 0, latencyMs: lat({ a: 90, b: 2 }) }), {
        chosen: c('b', 0),
        reason: 'tie-latency',
      });
      assert.deepEqual([...distribution(set, 'latency', 10).values()], [5, 5]);
    });
  });
});
