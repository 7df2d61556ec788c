import assert from 'node:assert/strict';
import type { ClusterHarness } from '../../lib/cluster-harness.js';
import { PNG_SIGNATURE, assertEveryReplicaServed } from '../../lib/replicas-served.js';

/** Requests through nginx (:8080 in production) reach every replica. */
export function trafficSuite(cluster: () => ClusterHarness): void {
  describe('traffic through nginx', () => {
    it('spreads image requests over all 4 replicas (distinct X-Backend-Id)', async () => {
      const c = cluster();
      await assertEveryReplicaServed(c.web, await c.waitForBackends(4), 16);
    });

    it('passes backend errors through unchanged (404 JSON for an unknown image)', async () => {
      const res = await cluster().web.get('/images/9');
      assert.equal(res.status, 404);
      assert.equal((JSON.parse(res.body.toString('utf8')) as { error: string }).error, 'IMAGE_NOT_FOUND');
    });

    it('serves the same images on the balancer\'s published data port', async () => {
      const res = await cluster().balancer.get('/images/1');
      assert.equal(res.status, 200);
      assert.ok(res.body.subarray(0, 8).equals(PNG_SIGNATURE));
      assert.ok(res.headers['x-upstream'], 'X-Upstream present');
    });
  });
}
