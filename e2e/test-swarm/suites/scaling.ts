import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { backendIdOf, upstreamIdOf } from '../../lib/upstream-id.js';
import type { SwarmCluster, TaskContainer } from '../lib/swarm.js';
import { MAX_SLOW, SLOW_MS, WARMUP_MS, failureText, savePerSecond, seconds, startTrackedStream, streamText, type TrackedResult } from '../lib/traffic.js';
import { expectBackendTargets } from './prometheus.js';

/** How soon after its first passing health probe a new task must serve: Swarm adds it to DNS, the balancer
 * polls every second, then probes it once (measured here: 0.2-1.3 s; the rest is slack for busy CI). */
const MAX_JOIN_LAG_MS = 4_000;

/**
 * Logs whether a scaling event met the issue's goal (≤ MAX_SLOW over SLOW_MS); not asserted under
 * Swarm (docs/measurements.md). With the daemons in a cgroup of their own and no VIPs it
 * was met in most runs here (0-27 over 0.5 s, from 7-1545 before), but in the second right after
 * `docker service scale`, before any new container has started, the whole machine is sometimes
 * short of CPU: a clean-clone CI run had 24 over 0.5 s in that second while the load generator
 * itself sent up to 310 ms late (the per-second `late` column), a local one 77, earlier CI runs 138
 * and 190. A `cpuacct` cgroup around the daemons showed them at 0.6-1.6 CPUs for that second (task
 * set-up: shims, runc, libnetwork's helpers, iptables), the containers at their usual 0.5. Giving
 * the daemons less CPU weight did not help under Compose (docs/measurements.md), so that is no fix to show yet.
 */
const logGoal = (event: string, result: TrackedResult): void => {
  const met = result.summary.slow <= MAX_SLOW;
  console.log(`      [swarm] ${event}: goal (≤ ${MAX_SLOW} over ${SLOW_MS} ms) ${met ? 'met' : `NOT met: ${result.summary.slow} over, the load generator up to ${Math.round(result.summary.late)} ms late`}`);
};

/** `docker service scale` while a steady stream of GETs runs through nginx. */
export function scalingSuite(cluster: () => SwarmCluster, from: number, up: number, down: number): void {
  describe('docker service scale under open-loop GETs (200/s)', () => {
    it(`scale ${from} → ${up}: new tasks get traffic once healthy, 0 failed; goal ≤ ${MAX_SLOW} over ${SLOW_MS} ms logged`, async function () {
      this.timeout(300_000);
      const c = cluster();
      const before = await c.waitForBackends(from);
      const old = new Set(before.map((t) => t.id));
      const healthyAt = new Map<string, number>(); // backend id -> end of its first passing probe
      const stream = startTrackedStream(c.web);
      let result: TrackedResult;
      let scaleMs: number;
      let availableMs: number;
      let fresh: string[];
      try {
        await stream.flowing(20, from);
        await sleep(WARMUP_MS);
        const t0 = performance.now();
        stream.mark(`scale ${from} → ${up}`);
        scaleMs = await c.scale(up);
        // Once a second (Docker keeps the last 5 probe results, one every 2 s here): note when each
        // new task first passed its probe, until all are running and available in the balancer.
        let after: TaskContainer[] | undefined;
        for (let i = 0; i < 150 && after === undefined; i++) {
          await sleep(1_000);
          const running = (await c.backends().catch(() => [])).filter((t) => t.status === 'running');
          for (const t of running.filter((x) => !old.has(x.id))) {
            const id = backendIdOf(t);
            if (t.firstPassingProbeAt !== undefined) healthyAt.set(id, Math.min(t.firstPassingProbeAt, healthyAt.get(id) ?? Infinity));
          }
          if (running.length === up && running.every((t) => t.health === 'healthy')) {
            const available = (await c.snapshot()).upstreams.filter((u) => u.available).map((u) => u.id).sort();
            if (available.join() === running.map(upstreamIdOf).sort().join()) after = running;
          }
        }
        assert.ok(after, `${up} healthy tasks, all available in the balancer, within 150 s`);
        availableMs = performance.now() - t0;
        stream.mark(`all ${up} available`);
        fresh = after.filter((t) => !old.has(t.id)).map(backendIdOf);
        await stream.served(fresh);
        // Late failures count too.
        await sleep(1_000);
      } finally {
        result = await stream.stop();
      }
      const lags = fresh.map((id) => (stream.firstServed.get(id) ?? NaN) - (healthyAt.get(id) ?? NaN));
      Object.assign(c.figures, {
        scaleUpCommandMs: Math.round(scaleMs),
        scaleUpAllAvailableMs: Math.round(availableMs),
        scaleUpMaxJoinLagMs: Math.max(...lags),
        scaleUpRequests: result.summary.requests,
        scaleUpFailed: result.summary.failed,
      });
      console.log(
        `      [swarm] scale ${from} → ${up}: all ${up} tasks available in the balancer ${seconds(availableMs)} after the command; ` +
          `new tasks first served ${lags.map((l) => `${l} ms`).join(', ')} after healthy; stream ${streamText(result)}`,
      );
      await savePerSecond(`swarm-scale-${from}-${up}`, result);
      assert.equal(result.summary.failed, 0, `failed requests: ${failureText(result)}`);
      logGoal(`scale ${from} → ${up}`, result);
      assert.equal(fresh.length, up - from, 'new tasks');
      for (const lag of lags) assert.ok(Number.isFinite(lag) && lag <= MAX_JOIN_LAG_MS, `a new task served ${lag} ms after it was healthy (limit ${MAX_JOIN_LAG_MS} ms)`);
    });

    it(`scale ${up} → ${down}: 0 failed; goal ≤ ${MAX_SLOW} over ${SLOW_MS} ms logged`, async function () {
      this.timeout(300_000);
      const c = cluster();
      await c.waitForBackends(up);
      const stream = startTrackedStream(c.web);
      let result: TrackedResult;
      let settledMs: number;
      try {
        // Scale down only once the stream flows through every task.
        await stream.flowing(20, up);
        await sleep(WARMUP_MS);
        const t0 = performance.now();
        stream.mark(`scale ${up} → ${down}`);
        await c.scale(down);
        await c.waitForBackends(down, 120_000);
        stream.mark(`${down} remain`);
        settledMs = performance.now() - t0;
        await sleep(1_000);
      } finally {
        result = await stream.stop();
      }
      Object.assign(c.figures, { scaleDownSettledMs: Math.round(settledMs), scaleDownRequests: result.summary.requests, scaleDownFailed: result.summary.failed });
      console.log(`      [swarm] scale ${up} → ${down}: ${seconds(settledMs)} until ${down} tasks remain; stream ${streamText(result)} over ${result.backends.size} tasks`);
      await savePerSecond(`swarm-scale-${up}-${down}`, result);
      assert.equal(result.summary.failed, 0, `failed requests: ${failureText(result)}`);
      logGoal(`scale ${up} → ${down}`, result);
      assert.equal(result.backends.size, up, `the stream reached all ${up} tasks before the scale-down`);
      assert.ok(result.summary.ok >= 400, `the stream kept flowing (${result.summary.ok} requests)`);
    });

    it(`Prometheus follows: only the ${down} remaining tasks are backend targets`, async () => {
      const c = cluster();
      const tasks = await c.waitForBackends(down);
      await expectBackendTargets(c, tasks.map(upstreamIdOf));
    });
  });
}
