import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { request } from 'undici';
import { coalesced } from '../src/coalesce.js';
import { deadPort, namedHandler, startBalancer, startOrigin, stopAfterEach, testConfig } from './helpers.js';
import type { Origin, Running } from './helpers.js';

describe('upstream changes reach the data path as events', () => {
  let origins: readonly Origin[] = [];
  let lb: Running | undefined;

  stopAfterEach(() => ({ lb, origins }));

  it('coalesced: one call per burst, never inside the caller', async () => {
    let runs = 0;
    const notify = coalesced(() => runs++);
    notify();
    notify();
    notify();
    assert.equal(runs, 0, 'not synchronously');
    await Promise.resolve();
    assert.equal(runs, 1, 'three changes, one call');
    notify();
    await Promise.resolve();
    assert.equal(runs, 2, 'a later change is a new event');
  });

  it('a failure inside an attempt does not re-enter the data path synchronously, and a burst is one call', async () => {
    origins = [await startOrigin(namedHandler('live'))];
    const running = await startBalancer(testConfig([await deadPort(), origins[0]?.port ?? 0]));
    lb = running;
    const registry = running.balancer.registry;
    // The data plane reads available() each time it hears of a change (its queue wake-ups).
    const stacks: string[] = [];
    const available = registry.available.bind(registry);
    registry.available = () => {
      stacks.push(new Error('probe').stack ?? '');
      return available();
    };
    try {
      // The refused connect ejects the dead upstream from inside the attempt; the request fails over.
      for (let i = 0; i < 4; i++) {
        const text = await (await request(`${running.url}/`)).body.text();
        assert.equal(text, 'live');
      }
      await nextTurn();
      const reentered = stacks.filter((s) => /recordFailure|reportFailure/.test(s));
      assert.deepEqual(reentered, [], 'no call from inside the failure report');

      const [a, b] = registry.list();
      assert.ok(a && b);
      stacks.length = 0;
      registry.setMaxInFlight(a, 5);
      registry.setMaxInFlight(b, 5);
      registry.setMaxInFlight(a, 6);
      assert.equal(stacks.length, 0, 'nothing yet: the changes are events');
      await nextTurn();
      assert.equal(stacks.length, 1, 'three changes, one call');
    } finally {
      registry.available = available;
    }
  });
});
