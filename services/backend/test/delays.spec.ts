import assert from 'node:assert/strict';
import { createApp } from '../src/app.js';
import { createImages } from '../src/images.js';
import { get, quiet, recordDelays, startBackend, testConfig, until, type Running } from './helpers.js';

const images = createImages();

describe('image delays', () => {
  describe('per id, scaled', () => {
    let running: Running;
    // 2 s and 40 s scaled by 0.01: 20 ms for image 1, 400 ms for image 4.
    before(async () => {
      running = await startBackend(testConfig({ delaysMs: [2000, 5000, 8000, 40000], delayScale: 0.01 }));
      await get(`${running.url}/healthz`); // warm up, so the first timing is not the first request
    });
    after(() => running.close());

    it('holds image 4 back longer than image 1, for its scaled delay', async () => {
      const delays = recordDelays(running.backend);
      try {
        const one = await get(`${running.url}/images/1`);
        const four = await get(`${running.url}/images/4`);
        assert.equal(one.status, 200);
        assert.equal(four.status, 200);
        // The timers each waited on: the scale was applied (not 2000 and 40000).
        assert.deepEqual(delays.started, [20, 400]);
        // A timer never fires early, however fast or slow the machine: lower bounds only.
        assert.ok(one.ms >= 18, `image 1 took ${one.ms} ms, expected at least 20`);
        assert.ok(four.ms >= 395, `image 4 took ${four.ms} ms, expected at least 400`);
      } finally {
        delays.restore();
      }
    });

    it('answers errors at once, without the delay', async () => {
      const delays = recordDelays(running.backend);
      try {
        const res = await get(`${running.url}/images/9`);
        assert.equal(res.status, 404);
        assert.deepEqual(delays.started, [], 'no delay timer was started for the 404');
        assert.equal(running.backend.delays.pending, 0);
      } finally {
        delays.restore();
      }
    });
  });

  describe('concurrency', () => {
    let running: Running;
    before(async () => {
      running = await startBackend(testConfig({ delaysMs: [400, 400, 400, 400] }));
    });
    after(() => running.close());

    it('serves four delayed requests together: max(delay), not the sum', async () => {
      const pending = Promise.all([1, 2, 3, 4].map((id) => get(`${running.url}/images/${id}`)));
      // Together, not one after another: all four delay timers run at the same time.
      await until('four delays running at once', () => running.backend.delays.pending === 4);
      assert.equal(running.backend.stats.inFlight, 4);
      const results = await pending;
      assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200]);
      for (const r of results) assert.ok(r.ms >= 395, `took ${r.ms} ms`);
      assert.equal(running.backend.delays.pending, 0);
    });

    it('answers other routes while images wait', async () => {
      const slow = get(`${running.url}/images/1`);
      await until('the image to be in flight', () => running.backend.stats.inFlight === 1);
      const health = await get(`${running.url}/healthz`);
      assert.equal(health.status, 200);
      assert.equal(running.backend.stats.inFlight, 1, 'the image is still waiting');
      assert.equal((await slow).status, 200);
    });
  });

  describe('a client that goes away', () => {
    let running: Running;
    before(async () => {
      // 10 s: the test would time out, and mocha would not exit, if the timer stayed.
      running = await startBackend(testConfig({ delaysMs: [10_000, 10_000, 10_000, 10_000] }));
    });
    after(() => running.close());

    it('clears the timer and the in-flight count', async () => {
      const { backend, url } = running;
      const abort = new AbortController();
      const pending = get(`${url}/images/4`, { signal: abort.signal });
      await until('the image to be in flight', () => backend.stats.inFlight === 1 && backend.delays.pending === 1);
      abort.abort();
      await assert.rejects(pending, { name: 'AbortError' });
      await until('the timer to be cleared', () => backend.delays.pending === 0 && backend.stats.inFlight === 0);
      assert.equal(backend.stats.served, 0);
    });
  });

  describe('stop()', () => {
    it('ends running delays and drops their connections', async () => {
      const backend = createApp(testConfig({ delaysMs: [10_000, 10_000, 10_000, 10_000] }), { logger: quiet, images });
      const running = await startBackend(testConfig(), backend);
      try {
        const pending = get(`${running.url}/images/2`);
        await until('the image to be in flight', () => backend.delays.pending === 1);
        backend.stop();
        backend.stop(); // idempotent
        await assert.rejects(pending, { code: 'ECONNRESET' });
        await until('nothing in flight', () => backend.stats.inFlight === 0);
        assert.equal(backend.delays.pending, 0);
        // Stopped: no new delay starts either.
        await assert.rejects(get(`${running.url}/images/1`), { code: 'ECONNRESET' });
      } finally {
        await running.close();
      }
    });
  });
});
