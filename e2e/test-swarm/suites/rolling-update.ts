import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { backendIdOf } from '../../lib/upstream-id.js';
import { waitFor } from '../../lib/wait.js';
import { BALANCER_TASKS, type SwarmCluster } from '../lib/swarm.js';
import { MAX_SLOW, SLOW_MS, WARMUP_MS, failureText, savePerSecond, seconds, startTrackedStream, streamText, type TrackedResult } from '../lib/traffic.js';

interface UpdateStatus {
  State: string;
  Message?: string;
}

/** `docker service update --force` (update_config: start-first, parallelism 1) under load. */
export function rollingUpdateSuite(cluster: () => SwarmCluster, replicas: number): void {
  describe('rolling update of the backend service', () => {
    it(`replaces all ${replicas} tasks one by one, start-first, under open-loop GETs (200/s): 0 failed, ≤ 5 over 0.5 s`, async function () {
      this.timeout(300_000);
      const c = cluster();
      const service = `${c.stack}_backend`;
      const before = await c.waitForBackends(replicas);
      const old = new Set(before.map((t) => t.id));
      const stream = startTrackedStream(c.web);
      let result: TrackedResult;
      let updateMs: number;
      let fresh: string[];
      let minServing = Infinity;
      try {
        await stream.flowing(20, replicas);
        await sleep(WARMUP_MS);
        const t0 = performance.now();
        stream.mark('service update --force');
        await c.docker(['service', 'update', '--force', '--detach', service]);
        // start-first: the number of running, healthy tasks never drops below the replica count.
        const status = await waitFor(
          async () => {
            const serving = (await c.backends()).filter((t) => t.status === 'running' && t.health === 'healthy').length;
            minServing = Math.min(minServing, serving);
            const res = await c.docker(['service', 'inspect', '--format', '{{json .UpdateStatus}}', service]);
            const s = JSON.parse(res.stdout.trim() || 'null') as UpdateStatus | null;
            if (s && /rollback|paused/.test(s.State)) throw new Error(`update ${s.State}: ${s.Message ?? ''}`);
            return s?.State === 'completed' ? s : undefined;
          },
          { what: `the update of ${service} to complete`, timeoutMs: 180_000, intervalMs: 500 },
        );
        assert.equal(status.State, 'completed');
        updateMs = performance.now() - t0;
        const after = await c.waitForBackends(replicas, 90_000);
        assert.ok(after.every((t) => !old.has(t.id)), 'every task was replaced');
        fresh = after.map(backendIdOf);
        await stream.served(fresh);
        await sleep(1_000);
      } finally {
        result = await stream.stop();
      }
      Object.assign(c.figures, {
        rollingUpdateMs: Math.round(updateMs),
        rollingUpdateMinHealthyTasks: minServing,
        rollingUpdateRequests: result.summary.requests,
        rollingUpdateFailed: result.summary.failed,
      });
      console.log(
        `      [swarm] service update --force (${replicas} tasks, start-first): completed in ${seconds(updateMs)}, ` +
          `never fewer than ${minServing} healthy tasks; stream ${streamText(result)} over ${result.backends.size} tasks`,
      );
      await savePerSecond('swarm-rolling-update', result);
      assert.equal(result.summary.failed, 0, `failed requests: ${failureText(result)}`);
      assert.ok(result.summary.slow <= MAX_SLOW, `${result.summary.slow} requests over ${SLOW_MS} ms (p99 ${Math.round(result.summary.p99)} ms; per second: e2e/artifacts/swarm-rolling-update.txt)`);
      assert.ok(minServing >= replicas, `start-first kept ${replicas} healthy tasks at all times (saw ${minServing})`);
      assert.equal(fresh.length, replicas);
    });
  });
}

/**
 * `docker service update --force` of the balancer service under load: its tasks replaced one at a
 * time, start-first (a new task healthy and in `tasks.balancer` before an old one stops), while the
 * others take every request, as the Compose suite's restart and roll of the balancers.
 */
export function rollingBalancerUpdateSuite(cluster: () => SwarmCluster, replicas: number): void {
  describe('rolling update of the balancer service', () => {
    it(`replaces both balancer tasks one by one, start-first, under open-loop GETs (200/s): 0 failed`, async function () {
      this.timeout(300_000);
      const c = cluster();
      const service = `${c.stack}_balancer`;
      await c.waitForBackends(replicas);
      const old = new Set((await c.tasks('balancer')).filter((t) => t.status === 'running').map((t) => t.id));
      assert.equal(old.size, BALANCER_TASKS);
      const stream = startTrackedStream(c.web);
      let result: TrackedResult;
      let updateMs: number;
      try {
        await stream.flowing(20, replicas);
        await sleep(WARMUP_MS);
        const t0 = performance.now();
        stream.mark('service update --force balancer');
        await c.docker(['service', 'update', '--force', '--detach', service]);
        await waitFor(
          async () => {
            const res = await c.docker(['service', 'inspect', '--format', '{{json .UpdateStatus}}', service]);
            const s = JSON.parse(res.stdout.trim() || 'null') as UpdateStatus | null;
            if (s && /rollback|paused/.test(s.State)) throw Object.assign(new Error(`update ${s.State}: ${s.Message ?? ''}`), { fatal: true });
            return s?.State === 'completed' ? s : undefined;
          },
          { what: `the update of ${service} to complete`, timeoutMs: 180_000, intervalMs: 500 },
        );
        updateMs = performance.now() - t0;
        // Every balancer task new, each routing to every backend task.
        await c.waitForBackends(replicas, 90_000);
        const now = (await c.tasks('balancer')).filter((t) => t.status === 'running');
        assert.ok(now.every((t) => !old.has(t.id)), 'every balancer task was replaced');
        stream.mark('balancers replaced');
        await sleep(1_000);
      } finally {
        result = await stream.stop();
      }
      Object.assign(c.figures, { balancerUpdateMs: Math.round(updateMs), balancerUpdateRequests: result.summary.requests, balancerUpdateFailed: result.summary.failed });
      console.log(`      [swarm] service update --force balancer (${BALANCER_TASKS} tasks, start-first): completed in ${seconds(updateMs)}; stream ${streamText(result)}`);
      await savePerSecond('swarm-balancer-update', result);
      assert.equal(result.summary.failed, 0, `failed requests: ${failureText(result)}`);
    });
  });
}
