import assert from 'node:assert/strict';
import { BACKEND_PORT, backendIdOf, upstreamIdOf } from './upstream-id.js';
import type { ContainerInfo } from './docker-inspect.js';
import type { HttpClient } from './http.js';

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * Sends `requests` image GETs through `web` (nginx) one after another and checks that each is a
 * PNG, that the balancer's X-Upstream (an address) and the backend's own X-Backend-Id name the
 * same replica, and that every one of `replicas` served.
 */
export async function assertEveryReplicaServed(web: HttpClient, replicas: readonly ContainerInfo[], requests: number): Promise<void> {
  const hostnameByUpstream = new Map(replicas.map((r) => [upstreamIdOf(r), r.hostname]));
  const seen = new Map<string, number>();
  for (let i = 0; i < requests; i++) {
    const res = await web.get(`/images/1?nocache=${i}`);
    assert.equal(res.status, 200, res.body.toString('utf8'));
    assert.match(res.headers['content-type'] ?? '', /^image\/png/);
    assert.ok(res.body.subarray(0, 8).equals(PNG_SIGNATURE), 'body is a PNG');
    const backendId = res.headers['x-backend-id'] ?? '';
    const upstream = res.headers['x-upstream'] ?? '';
    assert.equal(`${hostnameByUpstream.get(upstream) ?? `unknown upstream ${upstream}`}:${BACKEND_PORT}`, backendId);
    seen.set(backendId, (seen.get(backendId) ?? 0) + 1);
  }
  assert.deepEqual(
    [...seen.keys()].sort(),
    replicas.map(backendIdOf).sort(),
    `every replica served (counts: ${JSON.stringify(Object.fromEntries(seen))})`,
  );
}
