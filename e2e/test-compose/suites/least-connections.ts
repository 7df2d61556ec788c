import assert from 'node:assert/strict';
import { parseDecision, type Decision } from '../../lib/balancer-api.js';
import type { ClusterHarness } from '../../lib/cluster-harness.js';
import type { HttpResult } from '../../lib/http.js';
import { waitFor } from '../../lib/wait.js';

const decisionOf = (res: HttpResult): Decision => {
  const header = res.headers['x-lb-decision'];
  assert.ok(header, 'X-Lb-Decision present (LB_EXPLAIN=1 in docker-compose.yml)');
  return parseDecision(header);
};

/** in-flight ÷ weight: what least-connections compares. */
const load = (c: { inFlight: number; weight: number }): number => c.inFlight / c.weight;

/** The balancer's choices follow least-connections under overlapping slow requests. */
export function leastConnectionsSuite(cluster: () => ClusterHarness): void {
  describe('least-connections', () => {
    it('sends new requests to the only idle replica while the others serve slow requests', async () => {
      const c = cluster();
      await c.waitForBackends(4);
      await waitFor(async () => ((await c.snapshot()).totals.inFlight === 0 ? true : undefined), { what: 'an idle balancer', timeoutMs: 30_000 });

      // /images/4 takes 3 s in the e2e cluster (BACKEND_DELAYS_MS, scale 0.01): three of them keep
      // three replicas busy while the fast requests below are routed.
      const slow = [0, 1, 2].map((i) => c.web.get(`/images/4?slow=${i}`, 30_000));
      let settled: PromiseSettledResult<HttpResult>[];
      try {
        const snap = await waitFor(
          async () => {
            const s = await c.snapshot();
            return s.totals.inFlight === 3 ? s : undefined;
          },
          { what: 'three slow requests in flight', timeoutMs: 2_500, intervalMs: 50 },
        );
        const busy = snap.upstreams.filter((u) => u.inFlight > 0);
        assert.equal(busy.length, 3, `one slow request per replica: ${JSON.stringify(snap.upstreams)}`);
        const idle = snap.upstreams.filter((u) => u.available && u.inFlight === 0);
        assert.equal(idle.length, 1);
        const idleId = idle[0]?.id;

        for (let i = 0; i < 4; i++) {
          const res = await c.web.get(`/images/1?fast=${i}`);
          assert.equal(res.status, 200);
          const d = decisionOf(res);
          // Precondition (else the slow requests ended early and the test proves nothing).
          assert.equal(d.candidates.filter((x) => x.inFlight > 0).length, 3, `slow requests still in flight: ${res.headers['x-lb-decision'] ?? ''}`);
          assert.equal(res.headers['x-upstream'], idleId, `fast request ${i} went to the idle replica`);
          assert.equal(d.chosen, idleId);
          assert.equal(d.reason, 'least-loaded');
        }
      } finally {
        // Never leave requests running into the next test.
        settled = await Promise.allSettled(slow);
      }
      const upstreams = settled.map((r) => (r.status === 'fulfilled' ? r.value.headers['x-upstream'] : String(r.reason)));
      assert.equal(new Set(upstreams).size, 3, `slow requests on three distinct replicas: ${JSON.stringify(upstreams)}`);
    });

    it('always picks a candidate with the least in-flight requests (overlapping mixed delays)', async () => {
      const c = cluster();
      await c.waitForBackends(4);
      // 6 concurrent loops of fast and slow requests: 6 in flight over 4 replicas, so decisions
      // see uneven loads, and every one must choose the least-loaded candidate it saw.
      const paths = ['/images/1', '/images/2', '/images/3', '/images/1', '/images/2'];
      const decisions: Decision[] = [];
      await Promise.all(
        Array.from({ length: 6 }, async (_, w) => {
          for (let i = 0; i < 5; i++) {
            const res = await c.web.get(`${paths[(w + i) % paths.length] ?? '/images/1'}?mix=${w}-${i}`);
            assert.equal(res.status, 200);
            const d = decisionOf(res);
            assert.equal(res.headers['x-upstream'], d.chosen);
            decisions.push(d);
          }
        }),
      );
      let uneven = 0;
      for (const d of decisions) {
        const chosen = d.candidates.find((x) => x.id === d.chosen);
        assert.ok(chosen, `chosen is a candidate: ${JSON.stringify(d)}`);
        const min = Math.min(...d.candidates.map(load));
        assert.equal(load(chosen), min, `least-loaded chosen: ${JSON.stringify(d)}`);
        if (d.candidates.some((x) => load(x) !== min)) uneven++;
      }
      // Guard against a vacuous pass: some decisions must have had a real choice to make.
      assert.ok(uneven >= 5, `only ${uneven} of ${decisions.length} decisions saw uneven loads`);
    });
  });
}
