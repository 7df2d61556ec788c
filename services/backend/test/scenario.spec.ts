import assert from 'node:assert/strict';
import request from 'supertest';
import { createApp } from '../src/app.js';
import { createImages } from '../src/images.js';
import { HEALTHY, stallCpu } from '../src/scenario.js';
import { get, quiet, recordDelays, startBackend, testConfig, until } from './helpers.js';
import type { Running } from './helpers.js';

const TOKEN = 'lab-token';
const images = createImages();
const auth = { authorization: `Bearer ${TOKEN}` };

describe('fault scenarios (/admin/scenario, /admin/exit)', () => {
  const exits: number[] = [];
  let seq = 0;
  // Alternates 0.25 and 0.75: an error rate of 0.5 hits exactly every other request.
  const backend = createApp(testConfig({ adminToken: TOKEN }), { logger: quiet, images, random: () => (seq++ % 2 === 0 ? 0.25 : 0.75), exit: () => exits.push(Date.now()) });
  const app = backend.app.callback();
  afterEach(() => {
    backend.scenario.clear();
  });
  after(() => {
    backend.stop();
  });

  it('starts healthy; GET shows the scenario without a token', async () => {
    const res = await request(app).get('/admin/scenario').expect(200);
    assert.deepEqual(res.body, HEALTHY);
  });

  it('refuses writes with 403 ADMIN_DISABLED when BACKEND_ADMIN_TOKEN is unset, 401 with a wrong or missing token', async () => {
    const open = createApp(testConfig(), { logger: quiet, images });
    for (const [method, path] of [['put', '/admin/scenario'], ['delete', '/admin/scenario'], ['post', '/admin/exit']] as const) {
      const off = await request(open.app.callback())[method](path).set({ authorization: 'Bearer ' }).send({ hang: true }).expect(403);
      assert.equal(off.body.error, 'ADMIN_DISABLED');
      const none = await request(app)[method](path).send({ hang: true }).expect(401);
      assert.equal(none.body.error, 'UNAUTHORIZED');
      assert.match(String(none.headers['www-authenticate']), /^Bearer /);
      await request(app)[method](path).set({ authorization: `Bearer ${TOKEN}x` }).send({ hang: true }).expect(401);
    }
    assert.deepEqual(backend.scenario.current, HEALTHY);
    assert.deepEqual(exits, []);
    open.stop();
  });

  it('400 BAD_REQUEST naming the problem: unknown keys, out-of-range values, bad JSON', async () => {
    const unknown = await request(app).put('/admin/scenario').set(auth).send({ slow: 1 }).expect(400);
    assert.match(String(unknown.body.message), /Unrecognized key/);
    const range = await request(app).put('/admin/scenario').set(auth).send({ errorRate: 2 }).expect(400);
    assert.match(String(range.body.message), /^errorRate: /);
    await request(app).put('/admin/scenario').set(auth).set('content-type', 'application/json').send('{no').expect(400);
    const big = await request(app).put('/admin/scenario').set(auth).send({ extraLatencyMs: 1, pad: 'x'.repeat(5000) }).expect(413);
    assert.equal(big.body.error, 'BODY_TOO_LARGE');
    assert.deepEqual(backend.scenario.current, HEALTHY);
  });

  it('extra latency: images answer that much later; PUT replaces, DELETE clears', async () => {
    const set = await request(app).put('/admin/scenario').set(auth).send({ extraLatencyMs: 60 }).expect(200);
    assert.deepEqual(set.body, { ...HEALTHY, extraLatencyMs: 60 });
    const running = await startBackend(testConfig(), backend);
    const delays = recordDelays(backend);
    try {
      const slow = await get(`${running.url}/images/1`);
      assert.equal(slow.status, 200);
      assert.ok(slow.ms >= 55, `took ${slow.ms} ms`);
      // Image 1's own delay is 0 here: the request waited on a 60 ms timer, the scenario's.
      assert.deepEqual(delays.started, [60]);
      const cleared = await request(app).delete('/admin/scenario').set(auth).expect(200);
      assert.deepEqual(cleared.body, HEALTHY);
      const fast = await get(`${running.url}/images/1`);
      assert.equal(fast.status, 200);
      assert.deepEqual(delays.started, [60, 0], 'after DELETE the image waits its own delay only');
    } finally {
      delays.restore();
      await closeKeepingApp(running);
    }
  });

  it('error rate: that share of image requests answer 500 INJECTED_ERROR; health and info are untouched', async () => {
    await request(app).put('/admin/scenario').set(auth).send({ errorRate: 0.5 }).expect(200);
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await request(app).get('/images/1');
      statuses.push(res.status);
      if (res.status === 500) assert.equal(res.body.error, 'INJECTED_ERROR');
    }
    assert.equal(statuses.filter((s) => s === 500).length, 5);
    await request(app).get('/healthz').expect(200);
  });

  it('hang: an image request never answers until the client gives up; the delay is not left behind', async () => {
    await request(app).put('/admin/scenario').set(auth).send({ hang: true }).expect(200);
    const running = await startBackend(testConfig(), backend);
    try {
      const abort = new AbortController();
      const pending = get(`${running.url}/images/1`, { signal: abort.signal });
      await until('the hanging request', () => backend.delays.pending === 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(backend.delays.pending, 1, 'still hanging');
      abort.abort();
      await assert.rejects(pending);
      await until('the hang to end with the client', () => backend.delays.pending === 0);
    } finally {
      await closeKeepingApp(running);
    }
  });

  it('reset mid-body: headers and half the image arrive, then the connection is cut', async () => {
    await request(app).put('/admin/scenario').set(auth).send({ resetMidBody: true }).expect(200);
    const running = await startBackend(testConfig(), backend);
    try {
      await assert.rejects(get(`${running.url}/images/2`), /aborted|ECONNRESET|socket hang up/);
    } finally {
      await closeKeepingApp(running);
    }
  });

  it('CPU stall: each image request blocks the event loop for the given time', async () => {
    await request(app).put('/admin/scenario').set(auth).send({ cpuStallMs: 40 }).expect(200);
    const started = performance.now();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    await request(app).get('/images/1').expect(200);
    clearInterval(timer);
    assert.ok(performance.now() - started >= 40);
    assert.ok(ticks <= 2, `the loop was blocked, not sleeping: ${ticks} ticks`);
    let t = 0;
    stallCpu(3, () => (t += 1));
    assert.equal(t, 4, 'stalls by the clock it is given');
  });

  it('exit: answers 202, then calls exit once the answer has left', async () => {
    const res = await request(app).post('/admin/exit').set(auth).expect(202);
    assert.deepEqual(res.body, { status: 'exiting' });
    await until('exit to be called', () => exits.length === 1);
  });
});

/** Closes the socket server but keeps the shared app's delays usable for the next test. */
async function closeKeepingApp(running: Running): Promise<void> {
  await new Promise<void>((resolve) => {
    running.server.close(() => {
      resolve();
    });
    running.server.closeAllConnections();
  });
}
