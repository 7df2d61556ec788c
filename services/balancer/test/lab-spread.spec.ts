import assert from 'node:assert/strict';
import { inFlightSpread } from '../src/lab/spread.js';

describe('lab: in-flight spread from the request records (pure)', () => {
  it('even load is 1; every request on one of four backends is 4', () => {
    const even = inFlightSpread([{ upstream: 'a', start: 0, end: 10 }, { upstream: 'b', start: 0, end: 10 }], ['a', 'b']);
    assert.equal(even.spread, 1);
    const piled = inFlightSpread([{ upstream: 'a', start: 0, end: 10 }, { upstream: 'a', start: 0, end: 10 }], ['a', 'b', 'c', 'd']);
    assert.equal(piled.spread, 4);
    assert.deepEqual(piled.upstreams.get('a'), { max: 2, mean: 2 });
    assert.deepEqual(piled.upstreams.get('d'), { max: 0, mean: 0 });
  });

  it('time-weighted over the busy time only: idle gaps do not count, a short pile-up counts for its length', () => {
    // 0-10: a and b (spread 1); 10-20: nothing; 20-30: a twice (spread 2).
    const r = inFlightSpread(
      [
        { upstream: 'a', start: 0, end: 10 },
        { upstream: 'b', start: 0, end: 10 },
        { upstream: 'a', start: 20, end: 30 },
        { upstream: 'a', start: 20, end: 30 },
      ],
      ['a', 'b'],
    );
    assert.equal(r.spread, 1.5);
    assert.deepEqual(r.upstreams.get('a'), { max: 2, mean: 30 / 30 });
    assert.deepEqual(r.upstreams.get('b'), { max: 1, mean: 10 / 30 });
  });

  it('a request that ends as another starts on the same backend is not two at once; the maximum falls back as requests end', () => {
    const r = inFlightSpread(
      [
        { upstream: 'a', start: 0, end: 10 },
        { upstream: 'a', start: 10, end: 20 },
        { upstream: 'b', start: 0, end: 20 },
      ],
      ['a', 'b'],
    );
    assert.equal(r.spread, 1);
    assert.equal(r.upstreams.get('a')?.max, 1);
  });

  it('a backend outside the cluster list still counts; nothing at all is 1', () => {
    assert.equal(inFlightSpread([{ upstream: 'x', start: 0, end: 5 }], ['a']).spread, 2);
    assert.equal(inFlightSpread([], ['a', 'b']).spread, 1);
  });
});
