import assert from 'node:assert/strict';
import { createLatencyTracker } from '../src/picker/latency-tracker.js';
import { pickTwoChoices } from '../src/picker/p2c.js';
import { peakEwmaCost, pickPeakEwma } from '../src/picker/peak-ewma.js';
import { POLICIES, createPolicySetting, isPolicy, pickWith } from '../src/picker/policy.js';
import type { PolicyName } from '../src/picker/policy.js';
import { pickRandom } from '../src/picker/random.js';
import { pickRoundRobin } from '../src/picker/round-robin.js';
import type { Candidate } from '../src/picker/types.js';
import { seededRandom } from './helpers.js';

interface Lab extends Candidate {
  readonly latency: number;
}
const c = (id: string, inFlight: number, weight = 1, latency = 0): Lab => ({ id, inFlight, weight, latency });

/** How often each id is chosen over `picks` seeded picks (turn = pick number). */
function tally(policy: PolicyName, candidates: readonly Lab[], picks: number, seed = 7): Map<string, number> {
  const random = seededRandom(seed);
  const counts = new Map<string, number>();
  for (let turn = 0; turn < picks; turn++) {
    const pick = pickWith(policy, candidates, { tieBreak: 'rotation', random, turn, latencyMs: (x) => x.latency, recentLatencyMs: (x) => x.latency });
    assert.ok(pick);
    counts.set(pick.chosen.id, (counts.get(pick.chosen.id) ?? 0) + 1);
  }
  return counts;
}

const share = (counts: Map<string, number>, id: string, total: number): number => (counts.get(id) ?? 0) / total;

describe('picker: policies', () => {
  it('knows every policy by name and no other', () => {
    assert.deepEqual([...POLICIES], ['least-connections', 'round-robin', 'random', 'p2c', 'peak-ewma']);
    for (const p of POLICIES) assert.ok(isPolicy(p));
    assert.equal(isPolicy('leastconn'), false);
  });

  it('every policy: undefined without candidates, only-candidate with one', () => {
    for (const policy of POLICIES) {
      const options = { tieBreak: 'random' as const, random: seededRandom(1), turn: 5, latencyMs: () => 3, recentLatencyMs: () => 3 };
      assert.equal(pickWith(policy, [], options), undefined, policy);
      assert.deepEqual(pickWith(policy, [c('a', 4)], options), { chosen: c('a', 4), reason: 'only-candidate' }, policy);
    }
  });

  it('every policy spreads idle, equal upstreams evenly over 8000 seeded picks', () => {
    const set = [c('a', 0, 1, 5), c('b', 0, 1, 5), c('c', 0, 1, 5), c('d', 0, 1, 5)];
    for (const policy of POLICIES) {
      const counts = tally(policy, set, 8000);
      for (const u of set) {
        const s = share(counts, u.id, 8000);
        assert.ok(Math.abs(s - 0.25) < 0.03, `${policy}: ${u.id} got ${s}`);
      }
    }
  });

  it('weights: every policy gives weight 3 three times the share of weight 1 when load is equal', () => {
    const set = [c('heavy', 0, 3, 5), c('light', 0, 1, 5)];
    for (const policy of POLICIES) {
      const counts = tally(policy, set, 8000);
      const s = share(counts, 'heavy', 8000);
      // P2C draws both of two, so with equal in-flight weight cannot act: 50 %. Peak-EWMA divides
      // its cost by weight, so on this frozen view (no feedback from in-flight) heavy always wins.
      const expected = policy === 'p2c' ? 0.5 : policy === 'peak-ewma' ? 1 : 0.75;
      assert.ok(Math.abs(s - expected) < 0.03, `${policy}: heavy got ${s}, expected ${expected}`);
    }
  });

  it('round robin: exact rotation by turn, weighted runs, load ignored', () => {
    const set = [c('a', 99), c('b', 0, 2), c('c', 0)];
    const order = [0, 1, 2, 3, 4, 5, 6, 7].map((turn) => pickRoundRobin(set, turn)?.chosen.id);
    assert.deepEqual(order, ['a', 'b', 'b', 'c', 'a', 'b', 'b', 'c']);
    assert.equal(pickRoundRobin(set, 0)?.reason, 'round-robin');
    assert.equal(pickRoundRobin(set, -1)?.chosen.id, 'b', 'a negative turn still lands in range');
  });

  it('random: ignores load (a busy upstream keeps its share)', () => {
    const set = [c('busy', 50), c('idle', 0)];
    const counts = tally('random', set, 8000);
    assert.ok(Math.abs(share(counts, 'busy', 8000) - 0.5) < 0.03);
    assert.equal(pickRandom(set, () => 0)?.reason, 'random');
    assert.equal(pickRandom(set, () => 0.9999999)?.chosen.id, 'idle', 'the upper edge picks the last');
  });

  it('P2C with two replicas is never pinned to the busier one', () => {
    const random = seededRandom(3);
    for (let n = 0; n < 5000; n++) {
      const busy = 1 + Math.floor(random() * 20);
      const idle = Math.floor(random() * busy);
      const set = random() < 0.5 ? [c('busy', busy), c('idle', idle)] : [c('idle', idle), c('busy', busy)];
      assert.equal(pickTwoChoices(set, random)?.chosen.id, 'idle');
    }
  });

  it('P2C: ties between the two drawn go either way; in-flight ÷ weight decides', () => {
    const counts = tally('p2c', [c('a', 2), c('b', 2)], 4000);
    assert.ok(Math.abs(share(counts, 'a', 4000) - 0.5) < 0.04);
    assert.equal(pickTwoChoices([c('a', 4, 4), c('b', 2, 1)], seededRandom(2))?.chosen.id, 'a', '4/4 beats 2/1');
    assert.equal(pickTwoChoices([c('a', 0), c('b', 1)], seededRandom(2))?.reason, 'two-choices');
  });

  it('P2C over many: the busiest upstream is chosen only when paired with one as busy (never here)', () => {
    const set = [c('a', 0), c('b', 1), c('c', 2), c('hot', 9)];
    const counts = tally('p2c', set, 6000);
    assert.equal(counts.get('hot') ?? 0, 0);
    // The idle one wins every draw it is in: 1/2 of all draws of two among four.
    assert.ok(Math.abs(share(counts, 'a', 6000) - 0.5) < 0.03);
  });

  it('peak-EWMA cost: latency × (in-flight + 1) ÷ weight; unmeasured and busy is expensive', () => {
    assert.equal(peakEwmaCost(10, 0, 1), 10);
    assert.equal(peakEwmaCost(10, 3, 2), 20);
    assert.equal(peakEwmaCost(0, 0, 1), 0, 'a new idle upstream is tried');
    assert.ok(peakEwmaCost(0, 1, 1) > peakEwmaCost(500, 10, 1));
  });

  it('peak-EWMA avoids the slow replica even when it has fewer in flight', () => {
    const set = [c('fast1', 2, 1, 2), c('fast2', 2, 1, 2), c('slow', 0, 1, 52)];
    const counts = tally('peak-ewma', set, 6000);
    assert.equal(counts.get('slow') ?? 0, 0);
    // Least-connections, given the same view, sends everything to the slow one.
    assert.equal(tally('least-connections', set, 100).get('slow'), 100);
    assert.equal(pickPeakEwma(set, seededRandom(1), (x) => x.latency)?.reason, 'peak-ewma');
  });

  it('latency tracker: a slower sample is taken at once, faster ones pull it down over time, idle decays', () => {
    const t = createLatencyTracker(1000);
    const u = {};
    assert.equal(t.estimate(u, 0), 0);
    t.observe(u, 10, 0);
    assert.equal(t.estimate(u, 0), 10);
    t.observe(u, 50, 1);
    assert.equal(t.estimate(u, 1), 50, 'peak: taken at once');
    t.observe(u, 10, 2);
    assert.ok(t.estimate(u, 2) > 49, 'a fast sample 1 ms later barely moves it');
    t.observe(u, 10, 3002);
    const after = t.estimate(u, 3002);
    assert.ok(after > 10 && after < 13, `3 decay times later it is close to the new level: ${after}`);
    assert.ok(Math.abs(t.estimate(u, 4002) - after / Math.E) < 1e-9, 'without samples it decays toward 0');
    assert.equal(t.estimate({}, 5), 0, 'per upstream');
  });

  it('policy setting: starts where told, reports changes only', () => {
    const heard: PolicyName[] = [];
    const s = createPolicySetting('least-connections', (p) => heard.push(p));
    assert.equal(s.current, 'least-connections');
    s.set('p2c');
    s.set('p2c');
    s.set('peak-ewma');
    assert.equal(s.current, 'peak-ewma');
    assert.deepEqual(heard, ['p2c', 'peak-ewma']);
  });
});
