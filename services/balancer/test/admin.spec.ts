import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import request from 'supertest';
import { request as undiciRequest } from 'undici';
import { createAdminApp } from '../src/admin/app.js';
import { createEventHub } from '../src/admin/event-hub.js';
import { createMetrics } from '../src/metrics.js';
import type { Snapshot } from '../src/snapshot.js';
import { namedHandler, parseMetrics, silentLogger, startBalancer, startOrigin, testConfig, testRegistry, waitFor } from './helpers.js';
import type { Origin, Running } from './helpers.js';
import { requireTool } from '../../../scripts/require-tool.mjs';

describe('admin API', () => {
  describe('Koa app (supertest)', () => {
    const registry = testRegistry();
    const metrics = createMetrics(registry);
    const snap: Snapshot = { time: 1, instance: 'test', tieBreak: 'rotation', policy: 'least-connections', explain: false, panic: false, totals: { requests: 0, inFlight: 0, errors: 0 }, imbalance: 1, upstreams: [], decisions: [], peers: [] };
    let ready = true;
    const events = createEventHub(() => snap, 50);
    const app = createAdminApp({ metrics, snapshot: () => snap, events, ready: () => ready, logger: silentLogger });
    after(() => {
      events.stop();
    });

    it('GET /healthz is 200', async () => {
      await request(app.callback()).get('/healthz').expect(200, { status: 'ok' });
    });
    it('GET /readyz follows readiness', async () => {
      await request(app.callback()).get('/readyz').expect(200);
      ready = false;
      await request(app.callback()).get('/readyz').expect(503);
      ready = true;
    });
    it('GET /api/upstreams returns the snapshot', async () => {
      const res = await request(app.callback()).get('/api/upstreams').expect(200);
      assert.deepEqual(res.body, snap);
    });
    it('unknown routes are JSON 404s and writes are refused', async () => {
      const res = await request(app.callback()).get('/nope').expect(404);
      assert.equal(res.body.error, 'LB_NOT_FOUND', 'every code carries the LB_ prefix, from the one table');
      await request(app.callback()).post('/api/upstreams').expect(405);
    });
  });

  describe('against a running balancer', () => {
    let origins: Origin[] = [];
    let lb: Running | undefined;
    before(async () => {
      origins = await Promise.all(['a', 'b'].map((n) => startOrigin(namedHandler(n))));
      lb = await startBalancer(testConfig(origins.map((o) => o.port), { eventsIntervalMs: 100 }));
    });
    after(async () => {
      await lb?.balancer.stop();
      await Promise.all(origins.map((o) => o.close()));
    });

    it('/metrics counts requests by upstream and code, with clean names', async () => {
      assert.ok(lb);
      for (let i = 0; i < 6; i++) await (await undiciRequest(`${lb.url}/x`)).body.text();
      const [a, b] = origins;
      assert.ok(a && b);
      // A request is counted when its exchange ends, which can be just after its body reached the client.
      let text = '';
      const adminUrl = lb.adminUrl;
      const counted = (m: Map<string, number>): number => (m.get(`lb_requests_total{upstream="${a.id}",code="200"}`) ?? 0) + (m.get(`lb_requests_total{upstream="${b.id}",code="200"}`) ?? 0);
      await waitFor(async () => {
        text = await (await undiciRequest(`${adminUrl}/metrics`)).body.text();
        return counted(parseMetrics(text)) === 6;
      }, 5000, 'all 6 requests counted');
      const m = parseMetrics(text);
      assert.equal(m.get(`lb_requests_total{upstream="${a.id}",code="200"}`), 3);
      assert.equal(m.get(`lb_requests_total{upstream="${b.id}",code="200"}`), 3);
      assert.equal(m.get(`lb_request_duration_seconds_count{upstream="${a.id}"}`), 3);
      assert.equal(m.get(`lb_upstream_in_flight{upstream="${a.id}"}`), 0);
      assert.equal(m.get(`lb_upstream_weight{upstream="${a.id}"}`), 1);
      assert.equal(m.get(`lb_upstream_healthy{upstream="${a.id}"}`), 1);
      assert.equal(m.get('lb_in_flight_imbalance_ratio'), 1);
      assert.equal(m.get('lb_upstreams{state="up"}'), 2);
      assert.ok(text.includes('# TYPE lb_upstream_failures_total counter'));
    });

    it('/metrics passes promtool check metrics (CI fails without promtool)', async function () {
      const promtool = requireTool(this, 'promtool');
      assert.ok(lb);
      const text = await (await undiciRequest(`${lb.adminUrl}/metrics`)).body.text();
      let out = '';
      try {
        execFileSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
      } catch (err) {
        out = ((err as { stdout?: string }).stdout ?? '') + ((err as { stderr?: string }).stderr ?? '');
      }
      const problems = out.split('\n').filter((l) => l.trim() !== '' && !/^nodejs_active_(handles|requests|resources)_total non-counter/.test(l));
      assert.deepEqual(problems, [], 'promtool check metrics');
    });

    // The rate (one per --events-interval-ms, 10 per second by default) is event-hub.spec.ts's,
    // on mocked timers; here: the stream carries fresh snapshots, in order, of this balancer.
    it('/api/events streams fresh snapshots, in order', async () => {
      assert.ok(lb);
      const res = await undiciRequest(`${lb.adminUrl}/api/events`);
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /text\/event-stream/);
      let buffer = '';
      const frames: Snapshot[] = [];
      for await (const chunk of res.body) {
        buffer += (chunk as Buffer).toString('utf8');
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame.split('\n').find((l) => l.startsWith('data: '));
          if (data !== undefined) frames.push(JSON.parse(data.slice(6)) as Snapshot);
        }
        if (frames.length >= 6) break;
      }
      assert.equal(frames.length, 6);
      // Each frame a new snapshot, not one repeated: their times strictly increase.
      const times = frames.map((f) => f.time);
      assert.ok(times.every((t, i) => i === 0 || t > (times[i - 1] ?? Infinity)), `snapshot times in order: ${times.join(', ')}`);
      const last = frames.at(-1);
      assert.ok(last);
      assert.deepEqual(last.upstreams.map((u) => u.id).sort(), origins.map((o) => o.id).sort());
      assert.equal(last.totals.requests, 6);
      assert.equal(last.upstreams[0]?.state, 'up');
      assert.ok(last.decisions.length > 0);
    });
  });
});
