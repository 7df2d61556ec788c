import assert from 'node:assert/strict';
import { PALETTE, createColorMap } from '../src/colors.js';

describe('createColorMap', () => {
  it('gives distinct colours in order of appearance and keeps them stable', () => {
    const c = createColorMap();
    const ids = ['a', 'b', 'c'];
    const first = ids.map((id) => c.get(id));
    assert.deepEqual(first, PALETTE.slice(0, 3));
    assert.deepEqual(ids.map((id) => c.get(id)), first);
  });

  it('frees the colour of an upstream that left without repainting the others', () => {
    const c = createColorMap();
    c.get('a');
    const b = c.get('b');
    c.get('c');
    c.retain(['b', 'c']);
    assert.equal(c.get('b'), b);
    assert.equal(c.get('new'), PALETTE[0]);
  });
});
