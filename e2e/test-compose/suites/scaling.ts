import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { BACKEND_PORT, upstreamIdOf, type Cluster } from '../lib/cluster.js';
import { startStream } from '../lib/stream.js';
import { expectBackendTargets } from './prometheus.js';

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** `--scale backend=N` while the cluster serves: new replicas join fast, removed ones lose nothing. */
export function scalingSuite(cluster: () => Cluster): void {
  describe('scaling', () => {
    it('scale 4 → 6: each new replica receives traffic within 2 s of being healthy', async function () {
      // Starting containers on 2 busy cores can take tens of seconds; the 2 s is measured from healthy.
      this.timeout(300_000);
      const c = cluster();
      const before = await c.waitForBackends(4);
      const old = new Set(before.map((b) => b.id));
      const healthyAt = new Map<string, number>(); // hostname -> end of its first passing probe
      const servedAt = new Map<string, number>(); // hostname -> first response it served

      let scaleMs: number | undefined;
      let scaleError: unknown;
      const scaling = c.scale(6).then(
        (ms) => (scaleMs = ms),
        (err: unknown) => (scaleError = err),
      );
      // Traffic and observation side by side, bounded: until both new replicas were seen healthy
      // (Docker's probe log) and seen serving (X-Backend-Id), or 180 s.
      const deadline = Date.now() + 180_000;
      let newOnes: string[] = [];
      const failures: string[] = [];
      const done = (): boolean =>
        scaleError !== undefined || failures.length >= 10 || (newOnes.length === 2 && newOnes.every((h) => healthyAt.has(h) && servedAt.has(h)));
      const observe = async (): Promise<void> => {
        while (!done() && Date.now() < deadline) {
          // A failed `docker inspect` (container just created or removed) is retried on the next pass.
          const all = (await c.backends().catch(() => undefined))?.filter((b) => !old.has(b.id));
          if (all !== undefined) newOnes = all.map((b) => b.hostname);
          for (const b of all ?? []) {
            if (b.firstPassingProbeAt !== undefined) healthyAt.set(b.hostname, Math.min(b.firstPassingProbeAt, healthyAt.get(b.hostname) ?? Infinity));
          }
          await sleep(250);
        }
      };
      const traffic = async (): Promise<void> => {
        while (!done() && Date.now() < deadline) {
          const res = await c.web.get(`/images/1?up=${Date.now()}`).catch((err: unknown) => err instanceof Error ? err : new Error(String(err)));
          if (res instanceof Error || res.status !== 200) {
            failures.push(res instanceof Error ? res.message : `${res.status} ${res.body.toString('utf8').slice(0, 160)}`);
            continue;
          }
          const host = (res.headers['x-backend-id'] ?? '').replace(new RegExp(`:${BACKEND_PORT}$`), '');
          if (!servedAt.has(host)) servedAt.set(host, Date.now());
        }
      };
      await Promise.all([observe(), traffic(), traffic()]);
      await scaling;
      if (scaleError !== undefined) throw scaleError instanceof Error ? scaleError : new Error(`scale failed: ${JSON.stringify(scaleError)}`);
      assert.deepEqual(failures, [], 'no failed request during the scale-up');

      assert.equal(newOnes.length, 2, 'two new replicas');
      const lags = newOnes.map((h) => {
        const healthy = healthyAt.get(h);
        const served = servedAt.get(h);
        assert.ok(healthy !== undefined, `replica ${h} became healthy within 180 s`);
        assert.ok(served !== undefined, `replica ${h} served a request within 180 s`);
        return served - healthy;
      });
      c.timings.scaleUpMs = Math.round(scaleMs ?? -1);
      c.timings.scaleUpMaxLagMs = Math.max(...lags);
      console.log(`      [compose] up --scale backend=6: ${seconds(scaleMs ?? 0)}; first request served ${lags.map((l) => `${l} ms`).join(', ')} after healthy`);
      for (const lag of lags) assert.ok(lag <= 2_000, `new replica served ${lag} ms after it was healthy (limit 2000 ms)`);
      await c.waitForBackends(6);
    });

    it('scale 6 → 2 under a steady stream of GETs: 0 failed requests', async function () {
      this.timeout(300_000);
      const c = cluster();
      await c.waitForBackends(6);
      // Mixed delays (50, 150, 250 ms) so that removed replicas have requests in flight at SIGTERM.
      const stream = startStream(c.web, {
        workers: 4,
        paths: ['/images/1', '/images/2', '/images/3'],
        maxMs: 180_000,
        maxRequests: 20_000,
      });
      let result;
      let scaleMs: number;
      try {
        // Scale down only once the stream is flowing through all 6 (bounded wait: 30 s).
        for (let i = 0; i < 600 && (stream.finished < 20 || stream.backendsSeen < 6); i++) await sleep(50);
        scaleMs = await c.scale(2);
        const remaining = await c.waitForBackends(2, 120_000);
        // Keep streaming a little after the balancer settled: late failures count too.
        await sleep(1_000);
        assert.equal(remaining.length, 2);
      } finally {
        result = await stream.stop();
      }
      c.timings.scaleDownMs = Math.round(scaleMs);
      c.timings.scaleDownRequests = result.ok + result.failed;
      c.timings.scaleDownFailed = result.failed;
      console.log(`      [compose] up --scale backend=2: ${seconds(scaleMs)}; stream: ${result.ok} ok, ${result.failed} failed over ${result.backends.size} replicas`);
      assert.equal(result.failed, 0, `failed requests: ${JSON.stringify(result.failures.slice(0, 10), null, 1)}`);
      assert.ok(result.ok >= 40, `the stream kept flowing (${result.ok} requests)`);
      assert.equal(result.backends.size, 6, 'the stream reached all 6 replicas before the scale-down');
    });

    it('Prometheus follows the scale-down: only the 2 remaining replicas are targets', async () => {
      const c = cluster();
      const replicas = await c.waitForBackends(2);
      await expectBackendTargets(c, replicas.map(upstreamIdOf));
    });
  });
}
