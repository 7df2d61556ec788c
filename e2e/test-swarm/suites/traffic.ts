import assert from 'node:assert/strict';
import { upstreamIdOf } from '../../test-compose/lib/cluster.js';
import { PNG_SIGNATURE, assertEveryReplicaServed } from '../../test-compose/lib/replicas-served.js';
import type { SwarmCluster } from '../lib/swarm.js';

/** nginx -> balancer -> backend tasks, with the balancer on task addresses rather than the service VIP. */
export function trafficSuite(cluster: () => SwarmCluster, replicas: number): void {
  describe('traffic through nginx', () => {
    it(`spreads image requests over all ${replicas} backend tasks (distinct X-Backend-Id)`, async () => {
      // X-Upstream is a task address (tasks.backend), never the service VIP.
      const c = cluster();
      await assertEveryReplicaServed(c.web, await c.waitForBackends(replicas), 4 * replicas);
    });

    it('the balancer balances over tasks.backend (one upstream per task), never over the service VIP', async () => {
      const c = cluster();
      const tasks = await c.waitForBackends(replicas);
      const vips = await c.virtualIps('backend');
      assert.ok(vips.length > 0, 'the backend service has a VIP to avoid');
      const upstreams = (await c.snapshot()).upstreams;
      assert.deepEqual(upstreams.map((u) => u.id).sort(), tasks.map(upstreamIdOf).sort());
      assert.ok(upstreams.every((u) => u.source === 'dns'), 'all found by DNS discovery');
      for (const vip of vips) assert.ok(!upstreams.some((u) => u.id.startsWith(`${vip}:`)), `VIP ${vip} is not an upstream`);
    });

    it('serves the same images on the balancer\'s published data port', async () => {
      const res = await cluster().balancer.get('/images/1');
      assert.equal(res.status, 200);
      assert.ok(res.body.subarray(0, 8).equals(PNG_SIGNATURE));
      assert.ok(res.headers['x-upstream'], 'X-Upstream present');
    });
  });
}
