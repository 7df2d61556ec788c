import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { request } from 'undici';
import { parseConfig } from '../src/config.js';
import { namedHandler, startBalancer, startOrigin, testConfig, waitFor } from './helpers.js';
import type { Origin, Running } from './helpers.js';

/** Sequential GETs; which origin answered each. */
async function servedBy(url: string, n: number, path = '/'): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const res = await request(`${url}${path}`);
    const name = await res.body.text();
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}

describe('selection policies on the data path', () => {
  let origins: Origin[] = [];
  let lb: Running | undefined;
  const held: ServerResponse[] = [];

  afterEach(async () => {
    for (const res of held.splice(0)) res.end('held');
    await lb?.balancer.stop();
    lb = undefined;
    await Promise.all(origins.map((o) => o.close()));
    origins = [];
  });

  it('--policy / LB_POLICY choose it at start; an unknown name is a config error', () => {
    const flag = parseConfig(['--policy', 'p2c', '127.0.0.1:1'], {});
    assert.equal(flag.kind === 'config' && flag.config.policy, 'p2c');
    const env = parseConfig(['127.0.0.1:1'], { LB_POLICY: 'peak-ewma' });
    assert.equal(env.kind === 'config' && env.config.policy, 'peak-ewma');
    const def = parseConfig(['127.0.0.1:1'], {});
    assert.equal(def.kind === 'config' && def.config.policy, 'least-connections');
    const bad = parseConfig(['--policy', 'fastest', '127.0.0.1:1'], {});
    assert.equal(bad.kind, 'error');
    assert.deepEqual(bad.errors, ['--policy "fastest": expected one of least-connections, round-robin, random, p2c, peak-ewma']);
  });

  it('a runtime switch takes effect on the next request: least-connections avoids a busy upstream, round robin does not', async () => {
    const busy = await startOrigin((req, res) => {
      if (req.url === '/hold') held.push(res);
      else namedHandler('busy')(req, res);
    });
    origins = [busy, await startOrigin(namedHandler('idle'))];
    lb = await startBalancer(testConfig(origins.map((o) => o.port)));
    const url = lb.url;
    // `/hold` lands on either; on `idle` it is answered at once, on `busy` it stays in flight.
    const holds: Promise<unknown>[] = [];
    while (held.length === 0) {
      let done = false;
      holds.push(request(`${url}/hold`).then((r) => r.body.text()).finally(() => (done = true)));
      await waitFor(() => held.length > 0 || done, 2000, 'the hold to land');
    }
    assert.equal((await servedBy(url, 10)).get('busy'), undefined, 'least-connections never picks the busy one');
    lb.balancer.policy.set('round-robin');
    assert.equal((await servedBy(url, 10)).get('busy'), 5, 'round robin takes turns regardless of load');
    lb.balancer.policy.set('least-connections');
    assert.equal((await servedBy(url, 6)).get('busy'), undefined);
    for (const res of held.splice(0)) res.end('held');
    await Promise.all(holds);
  });

  it('peak-EWMA learns from finished requests and steers away from a slower upstream', async () => {
    // 250 ms: far above any stall a busy test machine gives the fast one (peak-EWMA takes a peak
    // at once, so a 60 ms hiccup of the fast origin must not outweigh the slow one).
    origins = [await startOrigin(namedHandler('fast')), await startOrigin(namedHandler('slow', 250))];
    lb = await startBalancer(testConfig(origins.map((o) => o.port), { policy: 'peak-ewma' }));
    // The slow origin answers /slow after 250 ms, the fast one at once: both see the same path.
    const counts = await servedBy(lb.url, 40, '/slow');
    // Unmeasured upstreams cost 0, so each gets tried; after one slow answer the slow one costs far
    // more than the fast one, until its estimate decays (10 s). Round robin would give it 20.
    assert.ok((counts.get('slow') ?? 0) <= 2, `slow got ${counts.get('slow') ?? 0} of 40`);
    assert.equal(lb.balancer.snapshot().policy, 'peak-ewma');
  });
});
