import assert from 'node:assert/strict';
import { decodeReport, encodeReport, MAX_REPORT_BYTES, MAX_REPORTED_IN_FLIGHT } from '../src/peers/report.js';

const ID = '0123456789abcdef';

describe('peer reports on the wire', () => {
  it('round-trips the non-zero counts; zeros are left out (absent = none in flight)', () => {
    const { bytes, left } = encodeReport(ID, 7, [['10.0.0.5:8002', 3], ['10.0.0.6:8002', 0], ['[fd00::1]:8002', 1]]);
    assert.equal(left, 0);
    const report = decodeReport(bytes);
    assert.ok(typeof report !== 'string');
    assert.equal(report.from, ID);
    assert.equal(report.seq, 7);
    assert.deepEqual([...report.inFlight], [['10.0.0.5:8002', 3], ['[fd00::1]:8002', 1]]);
  });

  it('a report over the size limit keeps the largest counts that fit and says how many were left out', () => {
    const many = Array.from({ length: 1000 }, (_, i) => [`host-number-${String(i).padStart(4, '0')}.example:8002`, 1 + (i % 50)] as const);
    const { bytes, left } = encodeReport(ID, 1, many, { data: 65_535, admin: 65_535 });
    assert.ok(bytes.length <= MAX_REPORT_BYTES, `${bytes.length} bytes`);
    assert.ok(left > 0);
    const report = decodeReport(bytes);
    assert.ok(typeof report !== 'string');
    assert.equal(report.inFlight.size + left, many.length);
    assert.deepEqual(report.ports, { data: 65_535, admin: 65_535 }, 'the ports survive the trimming');
    const smallestKept = Math.min(...report.inFlight.values());
    const largestLeft = Math.max(...many.filter(([id]) => !report.inFlight.has(id)).map(([, n]) => n));
    assert.ok(smallestKept >= largestLeft, `kept down to ${smallestKept}, left out up to ${largestLeft}`);
  });

  it('counts above the believable maximum are sent as that maximum (the receiver refuses more)', () => {
    const report = decodeReport(encodeReport(ID, 1, [['a:1', MAX_REPORTED_IN_FLIGHT * 5]]).bytes);
    assert.ok(typeof report !== 'string');
    assert.equal(report.inFlight.get('a:1'), MAX_REPORTED_IN_FLIGHT);
  });

  it('anything else is a defect, never an exception', () => {
    const text = (s: string) => new TextEncoder().encode(s);
    assert.equal(decodeReport(new Uint8Array(MAX_REPORT_BYTES + 1)), 'too_large');
    for (const bad of ['', '{', '1', '"x"', '{"v":1}', `{"v":1,"from":"${ID}","seq":1.5,"inFlight":{}}`, `{"v":1,"from":"${ID.toUpperCase()}","seq":1,"inFlight":{}}`, `{"v":1,"from":"${ID}","seq":1,"inFlight":{"":1}}`, `{"v":1,"from":"${ID}","seq":1,"inFlight":null}`]) {
      assert.equal(decodeReport(text(bad)), 'malformed', bad);
    }
    assert.equal(decodeReport(new Uint8Array([0xc3, 0x28])), 'malformed', 'invalid UTF-8');
  });

  it('the sender\'s data and admin ports travel when given; a report without them (an older balancer) is as valid as before', () => {
    const withPorts = decodeReport(encodeReport(ID, 3, [['a:1', 2]], { data: 8001, admin: 9001 }).bytes);
    assert.ok(typeof withPorts !== 'string');
    assert.deepEqual(withPorts.ports, { data: 8001, admin: 9001 });
    assert.deepEqual([...withPorts.inFlight], [['a:1', 2]]);
    const old = decodeReport(new TextEncoder().encode(`{"v":1,"from":"${ID}","seq":4,"inFlight":{"a:1":1}}`));
    assert.ok(typeof old !== 'string');
    assert.equal(old.ports, undefined);
    assert.equal(old.inFlight.get('a:1'), 1);
  });

  it('ports out of range, not whole numbers, or only one of the two make the report malformed', () => {
    const text = (fields: string) => new TextEncoder().encode(`{"v":1,"from":"${ID}","seq":1,${fields}"inFlight":{}}`);
    for (const bad of ['"dataPort":0,"adminPort":9001,', '"dataPort":8001,"adminPort":65536,', '"dataPort":80.5,"adminPort":9001,', '"dataPort":"8001","adminPort":9001,', '"dataPort":8001,', '"adminPort":9001,']) {
      assert.equal(decodeReport(text(bad)), 'malformed', bad);
    }
    assert.ok(typeof decodeReport(text('"dataPort":1,"adminPort":65535,')) !== 'string');
  });
});
