import assert from 'node:assert/strict';
import { request } from 'undici';
import { assessCapacity, openLimit, probeDeadlineMs } from '../src/lab/capacity.js';
import type { ProbeSample } from '../src/lab/capacity.js';
import { toCsv } from '../src/lab/export.js';
import type { LabSpec, LabStatus, RunResult } from '../src/lab/runner.js';
import { jainIndex, quantile } from '../src/lab/stats.js';
import { imagePath, schedule } from '../src/lab/traffic.js';
import { TOKEN, useLabCluster } from './lab-backend.js';
import { startBalancer, testConfig, waitFor } from './helpers.js';

describe('lab: traffic and statistics (pure)', () => {
  it('the schedule is the same for the same seed, different for another, and Poisson at the rate', () => {
    const spec = { rate: 300, durationMs: 10_000, mix: [1, 1, 0, 2], seed: 9 };
    const a = schedule(spec);
    assert.deepEqual(schedule(spec), a);
    assert.notDeepEqual(schedule({ ...spec, seed: 10 }), a);
    assert.ok(Math.abs(a.length - 3000) < 200, `${a.length} arrivals`);
    assert.ok(a.every((x, i) => i === 0 || x.at >= (a[i - 1]?.at ?? 0)), 'sorted');
    assert.ok(a.every((x) => x.at >= 0 && x.at < 10_000));
    const share = (p: string): number => a.filter((x) => x.path === p).length / a.length;
    assert.ok(Math.abs(share('/images/4') - 0.5) < 0.04);
    assert.equal(share('/images/3'), 0);
  });

  it('nearest-rank quantiles and Jain\'s index', () => {
    const xs = Array.from({ length: 1000 }, (_, i) => i + 1);
    assert.equal(quantile(xs, 0.5), 500);
    assert.equal(quantile(xs, 0.99), 990);
    assert.equal(quantile(xs, 0.999), 999);
    assert.equal(quantile([], 0.5), 0);
    assert.equal(jainIndex([5, 5, 5, 5]), 1);
    assert.equal(jainIndex([8, 0, 0, 0]), 0.25);
    assert.equal(jainIndex([]), 1);
  });

  it('CSV: a header and one row per policy and upstream, quoted where needed, each with the settings it came from', () => {
    const r: RunResult = {
      policy: 'p2c', balancers: 'two-sharing', attribution: 'response', spread: 1.25, requests: 10, errors: 1, dropped: 0, p50Ms: 1, p99Ms: 2, p999Ms: 3, maxMs: 4, badUpstream: null, badShare: null, jain: 0.9,
      upstreams: [{ id: '[::1]:80', requests: 9, share: 1, errors: 1, maxInFlight: 2, meanInFlight: 0.5 }],
    };
    const spec: LabSpec = { rate: 300, durationMs: 5000, mix: [1], seed: 1, concurrency: 256, delayScale: 0.001, scenario: { upstream: '[::1]:80', fault: { extraLatencyMs: 50 } } };
    const lines = toCsv({ results: [r], spec, cluster: { size: 4, upstreams: [] } }).trim().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0] ?? '', /^policy,balancers,spread,attribution,requests,errors,dropped,p50_ms,p99_ms,p999_ms,max_ms,bad_upstream,bad_share,jain,upstream,.*,rate,duration_ms,delay_scale,concurrency,seed,cluster_size,scenario$/);
    assert.equal(lines[1], 'p2c,two-sharing,1.25,response,10,1,0,1,2,3,4,,,0.9,[::1]:80,9,1,1,2,0.5,300,5000,0.001,256,1,4,"{""extraLatencyMs"":50}"');
  });

  it('image paths carry ?delayScale= unless it is 1, in plain decimals', () => {
    assert.equal(imagePath(2), '/images/2');
    assert.equal(imagePath(2, 1), '/images/2');
    assert.equal(imagePath(1, 0.001), '/images/1?delayScale=0.001');
    assert.equal(imagePath(1, 1e-7), '/images/1?delayScale=0');
    assert.ok(schedule({ rate: 50, durationMs: 1000, mix: [1], seed: 1, delayScale: 0.001 }).every((a) => a.path === '/images/1?delayScale=0.001'));
  });
});

describe('lab: capacity check (pure)', () => {
  const spec = { rate: 300, concurrency: 256, mix: [1], delayScale: 1 };
  const sample = (ms: number, timedOut = false, path = '/images/1'): ProbeSample => ({ path, weight: 1, ms, timedOut });

  it('the issue\'s run (300 req/s of 1 s images, 256 open at most) is refused, naming the numbers and what would fit', () => {
    assert.ok(Math.abs(openLimit(256) - 199.5) < 0.01, `mean + 4σ ≤ 256 at ${openLimit(256)}`);
    const check = assessCapacity(spec, [sample(1003)], 4, 10_000);
    assert.equal(check.expectedOpen, 300.9);
    assert.ok(check.refusal !== null);
    assert.match(check.refusal, /300 req\/s × 1003 ms per request .* about 301 requests open, and the lab holds at most 256 \(concurrency\)/);
    assert.match(check.refusal, /Lower the rate to 198 req\/s or less/);
    assert.match(check.refusal, /delayScale/);
  });

  it('the same rate of millisecond images passes; so does a lower rate of 1 s images; a timed-out probe is a lower bound', () => {
    assert.equal(assessCapacity({ ...spec, delayScale: 0.001 }, [sample(2.4)], 4, 10_000).refusal, null);
    assert.equal(assessCapacity({ ...spec, rate: 150 }, [sample(1003)], 4, 10_000).refusal, null);
    const cut = assessCapacity({ ...spec, rate: 100, mix: [1, 1] }, [sample(1000), sample(probeDeadlineMs({ ...spec, rate: 100, mix: [1, 1] }, 10_000), true, '/images/2')], 4, 10_000);
    assert.match(cut.refusal ?? '', /100 req\/s × over 2495.5 ms per request \(probed: \/images\/1 1000 ms, \/images\/2 over 3991 ms\) keeps more than 250 requests open/);
    assert.match(cut.refusal ?? '', /Lower the rate below 79 req\/s \(less still/);
    const slow = assessCapacity({ ...spec, rate: 1 }, [sample(10_000, true)], 4, 10_000);
    assert.match(slow.refusal ?? '', /longer than the lab's 10 s request timeout/);
  });

  it('a mix weighs each image by its share; the probe waits as long as the answer needs, 3 s at least', () => {
    const mixed = { ...spec, rate: 100, mix: [3, 1] };
    const check = assessCapacity(mixed, [{ path: '/images/1', weight: 3, ms: 1000, timedOut: false }, { path: '/images/2', weight: 1, ms: 3000, timedOut: false }], 4, 10_000);
    assert.equal(check.expectedLatencyMs, 1500);
    assert.equal(check.expectedOpen, 150);
    assert.equal(check.refusal, null);
    // At least 3 s; past 1000 ms × 199.5 / (rate × its share) that image alone would hold more than the cap allows.
    assert.equal(probeDeadlineMs(spec, 10_000), 3000);
    assert.equal(probeDeadlineMs({ ...spec, rate: 100, mix: [1, 1] }, 10_000), 3991);
    assert.equal(probeDeadlineMs({ ...spec, rate: 1 }, 10_000), 10_000);
  });

  it('a scenario that would overflow the cap under round robin is a warning, not a refusal', () => {
    const fast = [sample(2)];
    const hang = assessCapacity({ ...spec, delayScale: 0.001, scenario: { upstream: 'x', fault: { hang: true } } }, fast, 4, 10_000);
    assert.equal(hang.refusal, null);
    assert.equal(hang.warnings.length, 1);
    assert.match(hang.warnings[0] ?? '', /hanging replica.*1\/4 of the traffic.*about 751 requests open.*Dropped column/);
    const slow = assessCapacity({ ...spec, delayScale: 0.001, scenario: { upstream: 'x', fault: { extraLatencyMs: 50 } } }, fast, 4, 10_000);
    assert.deepEqual(slow.warnings, []);
    assert.equal(slow.worstOpen, 4.35);
    const stall = assessCapacity({ ...spec, delayScale: 0.001, scenario: { upstream: 'x', fault: { cpuStallMs: 200 } } }, fast, 4, 10_000);
    assert.match(stall.warnings[0] ?? '', /falls behind for good/);
  });
});

describe('lab: load generator and comparison against a running balancer', function () {
  this.timeout(20_000);
  const cluster = useLabCluster();
  const { post, lab } = cluster;

  it('compare: the same traffic under each policy; least-connections starves the slow replica, round robin does not; scenario cleared, policy restored', async () => {
    const slow = cluster.origins[2];
    assert.ok(slow);
    // Progress arrives over SSE while the comparison runs.
    const events = await request(`${cluster.lb.adminUrl}/api/lab/events`);
    const frames: string[] = [];
    const reading = (async () => {
      for await (const chunk of events.body) {
        frames.push(String(chunk));
        if (frames.join('').includes('"state":"done"')) break;
      }
    })();
    const spec = { rate: 150, durationMs: 1500, seed: 3, policies: ['least-connections', 'round-robin'], scenario: { upstream: slow.id, fault: { extraLatencyMs: 40 } } };
    const started = await post('/api/lab/compare', spec);
    assert.equal(started.statusCode, 202);
    await started.body.dump();
    await waitFor(() => slow.extra() === 40, 2000, 'the scenario on the slow replica');
    const busy = await post('/api/lab/run', { rate: 10, durationMs: 1000 });
    assert.equal(busy.statusCode, 409);
    assert.equal(((await busy.body.json()) as { error: string }).error, 'LB_LAB_BUSY');

    await waitFor(async () => (await lab()).state === 'done', 15_000, 'the comparison to finish');
    await reading;
    const text = frames.join('');
    // The schedule's first second once, unmeasured, before the first policy; then each policy.
    assert.match(text, /"progress":\{"policy":"least-connections","index":0,"of":2,.*"warmUp":true\}/);
    assert.ok(text.indexOf('"warmUp":true') < text.indexOf('"index":1,"of":2'), 'the warm-up comes first');
    assert.match(text, /"progress":\{"policy":"least-connections","index":1,"of":2/);
    assert.match(text, /"progress":\{"policy":"round-robin","index":2,"of":2/);

    const { results } = await lab();
    assert.deepEqual(results.map((r) => r.policy), ['least-connections', 'round-robin']);
    const [lc, rr] = results;
    assert.ok(lc && rr);
    assert.equal(lc.requests, rr.requests, 'the same schedule both times');
    assert.ok(lc.requests > 150, `${lc.requests} requests`);
    assert.equal(lc.badUpstream, slow.id);
    assert.ok(Math.abs((rr.badShare ?? 0) - 1 / 3) < 0.05, `round robin gives it its third: ${rr.badShare}`);
    // How much less least-connections gives the slow replica, and the tails, depend on the
    // machine's speed: soak/lab-compare.soak.ts checks them (make soak).
    for (const r of results) {
      assert.equal(r.upstreams.length, 3);
      assert.ok(r.upstreams.some((u) => u.maxInFlight > 0));
    }
    assert.equal(slow.extra(), 0, 'the scenario is cleared after the comparison');
    assert.equal(cluster.lb.balancer.policy.current, 'least-connections', 'the policy is back');

    const csv = await (await request(`${cluster.lb.adminUrl}/api/lab/results.csv`)).body.text();
    assert.equal(csv.trim().split('\n').length, 1 + 2 * 3);
    const json = (await (await request(`${cluster.lb.adminUrl}/api/lab/results.json`)).body.json()) as { results: RunResult[]; spec: { seed: number } };
    assert.equal(json.results.length, 2);
    assert.equal(json.spec.seed, 3);
  });

  it('run: the current policy only; latency counted from the scheduled time; cancel stops it', async () => {
    cluster.lb.balancer.policy.set('p2c');
    const res = await post('/api/lab/run', { rate: 100, durationMs: 60_000, seed: 1 });
    assert.equal(res.statusCode, 202);
    await res.body.dump();
    await waitFor(async () => {
      const { progress } = await lab();
      return progress !== null && !progress.warmUp && progress.completed > 20;
    }, 5000, 'some measured requests');
    const cancel = await post('/api/lab/cancel', {});
    assert.equal(cancel.statusCode, 200);
    await cancel.body.dump();
    await waitFor(async () => (await lab()).state === 'cancelled', 5000, 'the cancel');
    const { results } = await lab();
    assert.equal(results.length, 1);
    const [only] = results;
    assert.ok(only);
    assert.equal(only.policy, 'p2c');
    assert.ok(only.requests < 6000, 'stopped early');
    assert.equal(cluster.lb.balancer.policy.current, 'p2c');
  });

  it('writes need the token; a spec out of bounds is refused; scenarios relay to the backend, which checks its own token', async () => {
    const anon = await post('/api/lab/compare', { rate: 10, durationMs: 1000 }, 'wrong');
    assert.equal(anon.statusCode, 401);
    await anon.body.dump();
    for (const spec of [{ rate: 5000, durationMs: 1000 }, { rate: 10, durationMs: 600_000 }, { rate: 10, durationMs: 1000, concurrency: 0 }, { rate: 10, durationMs: 1000, mix: [0, 0] }, { rate: 10 }]) {
      const bad = await post('/api/lab/run', spec);
      assert.equal(bad.statusCode, 400, JSON.stringify(spec));
      await bad.body.dump();
    }
    assert.equal((await lab()).state, 'idle');

    const target = cluster.origins[0];
    assert.ok(target);
    const put = await request(`${cluster.lb.adminUrl}/api/upstreams/${encodeURIComponent(target.id)}/scenario`, {
      method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ extraLatencyMs: 25 }),
    });
    assert.equal(put.statusCode, 200);
    assert.deepEqual(await put.body.json(), { extraLatencyMs: 25 });
    assert.equal(target.extra(), 25);
    const del = await request(`${cluster.lb.adminUrl}/api/upstreams/${encodeURIComponent(target.id)}/scenario`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(del.statusCode, 200);
    await del.body.dump();
    assert.equal(target.extra(), 0);
    const unknown = await request(`${cluster.lb.adminUrl}/api/upstreams/10.0.0.1%3A1/scenario`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(unknown.statusCode, 404);
    await unknown.body.dump();
  });

  it('without LB_BACKEND_ADMIN_TOKEN scenario writes are refused with 403 LB_SCENARIOS_DISABLED', async () => {
    const plain = await startBalancer(testConfig(cluster.origins.map((o) => o.port), { lab: true, adminToken: TOKEN }));
    try {
      const res = await request(`${plain.adminUrl}/api/upstreams/${encodeURIComponent(cluster.origins[0]?.id ?? '')}/scenario`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(res.statusCode, 403);
      assert.equal(((await res.body.json()) as { error: string }).error, 'LB_SCENARIOS_DISABLED');
    } finally {
      await plain.balancer.stop();
    }
  });
});

describe('lab: a cluster whose images take seconds (the default cluster, scaled down)', function () {
  this.timeout(20_000);
  // 400 ms images: 300 req/s of them keep ~120 open, over what a cap of 64 allows.
  const cluster = useLabCluster(400);
  const { post, lab } = cluster;
  const served = (): number => cluster.origins.reduce((sum, o) => sum + o.served(), 0);

  it('refuses a run that would hold more requests open than its cap: 422 LB_LAB_OVER_CAPACITY, after one probe, nothing run', async () => {
    for (const path of ['/api/lab/compare', '/api/lab/run']) {
      const res = await post(path, { rate: 300, durationMs: 2000, concurrency: 64 });
      assert.equal(res.statusCode, 422, path);
      const body = (await res.body.json()) as { error: string; message: string };
      assert.equal(body.error, 'LB_LAB_OVER_CAPACITY');
      assert.match(body.message, /300 req\/s × 4\d\d(\.\d)? ms per request \(probed: \/images\/1 4\d\d ms\) keeps about 1[2-4]\d requests open, and the lab holds at most 64/);
    }
    const status = await lab();
    assert.equal(status.state, 'idle');
    assert.deepEqual(status.results, []);
    // The two probes only: no run was started.
    assert.ok(served() <= 2, `${served()} images served`);
  });

  it('the same rate of millisecond images (delayScale) runs; the results record the settings, cluster and check they came from', async () => {
    const slow = cluster.origins[2];
    assert.ok(slow);
    const spec = { rate: 300, durationMs: 1000, concurrency: 64, delayScale: 0.001, policies: ['least-connections', 'round-robin'], scenario: { upstream: slow.id, fault: { extraLatencyMs: 50 } } };
    const res = await post('/api/lab/compare', spec);
    assert.equal(res.statusCode, 202);
    const started = (await res.body.json()) as LabStatus;
    assert.equal(started.check?.refusal, null);
    // (The strict equal above narrows: check is not null from here on.)
    assert.ok(started.check.expectedOpen < 5, `expected open ${started.check.expectedOpen}`);
    await waitFor(async () => (await lab()).state === 'done', 15_000, 'the comparison to finish');
    const done = await lab();
    assert.deepEqual(done.results.map((r) => [r.policy, r.dropped, r.errors]), [['least-connections', 0, 0], ['round-robin', 0, 0]]);
    // Their latencies (p50 well under the unscaled delays) are a soak check: soak/lab-compare.soak.ts.
    assert.deepEqual(
      { rate: done.spec?.rate, durationMs: done.spec?.durationMs, delayScale: done.spec?.delayScale, concurrency: done.spec?.concurrency, scenario: done.spec?.scenario },
      { rate: 300, durationMs: 1000, delayScale: 0.001, concurrency: 64, scenario: spec.scenario },
    );
    assert.deepEqual(done.cluster, { size: 3, upstreams: cluster.origins.map((o) => o.id).sort() });
    assert.equal(done.check?.cap, 64);
    assert.equal(done.check.probe.at(0)?.path, '/images/1?delayScale=0.001');
    const json = (await (await request(`${cluster.lb.adminUrl}/api/lab/results.json`)).body.json()) as Pick<LabStatus, 'spec' | 'cluster' | 'check'>;
    assert.equal(json.spec?.delayScale, 0.001);
    assert.equal(json.cluster?.size, 3);
    assert.equal(json.check?.expectedOpen, done.check.expectedOpen);
  });

  it('requests over the cap are dropped, counted apart from errors (the upstreams failed none); the check warned of it', async () => {
    const slow = cluster.origins[2];
    assert.ok(slow);
    cluster.lb.balancer.policy.set('round-robin');
    // Round robin gives the replica made 1 s slower a third of 100 req/s: ~33 open there, over a cap of 12.
    const res = await post('/api/lab/run', { rate: 100, durationMs: 1000, concurrency: 12, delayScale: 0.001, scenario: { upstream: slow.id, fault: { extraLatencyMs: 1000 } } });
    assert.equal(res.statusCode, 202);
    const started = (await res.body.json()) as LabStatus;
    assert.match(started.check?.warnings[0] ?? '', /1\/3 of the traffic.*Dropped column/);
    await waitFor(async () => (await lab()).state === 'done', 15_000, 'the run to finish');
    const [only] = (await lab()).results;
    assert.ok(only);
    assert.ok(only.dropped > 0, `${only.dropped} dropped`);
    assert.equal(only.errors, 0, 'dropped requests are not errors');
    assert.equal(only.upstreams.reduce((sum, u) => sum + u.errors, 0), 0);
  });
});
