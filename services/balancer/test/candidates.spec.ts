import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDecisionLog } from '../src/decision-log.js';
import { takeSnapshot } from '../src/snapshot.js';
import { candidatesOf } from '../src/upstreams/candidates.js';
import { CounterTable } from '../src/upstreams/counters.js';
import { testRegistry } from './helpers.js';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('"available" is defined once (candidatesOf)', () => {
  it('one candidates function: nothing else in src/ filters by room or reads Upstream.available', () => {
    const offenders: string[] = [];
    for (const file of sources(SRC)) {
      const rel = file.slice(SRC.length);
      if (rel === join('upstreams', 'candidates.ts') || rel === join('upstreams', 'upstream.ts')) continue;
      const text = readFileSync(file, 'utf8');
      if (/\.hasRoom\b|\bu\.available\b|upstream\.available\b/.test(text)) offenders.push(rel);
    }
    assert.deepEqual(offenders, []);
    assert.doesNotMatch(readFileSync(join(SRC, 'upstreams', 'upstream.ts'), 'utf8'), /get available\(\)/, 'Upstream has no available of its own');
    for (const user of [join('data-path', 'routing.ts'), join('data-path', 'data-plane.ts'), 'snapshot.ts']) {
      assert.match(readFileSync(join(SRC, user), 'utf8'), /candidatesOf\(/, `${user} uses candidatesOf`);
    }
  });

  it('the snapshot shows what the data path picks from, in panic mode and at the cap alike', async () => {
    const registry = testRegistry({
      initialState: () => 'down',
      panic: true,
      rules: { rise: 2, fall: 2, activeChecks: false, passiveFailures: 3, passiveWindowMs: 10_000, passiveDownMs: 50 },
      counters: CounterTable.create(8),
    });
    registry.sync('static', [9201, 9202, 9203].map((port) => ({ host: '127.0.0.1', port, weight: 1 })));
    const [a, b, c] = registry.list();
    assert.ok(a && b && c);
    assert.deepEqual(registry.available(), [a, b, c], 'no upstream up: the panic set');
    registry.setMaxInFlight(a, 1);
    assert.equal(registry.acquire(a), true);
    const candidates = candidatesOf(registry.available());
    assert.deepEqual(candidates, [b, c], 'the one at its cap is no candidate');
    assert.deepEqual(candidatesOf(registry.available(), new Set([b])), [c], 'nor one already tried');
    const snap = takeSnapshot(registry, createDecisionLog(), { tieBreak: 'rotation', explain: false, instance: 'test', policy: 'least-connections' });
    assert.deepEqual(
      snap.upstreams.map((v) => [v.id, v.state, v.available]),
      [
        [a.id, 'down', false],
        [b.id, 'down', true],
        [c.id, 'down', true],
      ],
    );
    registry.release(a);
    assert.equal(candidatesOf(registry.available()), registry.available(), 'nothing full, nothing tried: no copy');
    await registry.stop();
  });
});
