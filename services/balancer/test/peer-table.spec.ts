import assert from 'node:assert/strict';
import { createPeerTable, MAX_PEERS } from '../src/peers/peer-table.js';
import type { Report } from '../src/peers/report.js';

const SELF = 'ffffffffffffffff';
const report = (from: string, seq: number, counts: Record<string, number>): Report => ({ from, seq, inFlight: new Map(Object.entries(counts)) });
const sums = (m: ReadonlyMap<string, number>) => Object.fromEntries(m);

describe('the peer table', () => {
  it('believes only known addresses, and only newer reports of a sender', () => {
    const table = createPeerTable(SELF, 100);
    table.setAddresses(['10.0.0.2:9001']);
    assert.equal(table.receive('10.0.0.9:9001', report('00000000000000a1', 1, { x: 5 }), 0), 'unknown_sender');
    assert.equal(table.receive('10.0.0.2:9001', report('00000000000000a2', 2, { x: 1 }), 0), 'accepted');
    assert.equal(table.receive('10.0.0.2:9001', report('00000000000000a2', 2, { x: 9 }), 1), 'stale');
    assert.equal(table.receive('10.0.0.2:9001', report('00000000000000a2', 1, { x: 9 }), 1), 'stale');
    assert.deepEqual(sums(table.inFlight(1)), { x: 1 });
  });

  it('its own report marks its address as self: no longer a target, not shown, never counted', () => {
    const table = createPeerTable(SELF, 100);
    table.setAddresses(['10.0.0.1:9001', '10.0.0.2:9001']);
    assert.deepEqual(table.targets(), ['10.0.0.1:9001', '10.0.0.2:9001']);
    assert.equal(table.receive('10.0.0.1:9001', report(SELF, 1, { x: 4 }), 0), 'self');
    assert.deepEqual(table.targets(), ['10.0.0.2:9001']);
    assert.deepEqual(table.view(0).map((p) => p.address), ['10.0.0.2:9001']);
    assert.deepEqual(sums(table.inFlight(0)), {});
    // Still self after the next resolution gives the same answer.
    table.setAddresses(['10.0.0.2:9001', '10.0.0.1:9001']);
    assert.deepEqual(table.targets(), ['10.0.0.2:9001']);
  });

  it('dropped after the timeout, live again with its next report; ages are shown', () => {
    const table = createPeerTable(SELF, 100);
    table.setAddresses(['10.0.0.2:9001', '10.0.0.3:9001']);
    table.receive('10.0.0.2:9001', report('00000000000000a2', 1, { x: 2, y: 1 }), 1000);
    table.receive('10.0.0.3:9001', report('00000000000000a3', 1, { x: 3 }), 1050);
    assert.deepEqual(sums(table.inFlight(1100)), { x: 5, y: 1 });
    assert.deepEqual(table.view(1101), [
      { address: '10.0.0.2:9001', id: '00000000000000a2', ageMs: 101, state: 'dropped', dataUrl: null, adminUrl: null },
      { address: '10.0.0.3:9001', id: '00000000000000a3', ageMs: 51, state: 'live', dataUrl: null, adminUrl: null },
    ]);
    assert.deepEqual(sums(table.inFlight(1101)), { x: 3 });
    table.receive('10.0.0.2:9001', report('00000000000000a2', 2, { y: 4 }), 1120);
    assert.deepEqual(sums(table.inFlight(1120)), { x: 3, y: 4 });
  });

  it('a never-heard peer is listed as dropped with no age', () => {
    const table = createPeerTable(SELF, 100);
    table.setAddresses(['10.0.0.2:9001']);
    assert.deepEqual(table.view(5), [{ address: '10.0.0.2:9001', id: null, ageMs: null, state: 'dropped', dataUrl: null, adminUrl: null }]);
  });

  it('a report that names its ports gives the peer\'s data and admin URLs at the host it came from (IPv6 in brackets)', () => {
    const table = createPeerTable(SELF, 100);
    table.setAddresses(['10.0.0.2:9001', '[fd00::3]:9001']);
    table.receive('10.0.0.2:9001', { ...report('00000000000000a2', 1, {}), ports: { data: 8001, admin: 9002 } }, 0);
    table.receive('[fd00::3]:9001', { ...report('00000000000000a3', 1, {}), ports: { data: 8003, admin: 9003 } }, 0);
    const [v4, v6] = table.view(1);
    assert.ok(v4 && v6);
    assert.equal(v4.dataUrl, 'http://10.0.0.2:8001');
    assert.equal(v4.adminUrl, 'http://10.0.0.2:9002');
    assert.equal(v6.dataUrl, 'http://[fd00::3]:8003');
    assert.equal(v6.adminUrl, 'http://[fd00::3]:9003');
  });

  it('a restarted peer (new instance id at the same address) replaces its predecessor at once', () => {
    const table = createPeerTable(SELF, 100);
    table.setAddresses(['10.0.0.2:9001']);
    table.receive('10.0.0.2:9001', report('00000000000000a2', 900, { x: 7 }), 0);
    assert.equal(table.receive('10.0.0.2:9001', report('00000000000000b2', 1, { x: 1 }), 10), 'accepted');
    assert.deepEqual(sums(table.inFlight(10)), { x: 1 });
  });

  it('one balancer reached at two addresses counts once', () => {
    const table = createPeerTable(SELF, 100);
    table.setAddresses(['10.0.0.2:9001', '10.1.0.2:9001']);
    table.receive('10.0.0.2:9001', report('00000000000000a2', 1, { x: 2 }), 0);
    assert.equal(table.receive('10.1.0.2:9001', report('00000000000000a2', 1, { x: 2 }), 0), 'stale', 'the same report by another way');
    table.receive('10.1.0.2:9001', report('00000000000000a2', 2, { x: 3 }), 1);
    assert.deepEqual(sums(table.inFlight(1)), { x: 3 });
  });

  it('an address that leaves the peer list stops counting at once; the list is bounded', () => {
    const table = createPeerTable(SELF, 100);
    table.setAddresses(['10.0.0.2:9001']);
    table.receive('10.0.0.2:9001', report('00000000000000a2', 1, { x: 2 }), 0);
    table.setAddresses([]);
    assert.deepEqual(sums(table.inFlight(0)), {});
    assert.deepEqual(table.view(0), []);
    table.setAddresses(Array.from({ length: MAX_PEERS + 10 }, (_, i) => `10.0.${i >> 8}.${i & 255}:9001`));
    assert.equal(table.targets().length, MAX_PEERS);
  });
});
