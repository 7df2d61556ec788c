import assert from 'node:assert/strict';
import { BACKEND_PORT, upstreamIdOf, type Cluster } from '../lib/cluster.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Requests through nginx (:8080 in production) reach every replica. */
export function trafficSuite(cluster: () => Cluster): void {
  describe('traffic through nginx', () => {
    it('spreads image requests over all 4 replicas (distinct X-Backend-Id)', async () => {
      const c = cluster();
      const replicas = await c.waitForBackends(4);
      const hostnameByUpstream = new Map(replicas.map((r) => [upstreamIdOf(r), r.hostname]));
      const seen = new Map<string, number>();
      for (let i = 0; i < 16; i++) {
        const res = await c.web.get(`/images/1?nocache=${i}`);
        assert.equal(res.status, 200, res.body.toString('utf8'));
        assert.match(res.headers['content-type'] ?? '', /^image\/png/);
        assert.ok(res.body.subarray(0, 8).equals(PNG_SIGNATURE), 'body is a PNG');
        const backendId = res.headers['x-backend-id'] ?? '';
        const upstream = res.headers['x-upstream'] ?? '';
        // The balancer's X-Upstream and the backend's own id must name the same container.
        assert.equal(`${hostnameByUpstream.get(upstream) ?? `unknown upstream ${upstream}`}:${BACKEND_PORT}`, backendId);
        seen.set(backendId, (seen.get(backendId) ?? 0) + 1);
      }
      assert.deepEqual(
        [...seen.keys()].sort(),
        replicas.map((r) => `${r.hostname}:${BACKEND_PORT}`).sort(),
        `every replica served (counts: ${JSON.stringify(Object.fromEntries(seen))})`,
      );
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
