import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from 'undici';
import { toCsv } from '../src/lab/export.js';
import type { LabStatus, RunResult } from '../src/lab/runner.js';
import { jainIndex, quantile } from '../src/lab/stats.js';
import { schedule } from '../src/lab/traffic.js';
import { startBalancer, startOrigin, testConfig, waitFor } from './helpers.js';
import type { Origin, Running } from './helpers.js';

const TOKEN = 'lab-admin';
const BACKEND_TOKEN = 'backend-admin';

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

  it('CSV: a header and one row per policy and upstream, quoted where needed', () => {
    const r: RunResult = {
      policy: 'p2c', requests: 10, errors: 1, dropped: 0, p50Ms: 1, p99Ms: 2, p999Ms: 3, maxMs: 4, badUpstream: null, badShare: null, jain: 0.9,
      upstreams: [{ id: '[::1]:80', requests: 9, share: 1, errors: 1, maxInFlight: 2, meanInFlight: 0.5 }],
    };
    const lines = toCsv([r]).trim().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0] ?? '', /^policy,requests,errors,dropped,p50_ms,p99_ms,p999_ms,max_ms,bad_upstream,bad_share,jain,upstream,/);
    assert.equal(lines[1], 'p2c,10,1,0,1,2,3,4,,,0.9,[::1]:80,9,1,1,2,0.5');
  });
});

/** A stand-in backend: /admin/scenario with extraLatencyMs behind a token, like services/backend. */
async function fakeBackend(name: string): Promise<Origin & { extra: () => number }> {
  let extra = 0;
  const origin = await startOrigin((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/admin/scenario') {
      if (req.headers.authorization !== `Bearer ${BACKEND_TOKEN}`) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"UNAUTHORIZED"}');
        return;
      }
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        extra = req.method === 'PUT' ? ((JSON.parse(body) as { extraLatencyMs?: number }).extraLatencyMs ?? 0) : 0;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ extraLatencyMs: extra }));
      });
      return;
    }
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end(name), 1 + extra);
  });
  return { ...origin, extra: () => extra };
}

describe('lab: load generator and comparison against a running balancer', function () {
  this.timeout(20_000);
  let origins: Awaited<ReturnType<typeof fakeBackend>>[] = [];
  let lb: Running;

  beforeEach(async () => {
    origins = await Promise.all(['a', 'b', 'c'].map((n) => fakeBackend(n)));
    lb = await startBalancer(testConfig(origins.map((o) => o.port), { adminToken: TOKEN, backendAdminToken: BACKEND_TOKEN }));
  });
  afterEach(async () => {
    await lb.balancer.stop();
    await Promise.all(origins.map((o) => o.close()));
  });

  const post = (path: string, body: unknown, token = TOKEN) =>
    request(`${lb.adminUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const lab = async (): Promise<LabStatus> => (await (await request(`${lb.adminUrl}/api/lab`)).body.json()) as LabStatus;

  it('compare: the same traffic under each policy; least-connections starves the slow replica, round robin does not; scenario cleared, policy restored', async () => {
    const slow = origins[2];
    assert.ok(slow);
    // Progress arrives over SSE while the comparison runs.
    const events = await request(`${lb.adminUrl}/api/lab/events`);
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
    assert.ok((lc.badShare ?? 1) < (rr.badShare ?? 0) - 0.1, `least-connections gives it less: ${lc.badShare} vs ${rr.badShare}`);
    assert.ok(rr.p99Ms >= 40, `round robin's p99 includes the slow replica: ${rr.p99Ms}`);
    assert.ok(rr.jain > lc.jain, 'round robin spreads requests more evenly (that is the problem)');
    for (const r of results) {
      assert.equal(r.upstreams.length, 3);
      assert.ok(r.upstreams.some((u) => u.maxInFlight > 0));
    }
    assert.equal(slow.extra(), 0, 'the scenario is cleared after the comparison');
    assert.equal(lb.balancer.policy.current, 'least-connections', 'the policy is back');

    const csv = await (await request(`${lb.adminUrl}/api/lab/results.csv`)).body.text();
    assert.equal(csv.trim().split('\n').length, 1 + 2 * 3);
    const json = (await (await request(`${lb.adminUrl}/api/lab/results.json`)).body.json()) as { results: RunResult[]; spec: { seed: number } };
    assert.equal(json.results.length, 2);
    assert.equal(json.spec.seed, 3);
  });

  it('run: the current policy only; latency counted from the scheduled time; cancel stops it', async () => {
    lb.balancer.policy.set('p2c');
    const res = await post('/api/lab/run', { rate: 100, durationMs: 60_000, seed: 1 });
    assert.equal(res.statusCode, 202);
    await res.body.dump();
    await waitFor(async () => ((await lab()).progress?.completed ?? 0) > 20, 5000, 'some requests');
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
    assert.equal(lb.balancer.policy.current, 'p2c');
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

    const target = origins[0];
    assert.ok(target);
    const put = await request(`${lb.adminUrl}/api/upstreams/${encodeURIComponent(target.id)}/scenario`, {
      method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ extraLatencyMs: 25 }),
    });
    assert.equal(put.statusCode, 200);
    assert.deepEqual(await put.body.json(), { extraLatencyMs: 25 });
    assert.equal(target.extra(), 25);
    const del = await request(`${lb.adminUrl}/api/upstreams/${encodeURIComponent(target.id)}/scenario`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(del.statusCode, 200);
    await del.body.dump();
    assert.equal(target.extra(), 0);
    const unknown = await request(`${lb.adminUrl}/api/upstreams/10.0.0.1%3A1/scenario`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(unknown.statusCode, 404);
    await unknown.body.dump();
  });

  it('without LB_BACKEND_ADMIN_TOKEN scenario writes are refused with 403 LB_SCENARIOS_DISABLED', async () => {
    const plain = await startBalancer(testConfig(origins.map((o) => o.port), { adminToken: TOKEN }));
    try {
      const res = await request(`${plain.adminUrl}/api/upstreams/${encodeURIComponent(origins[0]?.id ?? '')}/scenario`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(res.statusCode, 403);
      assert.equal(((await res.body.json()) as { error: string }).error, 'LB_SCENARIOS_DISABLED');
    } finally {
      await plain.balancer.stop();
    }
  });
});
