import assert from 'node:assert/strict';
import { PNG_SIGNATURE, assertEveryReplicaServed } from '../../lib/replicas-served.js';
import { upstreamIdOf } from '../../lib/upstream-id.js';
import type { SwarmCluster } from '../lib/swarm.js';

/** nginx -> balancer -> backend tasks, with the balancer on task addresses (the backend service has no VIP). */
export function trafficSuite(cluster: () => SwarmCluster, replicas: number): void {
  describe('traffic through nginx', () => {
    it(`spreads image requests over all ${replicas} backend tasks (distinct X-Backend-Id)`, async () => {
      const c = cluster();
      await assertEveryReplicaServed(c.web, await c.waitForBackends(replicas), 4 * replicas);
    });

    it('the balancer balances over tasks.backend (one upstream per task); the backend service has no VIP (dnsrr)', async () => {
      const c = cluster();
      const tasks = await c.waitForBackends(replicas);
      // No VIP: Swarm would otherwise update its load balancer inside every task of the network
      // each time a backend task starts or stops (docker-stack.yml), and nothing here uses it.
      assert.deepEqual(await c.virtualIps('backend'), [], 'endpoint_mode dnsrr: no virtual IP');
      const upstreams = (await c.snapshot()).upstreams;
      assert.deepEqual(upstreams.map((u) => u.id).sort(), tasks.map(upstreamIdOf).sort());
      assert.ok(upstreams.every((u) => u.source === 'dns'), 'all found by DNS discovery');
    });

    it('serves the same images on the balancer\'s published data port', async () => {
      const res = await cluster().balancer.get('/images/1');
      assert.equal(res.status, 200);
      assert.ok(res.body.subarray(0, 8).equals(PNG_SIGNATURE));
      assert.ok(res.headers['x-upstream'], 'X-Upstream present');
    });
  });
}
