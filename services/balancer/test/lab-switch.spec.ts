// The lab is off unless asked for (--lab / LB_LAB=1): off, its paths answer 404 LB_LAB_DISABLED
// naming the knob, before any token check; on, they work. The admin app only knows a hook.
import assert from 'node:assert/strict';
import request from 'supertest';
import { request as undiciRequest } from 'undici';
import { createAdminApp } from '../src/admin/app.js';
import { createEventHub } from '../src/admin/event-hub.js';
import { createMetrics } from '../src/metrics.js';
import { createPolicySetting } from '../src/picker/policy.js';
import type { Snapshot } from '../src/snapshot.js';
import { registerLabOffRoutes } from '../src/lab/routes.js';
import { BACKEND_TOKEN, TOKEN, fakeBackend } from './lab-backend.js';
import type { FakeBackend } from './lab-backend.js';
import { silentLogger, startBalancer, testConfig, testRegistry } from './helpers.js';
import type { Running } from './helpers.js';

/** Every lab path with the methods it serves when on. */
const LAB_ROUTES: readonly (readonly [method: 'get' | 'post' | 'put' | 'delete', path: string])[] = [
  ['get', '/api/lab'],
  ['get', '/api/lab/events'],
  ['get', '/api/lab/results.json'],
  ['get', '/api/lab/results.csv'],
  ['post', '/api/lab/run'],
  ['post', '/api/lab/compare'],
  ['post', '/api/lab/cancel'],
  ['put', '/api/upstreams/127.0.0.1%3A1/scenario'],
  ['delete', '/api/upstreams/127.0.0.1%3A1/scenario'],
  ['post', '/api/upstreams/127.0.0.1%3A1/exit'],
];

const assertLabOff = (status: number, body: unknown, what: string): void => {
  assert.equal(status, 404, what);
  const { error, message } = body as { error?: string; message?: string };
  assert.equal(error, 'LB_LAB_DISABLED', what);
  assert.match(message ?? '', /--lab/, `${what}: names the flag`);
  assert.match(message ?? '', /LB_LAB=1/, `${what}: names the env var`);
};

describe('lab switch', () => {
  describe('admin app (supertest)', () => {
    const registry = testRegistry();
    const snap: Snapshot = { time: 1, instance: 'test', tieBreak: 'rotation', policy: 'least-connections', explain: false, panic: false, totals: { requests: 0, inFlight: 0, errors: 0 }, imbalance: 1, upstreams: [], decisions: [], peers: [] };
    const events = createEventHub(() => snap, 50);
    after(() => {
      events.stop();
    });
    const appWith = (routes: Parameters<typeof createAdminApp>[0]['routes']) =>
      createAdminApp({
        metrics: createMetrics(registry), snapshot: () => snap, events, ready: () => true, logger: silentLogger,
        writes: { registry, token: { value: TOKEN }, policy: createPolicySetting('least-connections', () => undefined) },
        ...(routes === undefined ? {} : { routes }),
      });

    it('registers the routes it is handed, after its own', async () => {
      const app = appWith([(router) => router.get('/api/extra', (ctx) => { ctx.body = { extra: true }; })]);
      await request(app.callback()).get('/api/extra').expect(200, { extra: true });
      await request(app.callback()).get('/api/upstreams').expect(200);
    });

    it('without them, no lab path exists (404 LB_NOT_FOUND)', async () => {
      const res = await request(appWith(undefined).callback()).get('/api/lab').expect(404);
      assert.equal(res.body.error, 'LB_NOT_FOUND');
    });

    it('with the lab off, every lab path and method answers 404 LB_LAB_DISABLED naming --lab and LB_LAB=1, token or not', async () => {
      const app = appWith([registerLabOffRoutes]).callback();
      for (const [method, path] of LAB_ROUTES) {
        for (const auth of [undefined, `Bearer ${TOKEN}`, 'Bearer wrong']) {
          const base = request(app)[method](path);
          const req = auth === undefined ? base : base.set('authorization', auth);
          const res = await (method === 'get' || method === 'delete' ? req : req.send({ rate: 10, durationMs: 1000 }));
          assertLabOff(res.status, res.body, `${method.toUpperCase()} ${path} (${auth ?? 'no token'})`);
          assert.equal(res.headers['cache-control'], 'no-store');
        }
      }
    });

    it('with the lab off, the rest of the admin API is unchanged: its own routes, its own 404s', async () => {
      const app = appWith([registerLabOffRoutes]).callback();
      await request(app).put('/api/policy').set('authorization', `Bearer ${TOKEN}`).send({ policy: 'round-robin' }).expect(200);
      const drain = await request(app).post('/api/upstreams/127.0.0.1%3A1/drain').set('authorization', `Bearer ${TOKEN}`).expect(404);
      assert.equal(drain.body.error, 'LB_UNKNOWN_UPSTREAM');
      const other = await request(app).get('/api/lab/other').expect(404);
      assert.equal(other.body.error, 'LB_NOT_FOUND');
    });
  });

  describe('a running balancer', function () {
    this.timeout(20_000);
    let backend: FakeBackend | undefined;
    let lb: Running | undefined;
    beforeEach(async () => {
      backend = await fakeBackend('a');
    });
    afterEach(async () => {
      await lb?.balancer.stop();
      lb = undefined;
      await backend?.close();
    });
    const start = async (argv: string[]): Promise<{ running: Running; target: FakeBackend }> => {
      assert.ok(backend);
      lb = await startBalancer(testConfig([backend.port], { adminToken: TOKEN, backendAdminToken: BACKEND_TOKEN }, argv));
      return { running: lb, target: backend };
    };
    const scenario = (running: Running, target: FakeBackend) =>
      undiciRequest(`${running.adminUrl}/api/upstreams/${encodeURIComponent(target.id)}/scenario`, {
        method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ extraLatencyMs: 25 }),
      });

    it('is off by default: the page\'s status read and a scenario (with both tokens set) are refused, the backend untouched', async () => {
      const { running, target } = await start([]);
      const status = await undiciRequest(`${running.adminUrl}/api/lab`);
      assertLabOff(status.statusCode, await status.body.json(), 'GET /api/lab');
      const put = await scenario(running, target);
      assertLabOff(put.statusCode, await put.body.json(), 'PUT scenario');
      assert.equal(target.extra(), 0, 'nothing was relayed');
      // The data path does not care.
      const data = await undiciRequest(`${running.url}/`);
      assert.equal(data.statusCode, 200);
      await data.body.dump();
    });

    it('with --lab, the lab answers and relays', async () => {
      const { running, target } = await start(['--lab']);
      const status = await undiciRequest(`${running.adminUrl}/api/lab`);
      assert.equal(status.statusCode, 200);
      assert.equal(((await status.body.json()) as { state: string }).state, 'idle');
      const put = await scenario(running, target);
      assert.equal(put.statusCode, 200);
      assert.deepEqual(await put.body.json(), { extraLatencyMs: 25 });
      assert.equal(target.extra(), 25);
      const cancel = await undiciRequest(`${running.adminUrl}/api/lab/cancel`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(cancel.statusCode, 200);
      await cancel.body.dump();
    });
  });
});
