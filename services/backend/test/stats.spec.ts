import assert from 'node:assert/strict';
import { createStats } from '../src/stats.js';

describe('createStats', () => {
  it('counts in-flight requests, each released once however often release is called', () => {
    const stats = createStats(() => 0);
    const first = stats.begin();
    const second = stats.begin();
    assert.equal(stats.inFlight, 2);
    first();
    first();
    assert.equal(stats.inFlight, 1);
    second();
    assert.equal(stats.inFlight, 0);
  });

  it('counts served images and uptime from its own clock', () => {
    let clock = 500;
    const stats = createStats(() => clock);
    stats.countServed();
    stats.countServed();
    clock += 1500;
    assert.equal(stats.served, 2);
    assert.equal(stats.uptimeSeconds(), 1.5);
  });

  it('resolves whenIdle at once when idle, else when the last request ends', async () => {
    const stats = createStats();
    await stats.whenIdle();
    const a = stats.begin();
    const b = stats.begin();
    let idle = false;
    const waiting = stats.whenIdle().then(() => {
      idle = true;
    });
    a();
    await Promise.resolve();
    assert.equal(idle, false, 'one request is still in flight');
    b();
    await waiting;
    assert.equal(idle, true);
  });
});
