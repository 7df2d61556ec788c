import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Pool as UndiciPool } from 'undici';
import { Pool } from '../src/undici-pool.js';

describe('undici-pool: the Pool without the rest of undici', () => {
  it('is undici\'s own Pool class', () => {
    assert.equal(Pool, UndiciPool);
  });

  it('has the API methods in a process that loads nothing else of undici, and never loads its index', () => {
    const module = fileURLToPath(new URL('../src/undici-pool.ts', import.meta.url));
    const script = `
      import { createRequire } from 'node:module';
      const { Pool } = await import(${JSON.stringify(module)});
      const pool = new Pool('http://127.0.0.1:1');
      const methods = ['request', 'stream', 'pipeline', 'connect', 'upgrade', 'dispatch'].filter((m) => typeof pool[m] !== 'function');
      const index = Object.keys(createRequire(import.meta.url).cache).filter((p) => /undici[\\\\/]index\\.js$/.test(p));
      console.log(JSON.stringify({ methods, index }));
      await pool.close();
    `;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), { methods: [], index: [] });
  });
});
