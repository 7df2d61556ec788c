/**
 * e2e/load/chaos.ts (`make chaos`): bad flags are refused with exit 2 and a usage line before it
 * touches Docker or sends a single request.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../scripts/cluster-lib.mjs';

const CHAOS = join(REPO_ROOT, 'e2e', 'load', 'chaos.ts');

const chaos = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', CHAOS, ...args], { cwd: REPO_ROOT, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });

describe('make chaos (e2e/load/chaos.ts)', function () {
  this.timeout(60_000);

  it('prints its usage with --help and exits 0', async () => {
    const r = await chaos('--help');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /usage: chaos \[--rate N\] \[--events scale-up,scale-down,restart,upgrade,stall,kill\]/);
  });

  it('refuses a bad rate, an unknown event and an unknown flag with exit 2, naming the problem', async () => {
    const rate = await chaos('--rate', 'lots');
    assert.equal(rate.code, 2);
    assert.match(rate.stderr, /--rate must be a whole number 1-2000, got lots/);
    const event = await chaos('--events', 'restart,explode');
    assert.equal(event.code, 2);
    assert.match(event.stderr, /unknown event explode/);
    const flag = await chaos('--fast');
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /Unknown option '--fast'/);
  });
});
