import assert from 'node:assert/strict';
import { activeTargets } from '../../lib/prometheus.js';
import { upstreamIdOf } from '../../lib/upstream-id.js';
import { waitFor } from '../../lib/wait.js';
import { BALANCER_TASKS, type SwarmCluster } from '../lib/swarm.js';

const sorted = (xs: readonly string[]): string[] => [...xs].sort();

/** Waits until Prometheus scrapes every balancer task and exactly the given backend tasks, all up. */
export async function expectBackendTargets(c: SwarmCluster, expected: readonly string[]): Promise<void> {
  const balancerTasks = (await c.tasks('balancer')).filter((t) => t.status === 'running');
  assert.equal(balancerTasks.length, BALANCER_TASKS, 'running balancer tasks');
  const balancerTargets = sorted(balancerTasks.map((t) => `${t.ip ?? '?'}:9001`)).join();
  await waitFor(
    async () => {
      const [balancer, backends] = await Promise.all([activeTargets(c.prometheus, 'balancer'), activeTargets(c.prometheus, 'backend')]);
      const ok =
        sorted(balancer.map((t) => t.labels.instance ?? '')).join() === balancerTargets &&
        balancer.every((t) => t.health === 'up') &&
        sorted(backends.map((t) => t.labels.instance ?? '')).join() === sorted(expected).join() &&
        backends.every((t) => t.health === 'up');
      if (ok) return true;
      throw new Error(
        `balancer ${JSON.stringify(balancer.map((t) => `${t.labels.instance ?? '?'}=${t.health}`))}, ` +
          `backends ${JSON.stringify(backends.map((t) => `${t.labels.instance ?? '?'}=${t.health}`))}`,
      );
    },
    { what: `Prometheus targets: ${BALANCER_TASKS} balancers + ${expected.join(', ')} up`, timeoutMs: 45_000, intervalMs: 500 },
  );
}

/** Prometheus finds the tasks through `tasks.backend` / `tasks.balancer`, like the balancer does. */
export function prometheusSuite(cluster: () => SwarmCluster, replicas: number): void {
  describe('Prometheus', () => {
    it(`scrapes every balancer task and all ${replicas} backend tasks (dns_sd_configs on tasks.*), all up`, async () => {
      const c = cluster();
      const tasks = await c.waitForBackends(replicas);
      await expectBackendTargets(c, tasks.map(upstreamIdOf));
    });
  });
}
