import assert from 'node:assert/strict';
import { describePeers } from '../src/peers.js';

describe('the footer\'s peers line', () => {
  it('none without peers', () => {
    const line = describePeers([]);
    assert.equal(line.text, 'none');
    assert.equal(line.degraded, false);
  });

  it('each peer by host with the age of its latest report; a dropped one says so and marks the line', () => {
    const line = describePeers([
      { address: '172.18.0.7:9001', ageMs: 12.4, state: 'live' },
      { address: '[fd00::8]:9001', ageMs: 480, state: 'dropped' },
      { address: '172.18.0.9:9001', ageMs: null, state: 'dropped' },
    ]);
    assert.equal(line.text, '172.18.0.7 12 ms · [fd00::8] dropped · 172.18.0.9 dropped');
    assert.equal(line.title, '172.18.0.7:9001: live, latest report 12 ms ago\n[fd00::8]:9001: dropped, latest report 480 ms ago\n172.18.0.9:9001: dropped, latest report never heard');
    assert.equal(line.degraded, true);
  });

  it('all live: not degraded', () => {
    assert.equal(describePeers([{ address: '10.0.0.2:9001', ageMs: 3, state: 'live' }]).degraded, false);
  });
});
