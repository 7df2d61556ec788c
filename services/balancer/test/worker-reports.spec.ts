import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { supportsReusePort } from '../src/cluster/workers.js';

const CHILD = fileURLToPath(new URL('./worker-reports-child.ts', import.meta.url));

describe('worker reports name upstreams, not counter slots (a process with two data-path threads)', function () {
  this.timeout(120_000);

  before(() => {
    assert.ok(supportsReusePort(process.versions.node), `Node ${process.versions.node} has no reusePort: run the tests on Node 24 (make test installs it)`);
  });

  it('a removed upstream\'s last decisions are never credited to the newcomer that took over its slot', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, stderr);
    const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { workers: number; reusedSlots: number; misattributed: string[] };
    assert.equal(result.workers, 2, 'two data-path threads');
    assert.ok(result.reusedSlots > 0, 'newcomers took over the slots of removed upstreams');
    assert.deepEqual(result.misattributed, [], 'decisions of a removed upstream shown as the newcomer\'s');
  });
});
