import assert from 'node:assert/strict';
import { request } from 'undici';
import { createRetryBudget } from '../src/data-path/retry-budget.js';
import { namedHandler, startBalancer, startOrigin, stopAfterEach, testConfig, waitFor } from './helpers.js';
import type { Origin, Running } from './helpers.js';

async function call(url: string) {
  const res = await request(url);
  return { status: res.statusCode, text: await res.body.text(), upstream: res.headers['x-upstream'] };
}

describe('resilience: capacity, queue, timeouts, outliers, slow start, retry budget', () => {
  let origins: Origin[] = [];
  let lb: Running | undefined;
  stopAfterEach(() => ({ lb, origins }));

  /** An origin whose /hold requests wait until released, in order. */
  async function holder(name: string): Promise<{ origin: Origin; held: (() => void)[] }> {
    const held: (() => void)[] = [];
    const origin = await startOrigin((req, res) => {
      if (req.url?.startsWith('/hold') === true) held.push(() => res.writeHead(200).end(`${name}${req.url ?? ''}`));
      else res.writeHead(200).end(name);
    });
    return { origin, held };
  }

  it('caps in-flight per upstream and serves queued requests in arrival order', async () => {
    const { origin, held } = await holder('a');
    origins = [origin];
    lb = await startBalancer(testConfig([origin.port], { exposeUpstream: true, maxInFlight: 1, queueLength: 5, queueTimeoutMs: 5000 }));
    const running = lb;
    const order: string[] = [];
    const jobs = [1, 2, 3].map((n) => call(`${running.url}/hold/${n}`).then((r) => order.push(r.text)));
    await waitFor(() => held.length === 1, 2000, 'first request at the upstream');
    assert.equal(running.balancer.registry.list()[0]?.inFlight, 1, 'the cap holds the others back');
    await waitFor(async () => /^lb_queue_length 2$/m.test(await (await request(`${running.adminUrl}/metrics`)).body.text()), 2000, 'queue length 2 in /metrics');
    const view = running.balancer.snapshot().upstreams[0];
    assert.equal(view?.maxInFlight, 1, '/api/upstreams shows the cap');
    for (let i = 0; i < 3; i++) {
      await waitFor(() => held.length > i, 2000, `request ${i + 1} admitted`);
      held[i]?.();
    }
    await Promise.all(jobs);
    assert.deepEqual(order, ['a/hold/1', 'a/hold/2', 'a/hold/3']);
  });

  it('raising a cap lets queued requests through at once, without waiting for a release', async () => {
    const { origin, held } = await holder('a');
    origins = [origin];
    lb = await startBalancer(testConfig([origin.port], { exposeUpstream: true, maxInFlight: 1, queueLength: 5, queueTimeoutMs: 5000 }));
    const running = lb;
    const jobs = [1, 2, 3].map((n) => call(`${running.url}/hold/${n}`));
    await waitFor(() => held.length === 1, 2000, 'first request at the upstream');
    await waitFor(async () => /^lb_queue_length 2$/m.test(await (await request(`${running.adminUrl}/metrics`)).body.text()), 2000, 'two queued');
    const upstream = running.balancer.registry.list()[0];
    assert.ok(upstream);
    running.balancer.registry.setMaxInFlight(upstream, 2);
    // One more place: the oldest waiter goes now (well before the 5 s queue timeout); the other still waits.
    await waitFor(() => held.length === 2, 1000, 'the oldest queued request admitted by the raise');
    assert.equal(upstream.inFlight, 2);
    running.balancer.registry.setMaxInFlight(upstream, 0);
    await waitFor(() => held.length === 3, 1000, 'the last one admitted when the cap is lifted');
    for (const release of held) release();
    assert.deepEqual((await Promise.all(jobs)).map((r) => r.text), ['a/hold/1', 'a/hold/2', 'a/hold/3']);
  });

  it('503 LB_QUEUE_FULL when the queue is full, LB_QUEUE_TIMEOUT when the wait is too long', async () => {
    const { origin, held } = await holder('a');
    origins = [origin];
    lb = await startBalancer(testConfig([origin.port], { exposeUpstream: true, maxInFlight: 1, queueLength: 1, queueTimeoutMs: 150 }));
    const running = lb;
    const first = call(`${running.url}/hold/1`);
    await waitFor(() => held.length === 1);
    const queued = call(`${running.url}/hold/2`);
    const full = await call(`${running.url}/hold/3`);
    assert.equal(full.status, 503);
    assert.equal(JSON.parse(full.text).error, 'LB_QUEUE_FULL');
    const timedOut = await queued;
    assert.equal(timedOut.status, 503);
    assert.equal(JSON.parse(timedOut.text).error, 'LB_QUEUE_TIMEOUT');
    held[0]?.();
    assert.equal((await first).status, 200);
  });

  it('504 LB_UPSTREAM_TIMEOUT when the whole response takes longer than the request timeout', async () => {
    const dribble = await startOrigin((_req, res) => {
      // Headers at once, then a byte every 50 ms: no idle timeout fires, only the total one.
      res.writeHead(200);
      const t = setInterval(() => res.write('.'), 50);
      res.on('close', () => {
        clearInterval(t);
      });
    });
    origins = [dribble];
    lb = await startBalancer(testConfig([dribble.port], { exposeUpstream: true, requestTimeoutMs: 300 }));
    // Headers were sent: the client sees a cut connection, and the failure is counted.
    await assert.rejects(request(`${lb.url}/`).then((r) => r.body.text()));
    const metrics = await (await request(`${lb.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /lb_upstream_failures_total\{upstream="[^"]+",reason="timeout"\} 1/);
    const running = lb;
    await waitFor(() => running.balancer.registry.inFlight() === 0);
  });

  it('504 with LB_UPSTREAM_TIMEOUT before headers when the request timeout passes first', async () => {
    const hang = await startOrigin(() => undefined);
    origins = [hang];
    lb = await startBalancer(testConfig([hang.port], { exposeUpstream: true, requestTimeoutMs: 200 }));
    const r = await call(`${lb.url}/`);
    assert.equal(r.status, 504);
    assert.equal(JSON.parse(r.text).error, 'LB_UPSTREAM_TIMEOUT');
  });

  it('ejects an upstream after N failures in the window, for a time that doubles', async () => {
    let failing = true;
    const flaky = await startOrigin((_req, res) => {
      res.writeHead(failing ? 500 : 200).end('flaky');
    });
    const good = await startOrigin(namedHandler('good'));
    origins = [flaky, good];
    lb = await startBalancer(testConfig([flaky.port, good.port], { exposeUpstream: true, passiveFailures: 3, passiveWindowMs: 10_000, passiveDownMs: 150 }));
    const running = lb;
    const up = running.balancer.registry.get(flaky.id);
    assert.ok(up);
    let flakyHits = 0;
    for (let i = 0; i < 6; i++) if ((await call(`${running.url}/`)).upstream === flaky.id) flakyHits++;
    assert.equal(flakyHits, 3, 'three 5xx, then ejected');
    assert.equal(up.state, 'down');
    const firstEjection = up.ejectedUntil - Date.now();
    assert.ok(firstEjection <= 150 && firstEjection > 0);
    await waitFor(() => up.state === 'up', 2000, 'ejection over');
    for (let i = 0; i < 6; i++) await call(`${running.url}/`);
    assert.equal(up.state, 'down', 'ejected again');
    const second = up.ejectedUntil - Date.now();
    assert.ok(second > 150 && second <= 300, `second ejection ${second} ms is twice as long`);
    failing = false;
    await waitFor(() => up.state === 'up', 2000, 'back after the second ejection');
  });

  it('slow start ramps a recovering upstream from 10% of its weight', async () => {
    const a = await startOrigin(namedHandler('a'));
    const b = await startOrigin(namedHandler('b'));
    origins = [a, b];
    lb = await startBalancer(testConfig([a.port, b.port], { exposeUpstream: true, slowStartMs: 400 }));
    const running = lb;
    const upB = running.balancer.registry.get(b.id);
    assert.ok(upB);
    running.balancer.registry.setState(upB, 'down', 'test');
    running.balancer.registry.setState(upB, 'up', 'test');
    assert.ok(upB.weight < 0.2, `starts near 10%: ${upB.weight}`);
    const metrics = await (await request(`${running.adminUrl}/metrics`)).body.text();
    const effective = Number(new RegExp(`lb_upstream_effective_weight\\{upstream="${b.id}"\\} ([\\d.e-]+)`).exec(metrics)?.[1]);
    assert.ok(effective < 0.5, `effective weight in /metrics: ${effective}`);
    const view = running.balancer.snapshot().upstreams.find((u) => u.id === b.id);
    assert.equal(view?.weight, 1);
    let sawMiddle = false;
    await waitFor(() => {
      if (upB.weight > 0.3 && upB.weight < 0.9) sawMiddle = true;
      return upB.weight === 1;
    }, 3000, 'ramp to full weight');
    assert.ok(sawMiddle, 'the weight rises gradually');
  });

  it('the retry budget refuses retries past its share of requests', () => {
    let now = 1_000_000;
    const budget = createRetryBudget(20, 2, 10_000, () => now);
    for (let i = 0; i < 50; i++) budget.recordRequest();
    let granted = 0;
    for (let i = 0; i < 100; i++) if (budget.tryAcquire()) granted++;
    assert.equal(granted, 10, '20% of 50 requests');
    now += 11_000; // the window slides past everything
    let afterWindow = 0;
    for (let i = 0; i < 10; i++) if (budget.tryAcquire()) afterWindow++;
    assert.equal(afterWindow, 2, 'only the floor is left');
  });

  it('never lets retries amplify an outage (budget counted in metrics)', async () => {
    const reset = await startOrigin((req) => {
      req.socket.destroy();
    });
    const reset2 = await startOrigin((req) => {
      req.socket.destroy();
    });
    origins = [reset, reset2];
    lb = await startBalancer(testConfig([reset.port, reset2.port], { exposeUpstream: true, retries: 1, retryBudgetPercent: 10, retryBudgetMin: 1, passiveFailures: 1000 }));
    for (let i = 0; i < 20; i++) assert.equal((await call(`${lb.url}/`)).status, 502);
    const metrics = await (await request(`${lb.adminUrl}/metrics`)).body.text();
    const retries = Number(/^lb_retries_total (\d+)/m.exec(metrics)?.[1]);
    const refused = Number(/^lb_retry_budget_exhausted_total (\d+)/m.exec(metrics)?.[1]);
    assert.ok(retries <= 2, `retries ${retries} stay within 10% of 20 requests`);
    assert.equal(retries + refused, 20);
  });
});
