import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { request } from 'undici';
import { deadPort, namedHandler, startBalancer, startOrigin, stopAfterEach, testConfig, waitFor } from './helpers.js';
import type { Origin, Running } from './helpers.js';

async function call(url: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) {
  const res = await request(url, { method: (init.method ?? 'GET') as 'GET', body: init.body, headers: init.headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

describe('proxy: failures, error codes and the acquire/release pair', () => {
  let origins: Origin[] = [];
  let lb: Running | undefined;
  const allIdle = (running: Running) => () => running.balancer.snapshot().upstreams.every((u) => u.inFlight === 0);

  stopAfterEach(() => ({ lb, origins }));

  it('503 LB_NO_UPSTREAM when no upstream is available, at once', async () => {
    const port = await deadPort();
    // Without panic mode: with it (the default) a down upstream is still tried when it is the only one.
    lb = await startBalancer(testConfig([port], { panic: false }));
    const running = lb;
    const up = running.balancer.registry.list()[0];
    assert.ok(up);
    running.balancer.registry.setState(up, 'down', 'test');
    const r = await call(`${running.url}/x`);
    assert.equal(r.status, 503);
    assert.deepEqual(JSON.parse(r.text), { error: 'LB_NO_UPSTREAM', message: 'no upstream is available' });
    assert.match(String(r.headers['content-type']), /application\/json/);
  });

  it('502 LB_UPSTREAM_CONNECT when the only upstream refuses, and the upstream is taken out', async () => {
    const port = await deadPort();
    lb = await startBalancer(testConfig([port]));
    const r = await call(`${lb.url}/x`);
    assert.equal(r.status, 502);
    assert.equal(JSON.parse(r.text).error, 'LB_UPSTREAM_CONNECT');
    assert.equal(lb.balancer.registry.list()[0]?.state, 'down');
    await waitFor(allIdle(lb));
  });

  it('retries a refused connection on another upstream, even for a POST with a body', async () => {
    const dead = await deadPort();
    const live = await startOrigin((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => res.writeHead(201).end(`got ${body}`));
    });
    origins = [live];
    lb = await startBalancer(testConfig([dead, live.port], { exposeUpstream: true }));
    const r = await call(`${lb.url}/orders`, { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } });
    assert.equal(r.status, 201);
    assert.equal(r.text, 'got hello');
    assert.equal(r.headers['x-upstream'], live.id);
    const metrics = await (await request(`${lb.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /^lb_retries_total 1$/m);
    assert.match(metrics, new RegExp(`lb_upstream_failures_total\\{upstream="127.0.0.1:${dead}",reason="connect"\\} 1`));
  });

  it('fails over past every refusing upstream without spending retries or budget (scale-down)', async () => {
    const dead = await Promise.all([deadPort(), deadPort(), deadPort()]);
    const live = await startOrigin(namedHandler('live'));
    origins = [live];
    lb = await startBalancer(testConfig([...dead, live.port], { retries: 0, retryBudgetPercent: 0, retryBudgetMin: 0 }));
    const r = await call(`${lb.url}/img`);
    assert.equal(r.status, 200);
    assert.equal(r.text, 'live');
    for (const port of dead) assert.equal(lb.balancer.registry.get(`127.0.0.1:${port}`)?.state, 'down');
  });

  it('504 LB_UPSTREAM_TIMEOUT when no upstream sends headers in time (each tried once)', async () => {
    let hits = 0;
    const hang = await startOrigin(() => {
      hits++;
    });
    const other = await startOrigin(() => {
      hits++;
    });
    origins = [hang, other];
    lb = await startBalancer(testConfig([hang.port, other.port], { headersTimeoutMs: 150 }, ['--headers-timeout-ms', '150']));
    const r = await call(`${lb.url}/slow`);
    assert.equal(r.status, 504);
    assert.equal(JSON.parse(r.text).error, 'LB_UPSTREAM_TIMEOUT');
    assert.equal(hits, 2, 'an idempotent request is retried once elsewhere, never twice on one upstream');
    await waitFor(allIdle(lb));
  });

  it('a POST that timed out is not retried (it may have had an effect)', async () => {
    let hits = 0;
    const hang = await startOrigin(() => {
      hits++;
    });
    const other = await startOrigin(() => {
      hits++;
    });
    origins = [hang, other];
    lb = await startBalancer(testConfig([hang.port, other.port], { headersTimeoutMs: 150 }, ['--headers-timeout-ms', '150']));
    const r = await call(`${lb.url}/pay`, { method: 'POST', body: 'x' });
    assert.equal(r.status, 504);
    assert.equal(hits, 1);
  });

  it('502 LB_UPSTREAM_RESET when the upstream resets a non-idempotent request', async () => {
    const reset = await startOrigin((req) => {
      req.socket.destroy();
    });
    origins = [reset];
    lb = await startBalancer(testConfig([reset.port]));
    const r = await call(`${lb.url}/pay`, { method: 'POST', body: 'x' });
    assert.equal(r.status, 502);
    assert.equal(JSON.parse(r.text).error, 'LB_UPSTREAM_RESET');
    await waitFor(allIdle(lb));
  });

  it('retries an idempotent body-less request that was reset, on another upstream', async () => {
    const reset = await startOrigin((req) => {
      req.socket.destroy();
    });
    const good = await startOrigin(namedHandler('good'));
    origins = [reset, good];
    lb = await startBalancer(testConfig([reset.port, good.port]));
    for (let i = 0; i < 4; i++) {
      const r = await call(`${lb.url}/img`);
      assert.equal(r.status, 200);
      assert.equal(r.text, 'good');
    }
  });

  it('cuts the client connection when the upstream dies after the headers', async () => {
    const half = await startOrigin((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      setImmediate(() => res.socket?.destroy());
    });
    origins = [half];
    lb = await startBalancer(testConfig([half.port]));
    await assert.rejects(call(`${lb.url}/x`));
    await waitFor(allIdle(lb));
  });

  it('a client abort cancels the upstream request and releases the count', async () => {
    let upstreamClosed = false;
    const hang = await startOrigin((req) => {
      req.socket.on('close', () => {
        upstreamClosed = true;
      });
    });
    origins = [hang];
    lb = await startBalancer(testConfig([hang.port]));
    const running = lb;
    const socket = connect(running.addresses.data.port, '127.0.0.1');
    socket.write('GET /forever HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => running.balancer.registry.inFlight() === 1, 2000, 'request in flight');
    socket.destroy();
    await waitFor(() => upstreamClosed, 2000, 'upstream request cancelled');
    await waitFor(allIdle(running), 2000, 'count released');
    const metrics = await (await request(`${running.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /lb_requests_total\{upstream="127\.0\.0\.1:\d+",code="499"\} 1/);
  });

  it('counts return to 0 after a mix of completed, failed and aborted requests', async () => {
    const ok = await startOrigin(namedHandler('ok', 30));
    const reset = await startOrigin((req) => {
      req.socket.destroy();
    });
    const hang = await startOrigin(() => undefined);
    origins = [ok, reset, hang];
    lb = await startBalancer(testConfig([ok.port, reset.port, hang.port], { headersTimeoutMs: 200, retries: 0 }));
    const running = lb;
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      if (i % 3 === 0) {
        const ac = new AbortController();
        jobs.push(request(`${running.url}/slow`, { signal: ac.signal }).then((r) => r.body.text()).catch(() => 'aborted'));
        setTimeout(() => {
          ac.abort();
        }, 10);
      } else {
        jobs.push(call(`${running.url}/${i % 2 ? 'slow' : 'x'}`).catch(() => 'failed'));
      }
    }
    await Promise.all(jobs);
    await waitFor(allIdle(running), 3000, 'every in-flight count back to 0');
    assert.equal(running.balancer.registry.inFlight(), 0);
  });

  it('strips hop-by-hop headers and adds X-Forwarded-* and X-Request-Id', async () => {
    let seen: Record<string, string | string[] | undefined> = {};
    const echo = await startOrigin((req, res) => {
      seen = req.headers;
      res.writeHead(200, { connection: 'keep-alive, x-secret-hop', 'x-secret-hop': '1', 'keep-alive': 'timeout=5', 'x-kept': 'yes' }).end('ok');
    });
    origins = [echo];
    // The test client is a trusted proxy here: its X-Forwarded-For is extended (faults.spec.ts covers untrusted peers).
    lb = await startBalancer(testConfig([echo.port], { exposeUpstream: true }, ['--trusted-proxies', '127.0.0.1']));
    // A raw request: HTTP clients refuse to send a Connection header naming other headers.
    const raw = connect(lb.addresses.data.port, '127.0.0.1');
    raw.write('GET /h HTTP/1.1\r\nHost: site.test\r\nConnection: x-drop-me\r\nX-Drop-Me: 1\r\nX-Forwarded-For: 10.0.0.1\r\nX-Request-Id: abc-123\r\nProxy-Authorization: secret\r\n\r\n');
    let rawText = '';
    raw.setEncoding('utf8');
    raw.on('data', (chunk: string) => (rawText += chunk));
    await waitFor(() => rawText.includes('\r\n\r\nok') || rawText.endsWith('ok\r\n0\r\n\r\n'), 2000, 'raw response');
    raw.destroy();
    const r = { headers: Object.fromEntries(rawText.split('\r\n\r\n')[0]?.split('\r\n').slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]) ?? []) as Record<string, string | undefined> };
    assert.equal(seen['x-drop-me'], undefined);
    assert.equal(seen['proxy-authorization'], undefined);
    assert.equal(seen['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
    assert.equal(seen['x-forwarded-proto'], 'http');
    assert.equal(seen['x-forwarded-host'], 'site.test');
    assert.equal(seen['x-request-id'], 'abc-123');
    assert.equal(r.headers['x-request-id'], 'abc-123');
    assert.equal(r.headers['x-secret-hop'], undefined);
    assert.equal(r.headers['x-kept'], 'yes');
    assert.equal(r.headers['x-upstream'], echo.id);
    const fresh = await call(`${lb.url}/h`);
    assert.match(String(fresh.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.equal(seen['x-request-id'], fresh.headers['x-request-id']);
  });

  it('explain mode tells which candidates there were and why one won', async () => {
    origins = await Promise.all(['a', 'b'].map((n) => startOrigin(namedHandler(n))));
    const [a, b] = origins;
    assert.ok(a && b);
    lb = await startBalancer(testConfig([a.port, b.port], { explain: true }));
    const r = await call(`${lb.url}/`);
    assert.equal(r.headers['x-lb-decision'], `chosen=${a.id}; reason=tie-rotation; candidates=${a.id}/0/1,${b.id}/0/1`);
    const off = await startBalancer(testConfig([a.port]));
    try {
      assert.equal((await call(`${off.url}/`)).headers['x-lb-decision'], undefined);
    } finally {
      await off.balancer.stop();
    }
  });
});
