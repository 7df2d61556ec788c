/**
 * bench/lab-peers.mjs (`make lab-peers`, issue 25 point 4) wired end to end in seconds: its
 * self-test mode starts the four backends and the two peered balancers, runs the lab's three modes
 * (one, two-isolated, two-sharing) on the same traffic with images scaled to 1/100, and prints the
 * table and the goal's checks. This checks the wiring (every mode ran, measured from the responses,
 * no errors, the table and the checks printed, every process stopped), not the figures: those need
 * the seed's seconds-long images (bench/PEERS.md).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { REPO_ROOT, missingBuild } from '../../scripts/cluster-lib.mjs';

describe('bench/lab-peers.mjs (self-test mode)', () => {
  it('runs one, two-isolated and two-sharing on the same traffic and prints the table and the goal\'s checks', async function () {
    // make test builds first, as for the browser tests.
    const missing = missingBuild();
    if (missing.length > 0) throw new Error(`run \`npm run build\` first (missing ${missing.join(', ')})`);
    this.timeout(120_000);
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bench/lab-peers.mjs')], { env: { ...process.env, LAB_PEERS_SELF_TEST: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, `exit ${String(code)}\n${stdout}\n${stderr}`);
    for (const mode of ['one', 'two-isolated', 'two-sharing']) {
      assert.match(stdout, new RegExp(`^\\| 1 \\| 1 \\| ${mode} \\| [\\d.]+ % \\| [\\d.]+ \\| \\d+ \\| \\d+ \\| 0 \\| \\d+ \\|$`, 'm'), `a row for ${mode}`);
      assert.match(stdout, new RegExp(`^\\| ${mode} \\| `, 'm'), `a summary row for ${mode}`);
    }
    assert.match(stdout, /Goal \(issue 25\), not enforced in the self-test:/);
    assert.match(stdout, /two sharing: spread within 10 % of one balancer's: .*: (ok|FAILED)$/m);
    assert.match(stdout, /two isolated: spread measurably worse than one balancer's .*: (ok|FAILED)$/m);
    assert.match(stdout, /^ {2}spread: two-isolated [\d.]+ ± [\d.]+, two-sharing [\d.]+ ± [\d.]+$/m);
    assert.match(stdout, /no errors in any run: 0 errors: ok$/m);
  });
});
