import assert from 'node:assert/strict';
import type { ClusterHarness } from '../../lib/cluster-harness.js';
import { activeTargets, queryValue } from '../../lib/prometheus.js';
import { upstreamIdOf } from '../../lib/upstream-id.js';
import { waitFor } from '../../lib/wait.js';
import { BALANCER_REPLICAS, type Cluster } from '../lib/cluster.js';

const sorted = (xs: readonly string[]): string[] => [...xs].sort();

/**
 * Waits until Prometheus scrapes every balancer replica and exactly the given backend replicas, all up.
 * Exported for the suite of the cluster under change (targets follow `--scale`).
 */
export async function expectBackendTargets(c: ClusterHarness, expected: readonly string[]): Promise<void> {
  await waitFor(
    async () => {
      const [balancer, backends] = await Promise.all([activeTargets(c.prometheus, 'balancer'), activeTargets(c.prometheus, 'backend')]);
      const ok =
        balancer.length === BALANCER_REPLICAS &&
        balancer.every((t) => t.health === 'up') &&
        sorted(backends.map((t) => t.labels.instance ?? '')).join() === sorted(expected).join() &&
        backends.every((t) => t.health === 'up');
      if (ok) return true;
      throw new Error(`balancer ${JSON.stringify(balancer.map((t) => t.health))}, backends ${JSON.stringify(backends.map((t) => `${t.labels.instance ?? '?'}=${t.health}`))}`);
    },
    { what: `Prometheus targets: ${BALANCER_REPLICAS} balancers + ${expected.join(', ')} up`, timeoutMs: 45_000, intervalMs: 500 },
  );
}

/** Prometheus scrapes the balancer and every replica; its counters match the traffic sent. */
export function prometheusSuite(cluster: () => Cluster): void {
  describe('Prometheus', () => {
    it('scrapes every balancer replica and every backend replica (dns_sd_configs), all up', async () => {
      const c = cluster();
      const replicas = await c.waitForBackends(4);
      await expectBackendTargets(c, replicas.map(upstreamIdOf));
    });

    it('sum(lb_requests_total) grows by exactly the requests sent', async () => {
      const c = cluster();
      await c.waitForBackends(4);
      // Quiet balancers: their own counts are then final, and Prometheus must catch up to them.
      // The sum covers every balancer replica: nginx spreads the requests over them.
      const totalOf = async (): Promise<number | undefined> => {
        const views = await c.balancerSnapshots();
        return views.every((s) => s.totals.inFlight === 0) ? views.reduce((n, s) => n + s.totals.requests, 0) : undefined;
      };
      const before = await waitFor(totalOf, { what: 'idle balancers', timeoutMs: 30_000 });
      const query = 'sum(lb_requests_total)';
      await waitFor(async () => ((await queryValue(c.prometheus, query)) === before ? true : undefined), {
        what: `${query} = ${before} (the balancer's own count)`,
        timeoutMs: 30_000,
        intervalMs: 500,
      });

      const sent = 25;
      for (let i = 0; i < sent; i++) {
        const res = await c.web.get(`/images/1?count=${i}`);
        assert.equal(res.status, 200);
      }
      const expected = before + sent;
      await waitFor(async () => ((await totalOf()) === expected ? true : undefined), {
        what: `the balancers to count ${expected} requests`,
        timeoutMs: 10_000,
      });
      let last: number | undefined;
      await waitFor(
        async () => {
          last = await queryValue(c.prometheus, query);
          return last === expected ? true : undefined;
        },
        { what: `${query} = ${expected}`, timeoutMs: 30_000, intervalMs: 500 },
      ).catch((err: unknown) => {
        throw new Error(`Prometheus saw ${String(last)} requests, sent ${sent} on top of ${before}: ${String(err)}`);
      });
    });
  });
}
