import assert from 'node:assert/strict';
import { formatDuration, formatInt, formatRate, formatRatio, formatShare, niceCeil } from '../src/format.js';

describe('format', () => {
  it('niceCeil rounds the bar scale up to 1, 2, 4, 5, 8 × 10^k, at least the minimum', () => {
    const cases: [number, number][] = [[0, 4], [3, 4], [4, 4], [4.5, 5], [6, 8], [9, 10], [11, 20], [21, 40], [41, 50], [51, 80], [199, 200]];
    for (const [v, want] of cases) assert.equal(niceCeil(v), want, `niceCeil(${v})`);
    assert.equal(niceCeil(0.3, 1), 1);
  });

  it('formats rates with a decimal only below 10', () => {
    assert.equal(formatRate(0), '0');
    assert.equal(formatRate(-1), '0');
    assert.equal(formatRate(0.25), '0.3');
    assert.equal(formatRate(9.94), '9.9');
    assert.equal(formatRate(1234.4), '1,234');
  });

  it('formats durations, shares, ratios and integers', () => {
    assert.equal(formatDuration(12.4), '12 ms');
    assert.equal(formatDuration(1234), '1.23 s');
    assert.equal(formatDuration(12_345), '12.3 s');
    assert.equal(formatDuration(65_000), '1 min 5 s');
    assert.equal(formatShare(1, 3), '33%');
    assert.equal(formatShare(1, 1000), '<1%');
    assert.equal(formatShare(0, 0), '0%');
    assert.equal(formatRatio(1.333), '1.33×');
    assert.equal(formatInt(1234567), '1,234,567');
  });
});
