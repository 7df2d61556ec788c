import assert from 'node:assert/strict';
import { activeTargets } from '../../lib/prometheus.js';
import { upstreamIdOf } from '../../lib/upstream-id.js';
import { waitFor } from '../../lib/wait.js';
import type { SwarmCluster } from '../lib/swarm.js';

const sorted = (xs: readonly string[]): string[] => [...xs].sort();

/** Waits until Prometheus scrapes one balancer task and exactly the given backend tasks, all up. */
export async function expectBackendTargets(c: SwarmCluster, expected: readonly string[]): Promise<void> {
  const [balancerTask] = (await c.tasks('balancer')).filter((t) => t.status === 'running');
  assert.ok(balancerTask?.ip, 'a running balancer task');
  await waitFor(
    async () => {
      const [balancer, backends] = await Promise.all([activeTargets(c.prometheus, 'balancer'), activeTargets(c.prometheus, 'backend')]);
      const ok =
        sorted(balancer.map((t) => t.labels.instance ?? '')).join() === `${balancerTask.ip ?? ''}:9001` &&
        balancer.every((t) => t.health === 'up') &&
        sorted(backends.map((t) => t.labels.instance ?? '')).join() === sorted(expected).join() &&
        backends.every((t) => t.health === 'up');
      if (ok) return true;
      throw new Error(
        `balancer ${JSON.stringify(balancer.map((t) => `${t.labels.instance ?? '?'}=${t.health}`))}, ` +
          `backends ${JSON.stringify(backends.map((t) => `${t.labels.instance ?? '?'}=${t.health}`))}`,
      );
    },
    { what: `Prometheus targets: balancer + ${expected.join(', ')} up`, timeoutMs: 45_000, intervalMs: 500 },
  );
}

/** Prometheus finds the tasks through `tasks.backend` / `tasks.balancer`, like the balancer does. */
export function prometheusSuite(cluster: () => SwarmCluster, replicas: number): void {
  describe('Prometheus', () => {
    it(`scrapes the balancer task and all ${replicas} backend tasks (dns_sd_configs on tasks.*), all up`, async () => {
      const c = cluster();
      const tasks = await c.waitForBackends(replicas);
      await expectBackendTargets(c, tasks.map(upstreamIdOf));
    });
  });
}
