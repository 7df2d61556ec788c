import assert from 'node:assert/strict';
import { upstreamIdOf } from '../../lib/upstream-id.js';
import { fatalError, waitFor } from '../../lib/wait.js';
import type { Cluster } from '../lib/cluster.js';

interface LabRun {
  policy: string;
  requests: number;
  errors: number;
  dropped: number;
  p99Ms: number;
  badUpstream: string | null;
  badShare: number | null;
  upstreams: { id: string; requests: number }[];
}

interface LabStatus {
  state: 'idle' | 'running' | 'done' | 'failed' | 'cancelled';
  results: LabRun[];
  error: string | null;
}

/** The algorithm lab (issue 14) against the real cluster: the same seeded traffic under each policy. */
export function labSuite(cluster: () => Cluster): void {
  describe('algorithm lab on the real cluster', () => {
    it('compares least-connections, round robin and peak-EWMA with one replica 50 ms slower (a backend scenario)', async function () {
      this.timeout(120_000);
      const c = cluster();
      const replicas = await c.waitForBackends(4);
      const slow = replicas.map(upstreamIdOf).sort()[0];
      assert.ok(slow);
      const policies = ['least-connections', 'round-robin', 'peak-ewma'];
      const started = await c.admin('POST', '/api/lab/compare', {
        rate: 100,
        durationMs: 3_000,
        policies,
        scenario: { upstream: slow, fault: { extraLatencyMs: 50 } },
      });
      assert.equal(started.status, 202, JSON.stringify(started.body));
      const done = await waitFor(
        async () => {
          const s = (await c.admin('GET', '/api/lab')).body as LabStatus;
          if (s.state === 'failed' || s.state === 'cancelled') throw fatalError(`lab ${s.state}: ${s.error ?? ''}`);
          return s.state === 'done' ? s : undefined;
        },
        { what: 'the comparison to finish', timeoutMs: 90_000, intervalMs: 1_000 },
      );
      assert.deepEqual(done.results.map((r) => r.policy), policies);
      const ids = replicas.map(upstreamIdOf).sort();
      for (const r of done.results) {
        assert.equal(r.errors, 0, `${r.policy}: errors`);
        assert.ok(r.requests >= 250, `${r.policy}: ${r.requests} requests`);
        assert.deepEqual(r.upstreams.map((u) => u.id).sort(), ids, `${r.policy}: every replica is in the result`);
        assert.equal(r.badUpstream, slow);
      }
      const share = (policy: string): number => done.results.find((r) => r.policy === policy)?.badShare ?? 1;
      console.log(`      [lab] slow replica's share: ${policies.map((p) => `${p} ${(share(p) * 100).toFixed(1)} %`).join(', ')}`);
      // Round robin ignores the slowness; the other two route around it.
      assert.ok(share('round-robin') > 0.2, `round robin gives every replica its turn (${share('round-robin')})`);
      assert.ok(share('least-connections') < share('round-robin'), 'least-connections sends the slow replica less than round robin');
      assert.ok(share('peak-ewma') < share('round-robin'), 'peak-EWMA sends the slow replica less than round robin');
    });
  });
}
