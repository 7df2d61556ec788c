// The /api/events fan-out on mocked timers: its rate is a count of timer ticks, not of wall-clock
// time, so the test gives the same answer on a fast machine and on a loaded one.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { mock } from 'node:test';
import { createEventHub } from '../src/admin/event-hub.js';

/** Just enough of a ServerResponse for the hub: it records what is written. */
class FakeResponse extends EventEmitter {
  status = 0;
  text = '';
  ended = false;
  writableNeedDrain = false;
  writeHead(status: number): this {
    this.status = status;
    return this;
  }
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
  end(chunk?: string): this {
    if (chunk !== undefined) this.text += chunk;
    this.ended = true;
    return this;
  }
  frames(): number[] {
    return [...this.text.matchAll(/^data: (.*)$/gm)].map((m) => (JSON.parse(m[1] ?? 'null') as { n: number }).n);
  }
}

const asResponse = (res: FakeResponse): ServerResponse => res as unknown as ServerResponse;

describe('event hub (/api/events), on mocked timers', () => {
  beforeEach(() => {
    mock.timers.enable({ apis: ['setInterval'] });
  });
  afterEach(() => {
    mock.timers.reset();
  });

  it('sends a snapshot on attach, then one per interval: 10 per second at 100 ms', () => {
    let n = 0;
    const hub = createEventHub(() => ({ n: n++ }), 100);
    const res = new FakeResponse();
    hub.attach(asResponse(res));
    assert.equal(res.status, 200);
    assert.match(res.text, /^retry: 1000\nevent: snapshot\ndata: /);
    assert.deepEqual(res.frames(), [0]);
    mock.timers.tick(99);
    assert.deepEqual(res.frames(), [0], 'nothing before the interval has passed');
    mock.timers.tick(1);
    assert.deepEqual(res.frames(), [0, 1]);
    mock.timers.tick(900);
    assert.deepEqual(res.frames(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'ten more in the next second, fresh and in order');
    hub.stop();
    assert.ok(res.ended);
    mock.timers.tick(1000);
    assert.equal(res.frames().length, 11, 'nothing after stop()');
  });

  it('serialises one snapshot per tick for every listener; skips a listener that needs to drain; stops ticking when the last leaves', () => {
    let n = 0;
    const hub = createEventHub(() => ({ n: n++ }), 100);
    const a = new FakeResponse();
    const b = new FakeResponse();
    hub.attach(asResponse(a));
    hub.attach(asResponse(b));
    assert.equal(hub.listeners, 2);
    mock.timers.tick(100);
    assert.deepEqual(a.frames(), [0, 2]);
    assert.deepEqual(b.frames(), [1, 2], 'the same tick, the same snapshot');
    b.writableNeedDrain = true;
    mock.timers.tick(100);
    assert.deepEqual(a.frames(), [0, 2, 3]);
    assert.deepEqual(b.frames(), [1, 2], 'a slow client skips the tick');
    a.emit('close');
    b.emit('close');
    assert.equal(hub.listeners, 0);
    const before = n;
    mock.timers.tick(1000);
    assert.equal(n, before, 'no snapshots are made for nobody');
    hub.stop();
  });

  it('after stop(), a new listener gets 503 LB_SHUTTING_DOWN', () => {
    const hub = createEventHub(() => ({ n: 0 }), 100);
    hub.stop();
    const res = new FakeResponse();
    hub.attach(asResponse(res));
    assert.notEqual(res.status, 200);
    assert.ok(res.ended);
    assert.match(res.text, /LB_SHUTTING_DOWN/);
  });
});
