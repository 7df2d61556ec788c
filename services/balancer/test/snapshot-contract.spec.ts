import assert from 'node:assert/strict';
import { parseSnapshot } from '../../../frontend/src/snapshot.js';
import type { Snapshot as ViewSnapshot } from '../../../frontend/src/snapshot.js';
import { example } from '../../../frontend/test/snapshot-example.js';
import { createDecisionLog } from '../src/decision-log.js';
import { takeSnapshot } from '../src/snapshot.js';
import type { Snapshot } from '../src/snapshot.js';
import { testRegistry } from './helpers.js';

/** Keys of an object and of its nested objects, as `a`, `a.b`, with array items under `a[]`. */
function shape(value: unknown, at = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((item) => shape(item, `${at}[]`));
  if (typeof value !== 'object' || value === null) return [`${at}:${typeof value}`];
  return Object.entries(value).flatMap(([k, v]) => shape(v, at === '' ? k : `${at}.${k}`));
}

/** A snapshot of a registry with one upstream in each interesting condition, as JSON would carry it. */
async function realSnapshot(): Promise<Snapshot> {
  const registry = testRegistry();
  registry.sync('static', [9201, 9202, 9203].map((port) => ({ host: '127.0.0.1', port, weight: 2 })));
  const [capped, draining] = registry.list();
  assert.ok(capped && draining);
  registry.setMaxInFlight(capped, 1);
  registry.acquire(capped);
  registry.drain(draining, 30_000);
  const decisions = createDecisionLog();
  decisions.record(capped.id, 'least-loaded');
  const snapshot = JSON.parse(JSON.stringify(takeSnapshot(registry, decisions, {
    tieBreak: 'rotation',
    explain: false,
    instance: 'x',
    policy: 'least-connections',
    peers: [
      { address: '10.0.0.7:9001', id: '9c1f0a7e5b2d4c83', ageMs: 12, state: 'live', dataUrl: 'http://10.0.0.7:8001', adminUrl: 'http://10.0.0.7:9001' },
      { address: '10.0.0.8:9001', id: null, ageMs: null, state: 'dropped', dataUrl: null, adminUrl: null },
    ],
  }))) as Snapshot;
  registry.release(capped);
  await registry.stop();
  return snapshot;
}

describe('the Snapshot contract: the balancer and the live view agree', () => {
  it('compiles: what the balancer sends is what the view reads', () => {
    // Fails the typecheck when a field the view needs is missing or of another type on the balancer's side.
    const check = (s: Snapshot): ViewSnapshot => s;
    assert.equal(typeof check, 'function');
  });

  it('the view parses a real snapshot without defaulting anything: every field it reads comes from the balancer', async () => {
    const sent = await realSnapshot();
    const read = parseSnapshot(sent);
    assert.ok(read);
    // Whatever the view keeps must be exactly what was sent (a default here would mean a renamed field).
    const sentShape = new Set(shape(sent));
    for (const key of shape(read)) assert.ok(sentShape.has(key), `the view reads ${key}, which the balancer does not send`);
    assert.deepEqual(read.upstreams.map((u) => [u.id, u.state, u.available, u.maxInFlight, u.drain?.drained]), sent.upstreams.map((u) => [u.id, u.state, u.available, u.maxInFlight, u.drain?.drained]));
  });

  it('the view\'s test fixture (frontend/test/snapshot-example.ts) has only fields the balancer sends, of the same types', async () => {
    const sentShape = new Set(shape(await realSnapshot()));
    for (const key of shape(example)) assert.ok(sentShape.has(key), `the fixture has ${key}, which the balancer does not send`);
  });
});
