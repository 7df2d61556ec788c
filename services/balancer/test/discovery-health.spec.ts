import assert from 'node:assert/strict';
import { request } from 'undici';
import { captureLogger, namedHandler, startBalancer, startOrigin, stopAfterEach, testConfig, waitFor } from './helpers.js';
import type { Origin, Running } from './helpers.js';

const stateOf = (lb: Running, id: string) => lb.balancer.registry.get(id)?.state;

describe('DNS discovery and health checks', () => {
  let origins: Origin[] = [];
  let lb: Running | undefined;
  stopAfterEach(() => ({ lb, origins }));

  it('adds discovered addresses only after their health probe passes, and drops vanished ones', async () => {
    // All origins listen on 127.0.0.x with the same port, like replicas of one Compose service.
    const a = await startOrigin(namedHandler('a'));
    origins = [a];
    let addresses = ['127.0.0.1'];
    lb = await startBalancer(
      testConfig([], { discovery: { name: 'backend', port: a.port, intervalMs: 100 }, health: { path: '/healthz', intervalMs: 100, downIntervalMs: 100, timeoutMs: 500, maxBodyBytes: 65536, rise: 2, fall: 2 } }),
      { resolve: (name) => (name === 'backend' ? Promise.resolve(addresses) : Promise.reject(new Error('unexpected name'))) },
    );
    const running = lb;
    assert.ok(['unproven', 'up'].includes(stateOf(running, a.id) ?? ''));
    await waitFor(() => stateOf(running, a.id) === 'up', 3000, 'first probe to pass');
    // A new address that does not accept connections yet stays out of rotation.
    addresses = ['127.0.0.1', '127.0.0.2'];
    const b = `127.0.0.2:${a.port}`;
    await waitFor(() => stateOf(running, b) !== undefined, 3000, 'new address discovered');
    for (let i = 0; i < 5; i++) {
      const res = await request(`${running.url}/x`);
      assert.equal(await res.body.text(), 'a');
      assert.equal(stateOf(running, b), 'unproven');
    }
    // The address disappears from DNS: gone from the registry.
    addresses = ['127.0.0.1'];
    await waitFor(() => stateOf(running, b) === undefined, 3000, 'vanished address removed');
  });

  it('listens only once its first probes ended: the first request after a (re)start is served, not 503', async () => {
    // A slow /healthz stretches the window in which a balancer that listened at once would have
    // had only unproven upstreams (what nginx saw right after `docker compose restart balancer`).
    const a = await startOrigin((req, res) => {
      if (req.url === '/healthz') setTimeout(() => res.writeHead(200).end('ok'), 150);
      else res.writeHead(200).end('a');
    });
    origins = [a];
    lb = await startBalancer(
      testConfig([], { discovery: { name: 'backend', port: a.port, intervalMs: 1000 }, health: { path: '/healthz', intervalMs: 1000, downIntervalMs: 250, timeoutMs: 500, maxBodyBytes: 65536, rise: 2, fall: 2 } }),
      { resolve: () => Promise.resolve(['127.0.0.1']) },
    );
    assert.equal(stateOf(lb, a.id), 'up', 'proven before start() resolved');
    const res = await request(`${lb.url}/first`);
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'a');
  });

  it('lets a vanished upstream finish its in-flight requests', async () => {
    const held: (() => void)[] = [];
    const a = await startOrigin((req, res) => {
      if (req.url === '/hold') held.push(() => res.writeHead(200).end('done'));
      else res.writeHead(200).end('ok');
    });
    origins = [a];
    let addresses = ['127.0.0.1'];
    lb = await startBalancer(testConfig([], { discovery: { name: 'backend', port: a.port, intervalMs: 50 } }), {
      resolve: () => Promise.resolve(addresses),
    });
    const running = lb;
    await waitFor(() => stateOf(running, a.id) === 'up');
    const pending = request(`${running.url}/hold`).then((r) => r.body.text());
    await waitFor(() => held.length === 1);
    addresses = [];
    await waitFor(() => stateOf(running, a.id) === 'draining', 2000, 'draining');
    const refused = await request(`${running.url}/new`);
    assert.equal(refused.statusCode, 503, 'a draining upstream takes no new request');
    await refused.body.text();
    held[0]?.();
    assert.equal(await pending, 'done');
    await waitFor(() => stateOf(running, a.id) === undefined, 2000, 'removed once idle');
  });

  it('keeps the last known upstreams when DNS fails transiently (the failing lookups did happen, and are logged)', async () => {
    const a = await startOrigin(namedHandler('a'));
    origins = [a];
    let fail = false;
    const calls = { ok: 0, failed: 0 };
    const log = captureLogger();
    lb = await startBalancer(testConfig([], { discovery: { name: 'backend', port: a.port, intervalMs: 30 } }), {
      logger: log.logger,
      resolve: (name) => {
        assert.equal(name, 'backend');
        if (!fail) {
          calls.ok++;
          return Promise.resolve(['127.0.0.1']);
        }
        calls.failed++;
        return Promise.reject(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' }));
      },
    });
    const running = lb;
    await waitFor(() => stateOf(running, a.id) === 'up');
    fail = true;
    // Several lookups fail in a row (not merely time passing): the upstream stays, and serves.
    await waitFor(() => calls.failed >= 5, 3000, 'five failed DNS lookups');
    assert.equal(stateOf(running, a.id), 'up');
    const res = await request(`${running.url}/during-dns-outage`);
    assert.equal(await res.body.text(), 'a');
    // Logged once for the outage (not once per lookup), with the name and the error code.
    const warnings = log.lines().filter((l) => l.msg === 'DNS discovery failed; keeping the last known upstreams');
    assert.equal(warnings.length, 1, JSON.stringify(log.lines()));
    assert.equal(warnings[0]?.code, 'ETIMEOUT');
    assert.equal(warnings[0].name, 'backend');
    // And DNS coming back is noticed (a lookup succeeds again and says so).
    const okBefore = calls.ok;
    fail = false;
    await waitFor(() => calls.ok > okBefore && log.lines().some((l) => l.msg === 'DNS discovery resolves again'), 3000, 'DNS to resolve again');
    assert.equal(stateOf(running, a.id), 'up');
  });

  it('marks an upstream down after `fall` failed probes and up after `rise` good ones', async () => {
    let healthy = true;
    const a = await startOrigin((req, res) => {
      if (req.url === '/healthz') res.writeHead(healthy ? 200 : 500).end();
      else res.writeHead(200).end('a');
    });
    const b = await startOrigin(namedHandler('b'));
    origins = [a, b];
    lb = await startBalancer(testConfig([a.port, b.port], { health: { path: '/healthz', intervalMs: 50, downIntervalMs: 50, timeoutMs: 500, maxBodyBytes: 65536, rise: 2, fall: 2 } }));
    const running = lb;
    assert.equal(stateOf(running, a.id), 'up');
    healthy = false;
    await waitFor(() => stateOf(running, a.id) === 'down', 3000, 'down');
    for (let i = 0; i < 4; i++) assert.equal(await (await request(`${running.url}/`)).body.text(), 'b');
    const metrics = await (await request(`${running.adminUrl}/metrics`)).body.text();
    assert.match(metrics, new RegExp(`lb_upstream_healthy\\{upstream="${a.id}"\\} 0`));
    healthy = true;
    await waitFor(() => stateOf(running, a.id) === 'up', 3000, 'up again');
  });

  it('without active checks, ejects an upstream that refused a connection, then tries it again', async () => {
    const a = await startOrigin(namedHandler('a'));
    const b = await startOrigin(namedHandler('b'));
    origins = [a, b];
    lb = await startBalancer(testConfig([a.port, b.port], { passiveDownMs: 200 }));
    const running = lb;
    await b.close();
    origins = [a];
    // The refused attempt is retried on `a`, and `b` leaves the rotation at once.
    for (let i = 0; i < 4; i++) assert.equal(await (await request(`${running.url}/`)).body.text(), 'a');
    assert.equal(stateOf(running, b.id), 'down');
    await waitFor(() => stateOf(running, b.id) === 'up', 2000, 'passive ejection to end');
  });

  it('stop() lets in-flight requests finish and refuses new connections meanwhile', async () => {
    const held: (() => void)[] = [];
    const a = await startOrigin((_req, res) => {
      held.push(() => res.writeHead(200).end('finished'));
    });
    origins = [a];
    lb = await startBalancer(testConfig([a.port]));
    const running = lb;
    const pending = request(`${running.url}/slow`).then((r) => r.body.text());
    await waitFor(() => held.length === 1);
    const stopping = running.balancer.stop();
    await assert.rejects(request(`${running.url}/new`, { reset: true }), /ECONNREFUSED/);
    const ready = await request(`${running.adminUrl}/readyz`).catch((err: unknown) => err);
    assert.ok(ready instanceof Error, 'admin closed too');
    held[0]?.();
    assert.equal(await pending, 'finished');
    await stopping;
    await running.balancer.stop(); // idempotent
    lb = undefined;
  });
});
