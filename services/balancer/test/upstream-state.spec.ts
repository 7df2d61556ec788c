import assert from 'node:assert/strict';
import { createDecisionLog } from '../src/decision-log.js';
import { createOutlierDetector } from '../src/health/outlier-detector.js';
import { takeSnapshot } from '../src/snapshot.js';
import { CounterTable } from '../src/upstreams/counters.js';
import type { Registry } from '../src/upstreams/registry.js';
import type { Upstream } from '../src/upstreams/upstream.js';
import type { HealthRules } from '../src/upstreams/verdicts.js';
import { testRegistry } from './helpers.js';

const RULES: HealthRules = { rise: 2, fall: 2, activeChecks: true, passiveFailures: 3, passiveWindowMs: 10_000, passiveDownMs: 50 };

function registryWith(ports: readonly number[], rules: HealthRules = RULES, capacity = 8): Registry {
  const registry = testRegistry({ rules, counters: CounterTable.create(capacity) });
  registry.sync('static', ports.map((port) => ({ host: '127.0.0.1', port, weight: 1 })));
  return registry;
}

function only(registry: Registry): Upstream {
  const [u] = registry.list();
  assert.ok(u);
  return u;
}

describe('upstream state has one owner: the registry', () => {
  it('an Upstream is read-only outside the registry: writing its state throws', async () => {
    const registry = registryWith([9101]);
    const u = only(registry);
    assert.throws(() => {
      // @ts-expect-error state has no setter: only the registry changes it (setState)
      u.state = 'down';
    }, TypeError);
    assert.throws(() => {
      // @ts-expect-error the probe count is the registry's (reportProbe)
      u.probeFailures = 5;
    }, TypeError);
    assert.equal(u.state, 'up');
    await registry.stop();
  });

  it('health probes are reported: the registry applies fall, then rise (and resets the counts on a change)', async () => {
    const registry = registryWith([9102]);
    const u = only(registry);
    registry.reportProbe(u, { ok: false, why: 'status 500', timedOut: false });
    assert.deepEqual([u.state, u.probeFailures], ['up', 1]);
    registry.reportProbe(u, { ok: false, why: 'status 500', timedOut: false });
    assert.deepEqual([u.state, u.probeFailures], ['down', 0]);
    registry.reportProbe(u, { ok: true });
    assert.equal(u.state, 'down');
    registry.reportProbe(u, { ok: true });
    assert.deepEqual([u.state, u.probeSuccesses], ['up', 0]);
    await registry.stop();
  });

  it('unresponsive: a down upstream whose probes time out, not one that answers them with a failure; a change while down is announced', async () => {
    const registry = registryWith([9104]);
    const u = only(registry);
    let changes = 0;
    registry.onChange(() => changes++);
    // A replica draining before it stops: it answers, so the requests it has are left to finish.
    registry.reportProbe(u, { ok: false, why: 'status 503', timedOut: false });
    registry.reportProbe(u, { ok: false, why: 'status 503', timedOut: false });
    assert.deepEqual([u.state, u.unresponsive], ['down', false]);
    const before = changes;
    registry.reportProbe(u, { ok: false, why: 'UND_ERR_HEADERS_TIMEOUT', timedOut: true });
    assert.deepEqual([u.state, u.unresponsive, changes], ['down', true, before + 1], 'went silent while down: the data path hears of it');
    registry.reportProbe(u, { ok: false, why: 'UND_ERR_HEADERS_TIMEOUT', timedOut: true });
    assert.equal(changes, before + 1, 'nothing new to announce');
    registry.reportProbe(u, { ok: true });
    assert.deepEqual([u.state, u.unresponsive], ['down', false]);
    await registry.stop();

    const passive = registryWith([9105, 9106], { ...RULES, passiveFailures: 1 });
    const [timedOut, refused] = passive.list();
    assert.ok(timedOut && refused);
    passive.reportFailure(timedOut, 'timeout');
    assert.deepEqual([timedOut.state, timedOut.unresponsive], ['down', true], 'ejected on a timeout');
    passive.reportFailure(refused, 'connect');
    assert.deepEqual([refused.state, refused.unresponsive], ['down', false], 'a refused connect: its probes tell whether it still answers');
    await passive.stop();
  });

  it('passive failures are reported: the registry ejects past the threshold, doubling; the detector only ends a timed ejection', async () => {
    const registry = registryWith([9103], { ...RULES, activeChecks: false });
    const u = only(registry);
    const outliers = createOutlierDetector(registry);
    outliers.recordFailure(u, 'reset');
    outliers.recordFailure(u, 'reset');
    assert.equal(u.state, 'up');
    outliers.recordFailure(u, 'timeout');
    assert.deepEqual([u.state, u.ejections], ['down', 1]);
    const until = u.ejectedUntil;
    assert.ok(until > Date.now() && until <= Date.now() + 50);
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal(u.state, 'up', 'the ejection timer brought it back');
    outliers.recordFailure(u, 'connect');
    assert.deepEqual([u.state, u.ejections], ['down', 2], 'a refused connect ejects at once, for twice as long');
    outliers.stop();
    await registry.stop();
  });

  it('a snapshot\'s available honours the cap: an up upstream at its max in-flight is not available', async () => {
    const registry = registryWith([9104, 9105]);
    const [a, b] = registry.list();
    assert.ok(a && b);
    registry.setMaxInFlight(a, 1);
    assert.equal(registry.acquire(a), true);
    const snap = takeSnapshot(registry, createDecisionLog(), { tieBreak: 'rotation', explain: false, instance: 'test', policy: 'least-connections' });
    assert.deepEqual(
      snap.upstreams.map((v) => [v.id, v.state, v.available]),
      [
        [a.id, 'up', false],
        [b.id, 'up', true],
      ],
    );
    registry.release(a);
    await registry.stop();
  });

  it('a slot is reused by a newcomer, its key never is: reports between threads name upstreams by key', async () => {
    const registry = registryWith([9106], RULES, 1);
    const old = only(registry);
    registry.sync('static', []);
    assert.equal(registry.list().length, 0, 'idle, so forgotten at once');
    registry.sync('static', [{ host: '127.0.0.1', port: 9107, weight: 1 }]);
    const newcomer = only(registry);
    assert.equal(newcomer.slot, old.slot, 'one slot: the newcomer reuses it');
    assert.notEqual(newcomer.key, old.key);
    await registry.stop();
  });
});
