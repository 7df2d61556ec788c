import assert from 'node:assert/strict';
import { describeReason, parseDecisionHeader } from '../src/decision.js';

describe('parseDecisionHeader', () => {
  it('parses the header format of docs/contracts.md', () => {
    const d = parseDecisionHeader(
      'chosen=127.0.0.1:8003; reason=least-loaded; candidates=127.0.0.1:8002/2/1,127.0.0.1:8003/0/1,127.0.0.1:8004/4/2',
    );
    assert.deepEqual(d, {
      chosen: '127.0.0.1:8003',
      reason: 'least-loaded',
      candidates: [
        { id: '127.0.0.1:8002', inFlight: 2, weight: 1 },
        { id: '127.0.0.1:8003', inFlight: 0, weight: 1 },
        { id: '127.0.0.1:8004', inFlight: 4, weight: 2 },
      ],
    });
  });

  it('handles IPv6 ids, spaces, order and unknown keys', () => {
    const d = parseDecisionHeader(' reason=tie-random ;chosen=[::1]:9000; future=x; candidates= [::1]:9000/1/3 , bad, x/y/z ');
    assert.deepEqual(d, { chosen: '[::1]:9000', reason: 'tie-random', candidates: [{ id: '[::1]:9000', inFlight: 1, weight: 3 }] });
  });

  it('returns undefined without a header or without chosen', () => {
    assert.equal(parseDecisionHeader(null), undefined);
    assert.equal(parseDecisionHeader(''), undefined);
    assert.equal(parseDecisionHeader('reason=least-loaded'), undefined);
  });

  it('explains every reason of the contract and echoes unknown ones', () => {
    for (const r of ['only-candidate', 'least-loaded', 'tie-rotation', 'tie-random', 'tie-latency']) assert.notEqual(describeReason(r), r);
    assert.equal(describeReason('sticky'), 'sticky');
  });
});
