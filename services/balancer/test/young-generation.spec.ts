import assert from 'node:assert/strict';
import { YOUNG_GENERATION_CAP_BYTES, growthFactorFor } from '../src/young-generation.js';

const MB = 2 ** 20;

describe('young generation cap', () => {
  it('lets V8 double the young generation only while the result stays within the cap', () => {
    assert.equal(YOUNG_GENERATION_CAP_BYTES, 16 * MB);
    const cases: [number, number][] = [
      [1 * MB, 2],
      [4 * MB, 2],
      [8 * MB, 2],
      // Sizes V8 shrinks to when allocation slows down: doubling them would pass the cap.
      [8.5 * MB, 1],
      [11 * MB, 1],
      [16 * MB, 1],
      [22 * MB, 1],
    ];
    for (const [size, factor] of cases) assert.equal(growthFactorFor(size), factor, `${size / MB} MB`);
  });
});
