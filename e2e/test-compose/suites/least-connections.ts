import assert from 'node:assert/strict';
import { parseDecision, type Decision, type Snapshot } from '../../lib/balancer-api.js';
import type { ClusterHarness } from '../../lib/cluster-harness.js';
import type { HttpResult } from '../../lib/http.js';
import { waitFor } from '../../lib/wait.js';

const decisionOf = (res: HttpResult): Decision => {
  const header = res.headers['x-lb-decision'];
  assert.ok(header, 'X-Lb-Decision present (LB_EXPLAIN=1 in docker-compose.yml)');
  return parseDecision(header);
};

/** in-flight ÷ weight: what least-connections compares (the counts of every balancer, as the header shows them). */
const load = (c: { inFlight: number; weight: number }): number => c.inFlight / c.weight;

/** Requests in flight across the balancers, as one balancer sees them (its own plus its live peers' reports). */
const clusterInFlight = (s: Snapshot): number => s.upstreams.reduce((n, u) => n + u.inFlightCluster, 0);

/** `id=count` of every upstream with requests in flight across the balancers, sorted: comparable between views. */
const busyOf = (s: Snapshot): string =>
  s.upstreams
    .filter((u) => u.inFlightCluster > 0)
    .map((u) => `${u.id}=${u.inFlightCluster}`)
    .sort()
    .join(' ');

/**
 * The balancers' choices follow least-connections under overlapping slow requests. nginx spreads
 * requests over every balancer replica; they share their in-flight counts, so each one picks on
 * the whole cluster's load.
 */
export function leastConnectionsSuite(cluster: () => ClusterHarness): void {
  describe('least-connections', () => {
    it('sends new requests to the only idle replica while the others serve slow requests, whichever balancer routes them', async () => {
      const c = cluster();
      await c.waitForBackends(4);
      await waitFor(async () => ((await c.balancerSnapshots()).every((s) => clusterInFlight(s) === 0) ? true : undefined), { what: 'idle balancers', timeoutMs: 30_000 });

      /** The one view every balancer agrees on once `n` requests are in flight (its own counts plus the others' reports, every 20 ms). */
      const agreed = (n: number) => async (): Promise<Snapshot | undefined> => {
        const views = await c.balancerSnapshots();
        const [first] = views;
        return first && views.every((s) => clusterInFlight(s) === n && busyOf(s) === busyOf(first)) ? first : undefined;
      };
      // /images/4 takes 3 s in the e2e cluster (BACKEND_DELAYS_MS, scale 0.01): three of them keep
      // three replicas busy while the fast requests below are routed. One at a time, each once
      // every balancer counts the one before: two balancers picking in the same 20 ms would not yet
      // know of each other's pick.
      const slow: Promise<HttpResult>[] = [];
      let settled: PromiseSettledResult<HttpResult>[];
      try {
        for (let i = 0; i < 3; i++) {
          slow.push(c.web.get(`/images/4?slow=${i}`, 30_000));
          await waitFor(agreed(i + 1), { what: `${i + 1} slow requests in flight, seen by every balancer`, timeoutMs: 1_000, intervalMs: 20 });
        }
        const snap = await waitFor(agreed(3), { what: 'three slow requests in flight, seen by every balancer', timeoutMs: 1_000, intervalMs: 20 });
        const busy = snap.upstreams.filter((u) => u.inFlightCluster > 0);
        assert.equal(busy.length, 3, `one slow request per replica: ${JSON.stringify(snap.upstreams)}`);
        const idle = snap.upstreams.filter((u) => u.available && u.inFlightCluster === 0);
        assert.equal(idle.length, 1);
        const idleId = idle[0]?.id;

        for (let i = 0; i < 4; i++) {
          // The previous fast request is over, but the balancer that routed it reports so only
          // with its next report: wait until no balancer still counts it.
          if (i > 0) await waitFor(agreed(3), { what: `the balancers to see fast request ${i - 1} end`, timeoutMs: 1_000, intervalMs: 20 });
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
