import assert from 'node:assert/strict';
import { BACKEND_PORT } from '../../test-compose/lib/cluster.js';
import { upstreamIdOf, type SwarmCluster } from '../lib/swarm.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** nginx -> balancer -> backend tasks, with the balancer on task addresses rather than the service VIP. */
export function trafficSuite(cluster: () => SwarmCluster, replicas: number): void {
  describe('traffic through nginx', () => {
    it(`spreads image requests over all ${replicas} backend tasks (distinct X-Backend-Id)`, async () => {
      const c = cluster();
      const tasks = await c.waitForBackends(replicas);
      const hostnameByUpstream = new Map(tasks.map((t) => [upstreamIdOf(t), t.hostname]));
      const seen = new Map<string, number>();
      for (let i = 0; i < 4 * replicas; i++) {
        const res = await c.web.get(`/images/1?nocache=${i}`);
        assert.equal(res.status, 200, res.body.toString('utf8'));
        assert.ok(res.body.subarray(0, 8).equals(PNG_SIGNATURE), 'body is a PNG');
        const backendId = res.headers['x-backend-id'] ?? '';
        const upstream = res.headers['x-upstream'] ?? '';
        // The balancer's X-Upstream (a task address) and the backend's own id name the same task.
        assert.equal(`${hostnameByUpstream.get(upstream) ?? `unknown upstream ${upstream}`}:${BACKEND_PORT}`, backendId);
        seen.set(backendId, (seen.get(backendId) ?? 0) + 1);
      }
      assert.deepEqual(
        [...seen.keys()].sort(),
        tasks.map((t) => `${t.hostname}:${BACKEND_PORT}`).sort(),
        `every task served (counts: ${JSON.stringify(Object.fromEntries(seen))})`,
      );
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
