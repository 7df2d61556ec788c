import assert from 'node:assert/strict';
import {
  MAX_BURST,
  addToTally,
  clampBurst,
  runLimited,
  emptyTally,
  fetchImage,
  imageUrl,
  parseErrorBody,
  randomImageId,
  type ImageOutcome,
} from '../src/requests.js';

const clock = () => {
  let t = 0;
  return () => (t += 25);
};

describe('requests', () => {
  it('picks ids 1-4 like the original page', () => {
    assert.equal(randomImageId(() => 0), 1);
    assert.equal(randomImageId(() => 0.26), 2);
    assert.equal(randomImageId(() => 0.999999), 4);
    assert.equal(randomImageId(() => 1), 4);
  });

  it('builds /images/{id}?nocache=<time> URLs, unique within a burst', () => {
    assert.equal(imageUrl(3, 1700), '/images/3?nocache=1700');
    assert.equal(imageUrl(3, 1700, '7'), '/images/3?nocache=1700-7');
  });

  it('caps bursts at 1-200', () => {
    assert.equal(clampBurst('40'), 40);
    assert.equal(clampBurst('0'), 1);
    assert.equal(clampBurst(1000), MAX_BURST);
    assert.equal(clampBurst('abc'), 1);
    assert.equal(clampBurst(12.9), 12);
  });

  it('reads the error code of a JSON error body, else names the status', () => {
    assert.deepEqual(parseErrorBody(503, '{"error":"LB_NO_UPSTREAM","message":"no upstream available"}'), {
      code: 'LB_NO_UPSTREAM',
      message: 'no upstream available',
    });
    assert.deepEqual(parseErrorBody(502, '<html>Bad Gateway</html>'), { code: 'HTTP_502', message: '<html>Bad Gateway</html>' });
    assert.equal(parseErrorBody(500, '{"error":42}').code, 'HTTP_500');
  });

  it('fetchImage returns the image with upstream, backend, decision and time', async () => {
    const seen: (RequestInit | undefined)[] = [];
    const fake: typeof fetch = (_url, init) => {
      seen.push(init);
      return Promise.resolve(
        new Response(new Uint8Array([137, 80, 78, 71]), {
          status: 200,
          headers: {
            'content-type': 'image/png',
            'x-upstream': '127.0.0.1:8003',
            'x-backend-id': 'backend-2',
            'x-lb-decision': 'chosen=127.0.0.1:8003; reason=least-loaded; candidates=127.0.0.1:8002/1/1,127.0.0.1:8003/0/1',
          },
        }),
      );
    };
    const o = await fetchImage({ imageId: 2, url: '/images/2?nocache=1', fetch: fake, now: clock() });
    assert.equal(seen[0]?.cache, 'no-store');
    assert.ok(o.ok);
    assert.equal(o.upstream, '127.0.0.1:8003');
    assert.equal(o.backend, 'backend-2');
    assert.equal(o.decision?.reason, 'least-loaded');
    assert.equal(o.decision.candidates.length, 2);
    assert.equal(o.ms, 25);
    assert.equal(o.blob.size, 4);
  });

  it('fetchImage reports the balancer error code of a failed request', async () => {
    const fake: typeof fetch = () =>
      Promise.resolve(
        new Response('{"error":"LB_UPSTREAM_CONNECT","message":"connect refused"}', {
          status: 502,
          headers: { 'content-type': 'application/json' },
        }),
      );
    const o = await fetchImage({ imageId: 1, url: '/images/1', fetch: fake, now: clock() });
    assert.equal(o.ok, false);
    assert.ok(!o.ok);
    assert.equal(o.status, 502);
    assert.equal(o.code, 'LB_UPSTREAM_CONNECT');
    assert.equal(o.aborted, false);
  });

  it('fetchImage tells network errors, timeouts and aborts apart', async () => {
    const refuse: typeof fetch = () => Promise.reject(new TypeError('Failed to fetch'));
    const net = await fetchImage({ imageId: 1, url: '/x', fetch: refuse });
    assert.ok(!net.ok);
    assert.equal(net.code, 'NETWORK_ERROR');
    assert.equal(net.status, 0);

    const hang: typeof fetch = (_u, init) =>
      new Promise((_ok, ko) => {
        init?.signal?.addEventListener('abort', () => {
          ko(new DOMException('aborted', 'AbortError'));
        });
      });
    const slow = await fetchImage({ imageId: 4, url: '/x', fetch: hang, timeoutMs: 20 });
    assert.ok(!slow.ok);
    assert.equal(slow.code, 'TIMEOUT');
    assert.equal(slow.aborted, false);

    const controller = new AbortController();
    const pending = fetchImage({ imageId: 4, url: '/x', fetch: hang, signal: controller.signal });
    controller.abort();
    const cancelled = await pending;
    assert.ok(!cancelled.ok);
    assert.equal(cancelled.code, 'ABORTED');
    assert.equal(cancelled.aborted, true);
  });

  it('tallies a burst by upstream, reason and error code', () => {
    const ok = (upstream: string, reason: string): ImageOutcome => ({
      ok: true,
      imageId: 1,
      status: 200,
      upstream,
      backend: undefined,
      decision: { chosen: upstream, reason, candidates: [] },
      ms: 1,
      blob: new Blob([]),
    });
    const failed: ImageOutcome = {
      ok: false,
      imageId: 1,
      status: 503,
      code: 'LB_NO_UPSTREAM',
      message: '',
      upstream: undefined,
      decision: undefined,
      ms: 1,
      aborted: false,
    };
    let t = emptyTally(4);
    for (const o of [ok('a', 'least-loaded'), ok('b', 'tie-rotation'), ok('a', 'least-loaded'), failed]) t = addToTally(t, o);
    assert.equal(t.sent, 4);
    assert.equal(t.done, 4);
    assert.equal(t.ok, 3);
    assert.equal(t.failed, 1);
    assert.deepEqual([...t.byUpstream], [['a', 2], ['b', 1]]);
    assert.deepEqual([...t.byReason], [['least-loaded', 2], ['tie-rotation', 1]]);
    assert.deepEqual([...t.byError], [['LB_NO_UPSTREAM', 1]]);
  });
});

describe('runLimited (the burst\'s own queue)', () => {
  it('never has more than `limit` tasks running, runs them all, keeps the index order of results', async () => {
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const results = await runLimited(10, 3, async (i) => {
      started.push(i);
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 1 + (i % 3)));
      running--;
      return i * 2;
    });
    assert.equal(most, 3);
    assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(results, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
    assert.deepEqual(await runLimited(0, 4, () => Promise.resolve(1)), []);
  });

  it('a task starts only when a lane is free: its clock starts then, not when the burst began', async () => {
    const startTimes: number[] = [];
    const t0 = Date.now();
    await runLimited(4, 2, async () => {
      startTimes.push(Date.now() - t0);
      await new Promise((resolve) => setTimeout(resolve, 30));
    });
    assert.ok((startTimes[2] ?? 0) >= 25, `the third started after the first finished: ${startTimes.join(',')}`);
  });
});
