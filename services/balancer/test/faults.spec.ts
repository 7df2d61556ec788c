/**
 * Issue #13, one test (or a few) per row of the fault table: each fails on the code before the
 * change. The table itself, measured under steady load, is test/soak/fault-table.soak.ts (make soak).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { connect } from 'node:net';
import { request } from 'undici';
import { createTrustCheck, upstreamRequestHeaders } from '../src/forward-headers.js';
import { parseMetrics, startBalancer, startOrigin, testConfig, waitFor } from './helpers.js';
import type { Handler, Origin, Running } from './helpers.js';

const ok: Handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 }).end('ok');
};

/** Headers and part of the body, then a reset: what the probe must notice. */
const resetBody: Handler = (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 100 });
  res.write('partial', () => {
    req.socket.resetAndDestroy();
  });
};

/** Listens on `port` (0 = any); returned with its open sockets so a kill can cut them. */
async function listenOn(handler: Handler, port = 0): Promise<{ server: Server; port: number; kill: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer(handler);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    kill: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** Sends raw headers (names and values as given) and returns what the upstream saw and the answer. */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('faults where we beat HAProxy and Envoy (issue #13)', function () {
  this.timeout(20_000);
  let lb: Running | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await lb?.balancer.stop();
    lb = undefined;
    for (const c of cleanups.splice(0)) await c();
  });
  const origin = async (handler: Handler): Promise<Origin> => {
    const o = await startOrigin(handler);
    cleanups.push(() => o.close());
    return o;
  };
  const stateOf = (id: string): string | undefined => lb?.balancer.registry.get(id)?.state;

  describe('health probes read what they check', () => {
    it('a probe whose body is reset after the headers fails (dump() used to swallow the reset)', async () => {
      const broken = await origin((req, res) => {
        if (req.url === '/healthz') resetBody(req, res);
        else ok(req, res);
      });
      const fine = await origin(ok);
      lb = await startBalancer(testConfig([broken.port, fine.port], {}, ['--health-interval-ms', '50', '--health-fall', '1']));
      await waitFor(() => stateOf(broken.id) === 'down', 3000, 'the upstream with the reset body taken down');
      // Several rounds later the good one is still up and the broken one never came back.
      const probesLater = Date.now() + 300;
      await waitFor(() => Date.now() > probesLater);
      assert.equal(stateOf(fine.id), 'up');
      assert.equal(stateOf(broken.id), 'down');
    });

    it('a probe whose body stalls past the timeout fails, and one longer than the cap fails', async () => {
      const stalls = await origin((req, res) => {
        res.writeHead(200, { 'content-length': 10 });
        res.write('12345'); // and never the rest
      });
      const huge = await origin((req, res) => {
        res.writeHead(200, { 'content-length': 4096 }).end(Buffer.alloc(4096));
      });
      const fine = await origin(ok);
      lb = await startBalancer(
        testConfig([stalls.port, huge.port, fine.port], {}, ['--health-interval-ms', '50', '--health-timeout-ms', '200', '--health-fall', '1', '--health-max-body-bytes', '1024']),
      );
      await waitFor(() => stateOf(stalls.id) === 'down' && stateOf(huge.id) === 'down', 3000, 'both taken down');
      assert.equal(stateOf(fine.id), 'up');
    });
  });

  describe('retry on an upstream 502/503/504', () => {
    it('a GET answered 503 is sent to another upstream; the client never sees the 503', async () => {
      let overloadedSaw = 0;
      const overloaded = await origin((req, res) => {
        overloadedSaw++;
        res.writeHead(503, { 'content-type': 'text/plain', 'content-length': 4 }).end('busy');
      });
      const fine = await origin(ok);
      // Enough passive failures not to eject it during the test: every GET meets the 503 first or second.
      lb = await startBalancer(testConfig([overloaded.port, fine.port], { passiveFailures: 1000 }));
      for (let i = 0; i < 10; i++) {
        const r = await get(`${lb.url}/x`);
        assert.equal(r.status, 200);
        assert.equal(r.body, 'ok');
      }
      assert.ok(overloadedSaw >= 4, `the 503 upstream was tried (${overloadedSaw})`);
      const metrics = parseMetrics(await (await request(`${lb.adminUrl}/metrics`)).body.text());
      assert.equal(metrics.get(`lb_upstream_failures_total{upstream="${overloaded.id}",reason="status"}`), overloadedSaw);
    });

    it('when every upstream answers 503 the client gets the last answer, body included', async () => {
      const a = await origin((_req, res) => {
        res.writeHead(503, { 'content-length': 6, 'retry-after': '1' }).end('busy-a');
      });
      const b = await origin((_req, res) => {
        res.writeHead(503, { 'content-length': 6, 'retry-after': '1' }).end('busy-b');
      });
      lb = await startBalancer(testConfig([a.port, b.port], { passiveFailures: 1000 }));
      const r = await get(`${lb.url}/x`);
      assert.equal(r.status, 503);
      assert.match(r.body, /^busy-[ab]$/);
      assert.equal(r.headers['retry-after'], '1');
    });

    it('a POST with a body is never retried on status, and --retry-on-status none turns it off', async () => {
      const seen: string[] = [];
      const a = await origin((req, res) => {
        seen.push(req.method ?? '');
        req.resume();
        res.writeHead(503, { 'content-length': 4 }).end('busy');
      });
      lb = await startBalancer(testConfig([a.port, (await origin(ok)).port], { passiveFailures: 1000 }, ['--retry-on-status', 'none']));
      // Rotation: one of two sequential GETs meets the 503 upstream and, with retries off, returns it.
      const statuses = [(await get(`${lb.url}/x`)).status, (await get(`${lb.url}/x`)).status].sort();
      assert.deepEqual(statuses, [200, 503]);
      await lb.balancer.stop();
      lb = await startBalancer(testConfig([a.port], { passiveFailures: 1000 }));
      const res = await request(`${lb.url}/upload`, { method: 'POST', body: 'data' });
      assert.equal(res.statusCode, 503);
      assert.equal(await res.body.text(), 'busy');
    });
  });

  describe('hung upstreams cost nothing', () => {
    it('requests waiting on an upstream that probes then take down are re-sent elsewhere at once (default timeouts)', async () => {
      let hungSaw = 0;
      let hanging = false;
      const hung = await origin((req, res) => {
        // Healthy until the balancer is up, then never answers anything, probes included.
        if (!hanging) ok(req, res);
        else if (req.url !== '/healthz') hungSaw++;
      });
      const fine = await origin(ok);
      // Default header timeout (60 s): without the rescue these requests would wait a minute.
      lb = await startBalancer(testConfig([hung.port, fine.port], {}, ['--health-interval-ms', '100', '--health-timeout-ms', '200', '--health-fall', '1']));
      hanging = true;
      const url = lb.url;
      // The bound is the client's own 5 s header timeout (the balancer's default would hold them 60 s).
      const replies = await Promise.all(Array.from({ length: 6 }, () => request(`${url}/x`, { headersTimeout: 5000 }).then(async (r) => [r.statusCode, await r.body.text()])));
      assert.ok(hungSaw >= 1, 'some requests went to the hung upstream first');
      for (const r of replies) assert.deepEqual(r, [200, 'ok']);
      const metrics = parseMetrics(await (await request(`${lb.adminUrl}/metrics`)).body.text());
      assert.ok((metrics.get(`lb_upstream_failures_total{upstream="${hung.id}",reason="ejected"}`) ?? 0) >= 1);
    });

    it('--try-timeout-ms moves a replayable request that has no headers in time', async () => {
      const hung = await origin(() => undefined);
      const fine = await origin(ok);
      lb = await startBalancer(testConfig([hung.port, fine.port], {}, ['--try-timeout-ms', '150']));
      const url = lb.url;
      // The hung upstream never answers: a 200 for both means each was moved to the fine one, and
      // the client's 5 s header timeout (not the balancer's 60 s default) bounds the wait.
      const replies = await Promise.all([0, 1].map(() => request(`${url}/x`, { headersTimeout: 5000 }).then(async (r) => [r.statusCode, await r.body.text()])));
      for (const r of replies) assert.deepEqual(r, [200, 'ok']);
    });
  });

  // Within 1 s by the schedule, not by a stopwatch: back on the rise-th passing probe after the
  // restart (no extra rounds), and rise × the down interval (the probe interval while down) is
  // within 1 s at the defaults.
  it('a restarted upstream is back in rotation within 1 s with default health settings', async () => {
    let u = await listenOn(ok);
    const port = u.port;
    cleanups.push(() => u.kill());
    const fine = await origin(ok);
    const config = testConfig([port, fine.port], {}, ['--health-interval-ms', '1000']);
    assert.equal(config.health.rise, 2);
    assert.equal(config.health.downIntervalMs, 250);
    assert.ok(config.health.rise * config.health.downIntervalMs <= 1000, 'rise × down interval within 1 s');
    lb = await startBalancer(config);
    const running = lb;
    await u.kill();
    const id = `127.0.0.1:${port}`;
    await waitFor(() => stateOf(id) === 'down', 5000, 'down after the kill');
    let probes = 0;
    const statesAtProbe: (string | undefined)[] = [];
    let upAfterProbes: number | undefined;
    running.balancer.registry.onChange(() => {
      if (upAfterProbes === undefined && stateOf(id) === 'up') upAfterProbes = probes;
    });
    u = await listenOn((req, res) => {
      if (req.url === '/healthz') {
        probes++;
        statesAtProbe.push(stateOf(id));
      }
      ok(req, res);
    }, port);
    await waitFor(() => stateOf(id) === 'up', 3000, 'back up');
    assert.equal(upAfterProbes, config.health.rise, `back on passing probe ${config.health.rise}, not later`);
    assert.deepEqual(statesAtProbe.slice(0, config.health.rise), ['down', 'down'], 'down until then');
  });

  describe('panic mode', () => {
    const wrongPath = ['--health-interval-ms', '50', '--health-fall', '1', '--health-path', '/nope'];
    const notFoundOnNope: Handler = (req, res) => {
      if (req.url === '/nope') res.writeHead(404, { 'content-length': 0 }).end();
      else ok(req, res);
    };

    it('when every upstream fails its checks, requests go to all of them; counted in /metrics and the snapshot', async () => {
      const a = await origin(notFoundOnNope);
      const b = await origin(notFoundOnNope);
      lb = await startBalancer(testConfig([a.port, b.port], {}, wrongPath));
      const running = lb;
      await waitFor(() => running.balancer.registry.list().every((u) => u.state === 'down'), 3000, 'every upstream down');
      for (let i = 0; i < 4; i++) assert.equal((await get(`${running.url}/x`)).status, 200);
      const metrics = parseMetrics(await (await request(`${running.adminUrl}/metrics`)).body.text());
      assert.equal(metrics.get('lb_panic_mode'), 1);
      assert.equal(metrics.get('lb_panic_requests_total'), 4);
      const snapshot = (await (await request(`${running.adminUrl}/api/upstreams`)).body.json()) as { panic: boolean };
      assert.equal(snapshot.panic, true);
    });

    it('--no-panic answers 503 LB_NO_UPSTREAM instead; one passing upstream ends panic', async () => {
      const a = await origin(notFoundOnNope);
      lb = await startBalancer(testConfig([a.port], {}, [...wrongPath, '--no-panic']));
      const running = lb;
      await waitFor(() => stateOf(a.id) === 'down', 3000, 'down');
      const r = await get(`${running.url}/x`);
      assert.equal(r.status, 503);
      assert.equal((JSON.parse(r.body) as { error: string }).error, 'LB_NO_UPSTREAM');
      assert.equal(running.balancer.registry.panicking(), false);
    });

    it('upstreams that refuse connections still fail fast in panic mode', async () => {
      const a = await listenOn(ok);
      const b = await listenOn(ok);
      lb = await startBalancer(testConfig([a.port, b.port], {}, ['--health-interval-ms', '50', '--health-fall', '1']));
      const running = lb;
      await a.kill();
      await b.kill();
      await waitFor(() => running.balancer.registry.list().every((u) => u.state === 'down'), 3000, 'every upstream down');
      const r = await request(`${running.url}/x`, { headersTimeout: 5000 });
      assert.equal(r.statusCode, 502);
      // Failed on the refused connection (LB_UPSTREAM_CONNECT), not on a timeout (LB_UPSTREAM_TIMEOUT).
      assert.equal(((await r.body.json()) as { error: string }).error, 'LB_UPSTREAM_CONNECT');
    });
  });

  describe('h2c', () => {
    it('Upgrade: h2c is refused (400) and never reaches an upstream; HTTP2-Settings is not forwarded', async () => {
      let upgrades = 0;
      let seen: IncomingHttpHeaders = {};
      const a = await origin((req, res) => {
        seen = req.headers;
        ok(req, res);
      });
      a.server.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
        upgrades++;
        socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
      });
      lb = await startBalancer(testConfig([a.port]));
      const port = lb.addresses.data.port;
      const answer = await new Promise<string>((resolve, reject) => {
        const s = connect(port, '127.0.0.1', () => {
          s.write('GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n');
        });
        let text = '';
        s.setEncoding('latin1').on('data', (c: string) => (text += c));
        s.on('end', () => {
          resolve(text);
        });
        s.on('error', reject);
      });
      assert.match(answer, /^HTTP\/1\.1 400 /);
      assert.match(answer, /LB_BAD_REQUEST/);
      assert.equal(upgrades, 0);
      // Without Connection: Upgrade it is an ordinary request: answered, h2c headers stripped.
      const r = await get(`${lb.url}/`, { upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQAAP__' });
      assert.equal(r.status, 200);
      assert.equal(seen.upgrade, undefined);
      assert.equal(seen['http2-settings'], undefined);
    });
  });

  describe('trust boundary for forwarded headers', () => {
    const spoofed = {
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'evil.test',
      forwarded: 'for=6.6.6.6;proto=https',
    };

    const echo = async (): Promise<{ origin: Origin; seen: () => IncomingHttpHeaders }> => {
      let seen: IncomingHttpHeaders = {};
      const o = await origin((req: IncomingMessage, res: ServerResponse) => {
        seen = req.headers;
        ok(req, res);
      });
      return { origin: o, seen: () => seen };
    };

    it('from an untrusted peer, spoofed X-Forwarded-* and Forwarded are replaced, not appended to', async () => {
      const { origin: o, seen } = await echo();
      lb = await startBalancer(testConfig([o.port], {}, ['--trusted-proxies', '10.0.0.0/8,fd00::/8']));
      await get(`${lb.url}/x`, { host: 'site.test', ...spoofed });
      assert.equal(seen()['x-forwarded-for'], '127.0.0.1');
      assert.equal(seen()['x-forwarded-proto'], 'http');
      assert.equal(seen()['x-forwarded-host'], 'site.test');
      assert.equal(seen().forwarded, 'for=127.0.0.1;proto=http;host=site.test');
    });

    it('from a trusted proxy they are kept and extended', async () => {
      const { origin: o, seen } = await echo();
      lb = await startBalancer(testConfig([o.port], {}, ['--trusted-proxies', '127.0.0.0/8']));
      await get(`${lb.url}/x`, { host: 'site.test', ...spoofed });
      assert.equal(seen()['x-forwarded-for'], '6.6.6.6, 127.0.0.1');
      assert.equal(seen()['x-forwarded-proto'], 'https');
      assert.equal(seen()['x-forwarded-host'], 'evil.test');
      assert.equal(seen().forwarded, 'for=6.6.6.6;proto=https, for=127.0.0.1;proto=http;host=site.test');
    });

    it('trust matches CIDRs, IPv4-mapped IPv6 peers included; nothing is trusted by default', () => {
      const check = createTrustCheck(['172.16.0.0/12', '::1/128']);
      assert.equal(check('172.20.0.4'), true);
      assert.equal(check('::ffff:172.20.0.4'), true);
      assert.equal(check('172.32.0.1'), false);
      assert.equal(check('::1'), true);
      assert.equal(check(undefined), false);
      assert.equal(createTrustCheck([])('127.0.0.1'), false);
      const out = upstreamRequestHeaders(['Host', 'h', 'X-Forwarded-For', '1.2.3.4'], { remoteAddress: '::1', proto: 'http', requestId: 'r', trusted: false });
      assert.deepEqual(out, ['Host', 'h', 'x-forwarded-for', '::1', 'x-forwarded-proto', 'http', 'x-forwarded-host', 'h', 'x-request-id', 'r']);
    });

    it('X-Upstream and X-Lb-Decision are sent only when asked (--expose-upstream, --explain)', async () => {
      const o = await origin(ok);
      lb = await startBalancer(testConfig([o.port]));
      const quiet = await get(`${lb.url}/x`);
      assert.equal(quiet.headers['x-upstream'], undefined);
      assert.equal(quiet.headers['x-lb-decision'], undefined);
      assert.ok(quiet.headers['x-request-id']);
      await lb.balancer.stop();
      lb = await startBalancer(testConfig([o.port], {}, ['--expose-upstream', '--explain']));
      const told = await get(`${lb.url}/x`);
      assert.equal(told.headers['x-upstream'], o.id);
      assert.match(String(told.headers['x-lb-decision']), /^chosen=/);
    });
  });
});
