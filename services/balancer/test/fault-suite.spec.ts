import assert from 'node:assert/strict';
import { request } from 'undici';
import { startBalancer, startOrigin, testConfig, waitFor } from './helpers.js';
import type { Origin, Running } from './helpers.js';

type Mode = 'ok' | 'hang' | 'reset' | 'garbage';

/** A fake upstream whose behaviour the test switches while traffic flows. */
async function faulty(name: string): Promise<{ origin: Origin; mode: { value: Mode } }> {
  const mode = { value: 'ok' as Mode };
  const origin = await startOrigin((req, res) => {
    const m = req.url === '/healthz' && mode.value !== 'hang' ? (mode.value === 'ok' ? 'ok' : 'reset') : mode.value;
    switch (m) {
      case 'ok':
        res.writeHead(200, { 'content-type': 'text/plain' }).end(name);
        return;
      case 'hang':
        return; // never answers
      case 'reset':
        req.socket.destroy();
        return;
      case 'garbage':
        req.socket.end('HTTP/1.1 ??? not http at all\r\n\r\n');
        return;
    }
  });
  return { origin, mode };
}

describe('fault suite: upstreams killed, hung, reset, closing keep-alives and answering garbage under steady traffic', function () {
  this.timeout(60_000);
  let lb: Running | undefined;
  const origins: Origin[] = [];
  after(async () => {
    await lb?.balancer.stop();
    await Promise.all(origins.map((o) => o.close()));
  });

  it('loses no idempotent request and brings every count back to 0', async () => {
    const upstreams = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((n) => faulty(n)));
    origins.push(...upstreams.map((u) => u.origin));
    // `e` closes idle keep-alive sockets almost at once: the classic stale-socket race.
    const e = upstreams[4];
    assert.ok(e);
    e.origin.server.keepAliveTimeout = 1;
    lb = await startBalancer(
      testConfig(upstreams.map((u) => u.origin.port), {
        headersTimeoutMs: 300,
        retries: 3,
        // Short ejections so that the recovered upstreams are seen back within the test.
        passiveDownMs: 300,
        health: { path: '/healthz', intervalMs: 100, downIntervalMs: 100, timeoutMs: 200, maxBodyBytes: 65536, rise: 2, fall: 1 },
      }),
    );
    const running = lb;

    const total = 1500;
    const concurrency = 8;
    let sent = 0;
    let failed = 0;
    const failures: string[] = [];
    const worker = async (): Promise<void> => {
      while (sent < total) {
        sent++;
        try {
          const res = await request(`${running.url}/img`);
          const text = await res.body.text();
          if (res.statusCode !== 200) {
            failed++;
            failures.push(`${res.statusCode} ${text}`);
          }
        } catch (err) {
          failed++;
          failures.push(String(err));
        }
      }
    };
    const [a, b, c, d] = upstreams;
    assert.ok(a && b && c && d);
    const faults = (async () => {
      await waitFor(() => sent >= 150, 20_000);
      a.mode.value = 'reset';
      await waitFor(() => sent >= 300, 20_000);
      b.mode.value = 'hang';
      await waitFor(() => sent >= 450, 20_000);
      await c.origin.close(); // killed
      await waitFor(() => sent >= 600, 20_000);
      d.mode.value = 'garbage';
      await waitFor(() => sent >= 900, 20_000);
      a.mode.value = 'ok'; // recovers
      d.mode.value = 'ok';
    })();
    await Promise.all([...Array.from({ length: concurrency }, worker), faults]);

    const metrics = await (await request(`${running.adminUrl}/metrics`)).body.text();
    const retried = Number(/^lb_retries_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    const refused = Number(/^lb_retry_budget_exhausted_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    console.log(`      sent ${total}, failed ${failed}, retried ${retried}, budget refusals ${refused}`);
    assert.equal(failed, 0, failures.slice(0, 5).join('\n'));
    await waitFor(() => running.balancer.registry.inFlight() === 0, 5000, 'every count back to 0');
    for (const u of running.balancer.registry.list()) assert.equal(u.inFlight, 0, u.id);
    // The recovered upstreams are back in rotation; the dead and the hung one are not.
    await waitFor(() => running.balancer.registry.get(a.origin.id)?.state === 'up', 5000, 'a back up');
    assert.equal(running.balancer.registry.get(c.origin.id)?.state, 'down');
    assert.equal(running.balancer.registry.get(b.origin.id)?.state, 'down');
  });
});
