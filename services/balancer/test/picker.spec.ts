import assert from 'node:assert/strict';
import { pickLeastConnections } from '../src/picker/least-connections.js';
import type { Candidate, TieBreak } from '../src/picker/least-connections.js';
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
});
