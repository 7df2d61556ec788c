/**
 * bench/thread-cpu.sh (issue 24: CPU per request by thread, the balancer against the plain proxy)
 * wired end to end at toy settings: one round of one second prints a row per target with figures
 * read from /proc, and bad settings are refused before anything starts. The figures themselves
 * are for a quiet machine (bench/PROFILE.md), not for a test.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { REPO_ROOT, missingBuild } from '../../scripts/cluster-lib.mjs';
import { requireTool } from '../../scripts/require-tool.mjs';

const SCRIPT = join(REPO_ROOT, 'bench/thread-cpu.sh');

async function run(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('bash', [SCRIPT], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

describe('bench/thread-cpu.sh', () => {
  for (const [name, value] of [['ROUNDS', '0'], ['DURATION', '1s'], ['PIN', '2']] as const) {
    it(`refuses ${name}=${value} with exit 2 and says why, before starting anything`, async () => {
      const r = await run({ [name]: value });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`^thread-cpu: ${name} must be .*\\(got '${value}'\\)$`, 'm'));
      assert.equal(r.stdout, '', 'no table');
    });
  }

  it('one round of one second: a row for the plain proxy and one for the balancer, with CPU by thread', async function () {
    requireTool(this, 'wrk');
    const missing = missingBuild();
    if (missing.length > 0) throw new Error(`run \`npm run build\` first (missing ${missing.join(', ')})`);
    this.timeout(60_000);
    const r = await run({ ROUNDS: '1', DURATION: '1' });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    for (const target of ['plain', 'balancer']) {
      const row = new RegExp(`^\\| 1 \\| ${target} \\| (\\d+) \\| ([\\d.]+) \\| ([\\d.]+) \\| ([\\d.]+) \\| ([\\d.]+) \\| \\d+ / \\d+ \\|$`, 'm').exec(r.stdout);
      assert.ok(row, `a row for ${target} in\n${r.stdout}`);
      const [reqs, all, js, v8, other] = row.slice(1).map(Number) as [number, number, number, number, number];
      assert.ok(reqs > 0, `${target} answered requests`);
      assert.ok(js > 0, `${target}'s JavaScript thread was charged CPU`);
      assert.ok(Math.abs(all - (js + v8 + other)) < 0.3, `${target}: the threads add up to the whole (${String(all)})`);
    }
  });
});
