import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { createBalancer } from '../src/server.js';
import type { Balancer } from '../src/server.js';
import { captureLogger, parseMetrics, startOrigin, testConfig, testRegistry, waitFor } from './helpers.js';
import type { LogLine, Origin } from './helpers.js';

const isPanicWarning = (line: LogLine): boolean => line.msg?.startsWith('panic mode:') === true;

/** lb_panic_mode, the snapshot's panic and the registry's, which must agree. */
async function panicFlags(balancer: Balancer): Promise<{ metric: number | undefined; snapshot: boolean; registry: boolean }> {
  const metrics = parseMetrics(await balancer.metrics.registry.metrics());
  return { metric: metrics.get('lb_panic_mode'), snapshot: balancer.snapshot().panic, registry: balancer.registry.panicking() };
}

describe('panic mode waits for the first health-probe round', () => {
  let origin: Origin | undefined;
  let balancer: Balancer | undefined;
  let started: Promise<unknown> | undefined;
  /** Health probes the origin holds until answerProbes(). */
  let probes: ServerResponse[] = [];
  let holding = true;
  /** The status the origin's /healthz answers with once it no longer holds probes. */
  let healthStatus = 200;

  beforeEach(async () => {
    probes = [];
    holding = true;
    healthStatus = 200;
    origin = await startOrigin((req, res) => {
      if (req.url !== '/healthz') res.writeHead(200).end('ok');
      else if (holding) probes.push(res);
      else res.writeHead(healthStatus).end();
    });
  });
  afterEach(async () => {
    holding = false;
    for (const res of probes.splice(0)) res.writeHead(healthStatus).end();
    // A balancer stopped while it starts would still listen once its first round ends.
    await started?.catch(() => undefined);
    started = undefined;
    await balancer?.stop();
    balancer = undefined;
    await origin?.close();
  });

  /** A balancer that discovers the origin by DNS (so it starts unproven), probing every 50 ms. */
  const create = (o: Origin, logger: ReturnType<typeof captureLogger>['logger']): Balancer =>
    createBalancer(
      testConfig([], {}, ['--discovery-dns', 'backend', '--discovery-port', String(o.port), '--discovery-interval-ms', '60000', '--health-interval-ms', '50', '--health-down-interval-ms', '50', '--health-fall', '1']),
      { logger, resolve: () => Promise.resolve(['127.0.0.1']) },
    );

  /** Answers every held probe with `status`, and every later one at once. */
  const answerProbes = (status: number): void => {
    holding = false;
    healthStatus = status;
    for (const res of probes.splice(0)) res.writeHead(status).end();
  };

  it('no warning and no panic flag while the first probes run; none after them when the upstreams pass; a later all-down still warns', async () => {
    const o = origin;
    assert.ok(o);
    const log = captureLogger();
    const lb = create(o, log.logger);
    balancer = lb;
    started = lb.start();
    await waitFor(() => probes.length === 1, 5000, 'the first probe held at the origin');
    assert.equal(lb.registry.get(o.id)?.state, 'unproven', 'discovered, not probed yet');
    assert.deepEqual(await panicFlags(lb), { metric: 0, snapshot: false, registry: false });
    assert.deepEqual(log.lines().filter(isPanicWarning), [], 'no panic warning before the first round ended');

    answerProbes(200);
    await started;
    assert.equal(lb.registry.get(o.id)?.state, 'up');
    assert.deepEqual(log.lines().filter((l) => l.msg?.startsWith('panic mode') === true), [], 'neither a warning nor "panic mode over"');

    // After the first round, every upstream failing its checks is panic mode as before.
    healthStatus = 503;
    await waitFor(() => lb.registry.get(o.id)?.state === 'down', 5000, 'the upstream down');
    assert.equal(log.lines().filter(isPanicWarning).length, 1);
    assert.deepEqual(await panicFlags(lb), { metric: 1, snapshot: true, registry: true });
  });

  it('upstreams that all fail their first probe: the warning and the flag come when the round ends, not before', async () => {
    const o = origin;
    assert.ok(o);
    const log = captureLogger();
    const lb = create(o, log.logger);
    balancer = lb;
    started = lb.start();
    await waitFor(() => probes.length === 1, 5000, 'the first probe held at the origin');
    assert.deepEqual(log.lines().filter(isPanicWarning), [], 'no panic warning before the first round ended');
    assert.deepEqual(await panicFlags(lb), { metric: 0, snapshot: false, registry: false });

    answerProbes(503);
    await started;
    const warnings = log.lines().filter(isPanicWarning);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.deepEqual(warnings[0]?.upstreams, [o.id]);
    assert.deepEqual(await panicFlags(lb), { metric: 1, snapshot: true, registry: true });
  });

  it('the registry alone: unproven upstreams are not panic until firstProbeRoundOver(), then are', async () => {
    const log = captureLogger();
    const registry = testRegistry({ panic: true, initialState: () => 'unproven', logger: log.logger });
    try {
      registry.sync('dns', [{ host: '127.0.0.1', port: 1, weight: 1 }]);
      assert.equal(registry.panicking(), false);
      assert.equal(registry.available().length, 1, 'still what the data path may pick from, as before');
      assert.deepEqual(log.lines().filter(isPanicWarning), []);
      registry.firstProbeRoundOver();
      assert.equal(registry.panicking(), true);
      assert.equal(log.lines().filter(isPanicWarning).length, 1);
    } finally {
      await registry.stop();
    }
  });
});
