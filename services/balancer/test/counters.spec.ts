import assert from 'node:assert/strict';
import { pino } from 'pino';
import { CounterTable } from '../src/upstreams/counters.js';
import { createRegistry } from '../src/upstreams/registry.js';

describe('CounterTable: the shared counts every data-path thread reads', () => {
  it('a cap holds: acquire fails at max in-flight and succeeds again after a release', () => {
    const t = CounterTable.create(4, 1);
    const slot = t.allocate();
    assert.equal(t.tryAcquire(slot, 2), true);
    assert.equal(t.tryAcquire(slot, 2), true);
    assert.equal(t.tryAcquire(slot, 2), false);
    assert.equal(t.inFlight(slot), 2);
    assert.equal(t.releaseOne(slot), 1);
    assert.equal(t.tryAcquire(slot, 2), true);
    assert.equal(t.tryAcquire(slot, 0), true, '0 = no cap');
    assert.equal(t.inFlight(slot), 3);
  });

  it('another thread attached to the same buffers sees and changes the same in-flight cells', () => {
    const owner = CounterTable.create(4, 2);
    const other = new CounterTable(owner.buffers, 1);
    const slot = owner.allocate();
    assert.equal(other.tryAcquire(slot, 1), true);
    assert.equal(owner.tryAcquire(slot, 1), false, 'the other thread holds the only place');
    other.releaseOne(slot);
    assert.equal(owner.inFlight(slot), 0);
  });

  it('request and error statistics are per-writer rows that readers sum', () => {
    const owner = CounterTable.create(4, 3);
    const w1 = new CounterTable(owner.buffers, 1);
    const w2 = new CounterTable(owner.buffers, 2);
    const slot = owner.allocate();
    owner.countUpstreamRequest(slot);
    w1.countUpstreamRequest(slot);
    w2.countUpstreamRequest(slot);
    w2.countUpstreamError(slot);
    w1.countRequest(200);
    w2.countRequest(503);
    assert.equal(owner.upstreamRequests(slot), 3);
    assert.equal(w1.upstreamErrors(slot), 1);
    assert.deepEqual(owner.totals(), { requests: 2, errors: 1 });
    assert.throws(() => new CounterTable(owner.buffers, 3), RangeError);
  });

  it('the tie-break turn is one sequence for every thread', () => {
    const owner = CounterTable.create(4, 2);
    const other = new CounterTable(owner.buffers, 1);
    assert.deepEqual([owner.nextTurn(), other.nextTurn(), owner.nextTurn()], [0, 1, 2]);
  });

  it('a reused slot starts from zero; past capacity allocate throws', () => {
    const t = CounterTable.create(2, 1);
    const a = t.allocate();
    const b = t.allocate();
    assert.throws(() => t.allocate(), /more than 2 upstreams/);
    t.tryAcquire(a, 0);
    t.countUpstreamRequest(a);
    t.releaseOne(a);
    t.release(a);
    const c = t.allocate();
    assert.equal(c, a);
    assert.equal(t.upstreamRequests(c), 0);
    assert.notEqual(b, c);
  });

  it('nextRelease resolves on a release by anyone, and on its timeout without one', async () => {
    const owner = CounterTable.create(4, 2);
    const other = new CounterTable(owner.buffers, 1);
    const slot = owner.allocate();
    other.tryAcquire(slot, 0);
    // An hour's timeout: only the release can end this wait within the test's own timeout.
    const woken = owner.nextRelease(3_600_000);
    other.releaseOne(slot);
    await woken;
    await owner.nextRelease(5); // nobody releases: the timeout ends the wait
  });

  it('a registry with more upstreams than slots logs the ones it leaves out and keeps the rest', () => {
    const logs: { msg: string; upstream?: string }[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => logs.push(JSON.parse(line) as { msg: string }) });
    const registry = createRegistry({
      logger,
      initialState: () => 'up',
      maxInFlight: 0,
      slowStartMs: 0,
      undrainedState: 'up',
      pool: { connectTimeoutMs: 100, headersTimeoutMs: 100, bodyTimeoutMs: 100, keepAliveTimeoutMs: 100, connections: null },
      counters: CounterTable.create(2, 1),
    });
    registry.sync('static', [1, 2, 3].map((n) => ({ host: '127.0.0.1', port: 9000 + n, weight: 1 })));
    assert.deepEqual(registry.list().map((u) => u.id), ['127.0.0.1:9001', '127.0.0.1:9002']);
    assert.deepEqual(logs.map((l) => [l.msg, l.upstream]), [['upstream not added: no free counter slot', '127.0.0.1:9003']]);
    void registry.stop();
  });
});
