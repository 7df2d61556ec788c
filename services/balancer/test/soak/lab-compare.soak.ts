/**
 * The lab's comparisons, measured: what the policies do with a slow replica and how long the
 * requests take. The outcome depends on timing (a slow replica keeps its connections open longer,
 * which least-connections sees), so these checks run in the soak suite (`make soak`, once in CI);
 * lab.spec.ts checks the same runs' mechanics (schedule, progress, results, clean-up) in make test.
 */
import assert from 'node:assert/strict';
import type { LabStatus } from '../../src/lab/runner.js';
import { useLabCluster } from '../lab-backend.js';
import { waitFor } from '../helpers.js';

describe('lab comparisons, measured (soak)', function () {
  this.timeout(60_000);
  const cluster = useLabCluster();
  const { post, lab } = cluster;
  const compare = async (spec: unknown): Promise<LabStatus> => {
    const res = await post('/api/lab/compare', spec);
    assert.equal(res.statusCode, 202);
    await res.body.dump();
    await waitFor(async () => (await lab()).state === 'done', 30_000, 'the comparison to finish');
    return lab();
  };

  it('least-connections starves a replica 40 ms slower; round robin gives it its third, and its p99', async () => {
    const slow = cluster.origins[2];
    assert.ok(slow);
    const { results } = await compare({ rate: 150, durationMs: 1500, seed: 3, policies: ['least-connections', 'round-robin'], scenario: { upstream: slow.id, fault: { extraLatencyMs: 40 } } });
    const [lc, rr] = results;
    assert.ok(lc && rr);
    assert.equal(lc.badUpstream, slow.id);
    assert.ok((lc.badShare ?? 1) < (rr.badShare ?? 0) - 0.1, `least-connections gives it less: ${lc.badShare} vs ${rr.badShare}`);
    assert.ok(rr.p99Ms >= 40, `round robin's p99 includes the slow replica: ${rr.p99Ms}`);
    assert.ok(rr.jain > lc.jain, 'round robin spreads requests more evenly (that is the problem)');
  });

  it('millisecond images (delayScale 0.001) at 300 req/s: p50 under 100 ms', async () => {
    const slow = cluster.origins[2];
    assert.ok(slow);
    const done = await compare({ rate: 300, durationMs: 1000, concurrency: 64, delayScale: 0.001, policies: ['least-connections', 'round-robin'], scenario: { upstream: slow.id, fault: { extraLatencyMs: 50 } } });
    assert.deepEqual(done.results.map((r) => [r.policy, r.dropped, r.errors]), [['least-connections', 0, 0], ['round-robin', 0, 0]]);
    const [first] = done.results;
    assert.ok(first && first.p50Ms < 100, `millisecond images: p50 ${first?.p50Ms} ms`);
  });
});
