/**
 * `make test` must give the same answer on a fast machine and on a loaded one (issue 23, point 8):
 * no spec it runs asserts that something took less than so many milliseconds of wall-clock time.
 * Such checks assert state or order instead (mocked timers, the timers a service started, the
 * client's own timeout as the bound), or move to the soak suite (`make soak`, *.soak.ts).
 * A lower bound (took at least the delay) is fine: a timer never fires early.
 *
 * Caught: inside an assert call, a wall-clock difference compared as an upper bound against a
 * number literal (elapsed below N, or N above elapsed), where the difference is written out
 * (performance.now() or Date.now() minus a start), held in a variable assigned one, or a property
 * the test helpers fill with one (backend's and e2e's `ms`). The self-test below lists the shapes.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '../../scripts/cluster-lib.mjs';

/** The folders whose *.spec.ts files `make test` runs (npm test in each workspace). */
const SPEC_DIRS = ['services/backend/test', 'services/balancer/test', 'frontend/test', 'e2e/test'];

const NOW_DIFF = String.raw`(?:performance|Date)\.now\(\)\s*-\s*[\w$.]+`;
const NUMBER = String.raw`\d[\d_]*(?:\.\d+)?`;

async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await tsFiles(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** The argument text of every assert call (assert(...), assert.ok(...), ...), parentheses balanced. */
export function assertCalls(text: string): { line: number; args: string }[] {
  const calls: { line: number; args: string }[] = [];
  for (const m of text.matchAll(/\bassert(?:\.\w+)?\(/g)) {
    const open = m.index + m[0].length;
    let depth = 1;
    let i = open;
    for (; i < text.length && depth > 0; i++) {
      if (text[i] === '(') depth++;
      else if (text[i] === ')') depth--;
    }
    calls.push({ line: text.slice(0, m.index).split('\n').length, args: text.slice(open, i - 1) });
  }
  return calls;
}

const escape = (s: string): string => s.replace(/[$.]/g, (c) => `\\${c}`);

/** The wall-clock upper bounds in one file's text; `properties` are the helpers' duration fields. */
export function wallClockBounds(text: string, properties: readonly string[]): { line: number; args: string }[] {
  const variables = [...text.matchAll(new RegExp(String.raw`\b(?:const|let|var)?\s*([\w$]+)\s*=\s*(?:Math\.\w+\([^;]*?)?${NOW_DIFF}`, 'g'))].map((m) => m[1] ?? '');
  const durations = [NOW_DIFF, ...variables.filter((v) => v !== '').map((v) => String.raw`\b${escape(v)}\b`), ...properties.map((p) => String.raw`[\w$\]).]+\.${escape(p)}\b`)];
  const patterns = durations.flatMap((d) => [new RegExp(String.raw`${d}\s*<=?\s*${NUMBER}`), new RegExp(String.raw`${NUMBER}\s*>=?\s*${d}`)]);
  return assertCalls(text).filter((call) => patterns.some((p) => p.test(call.args)));
}

describe('no wall-clock assertions in the specs make test runs', () => {
  it('catches the shapes it is meant to (the cases issue 23 listed), and not lower bounds or messages', () => {
    const props = ['ms'];
    const hit = (text: string): number => wallClockBounds(text, props).length;
    // Written with ${lt}/${gt} so that this file's own examples are no hits when it scans itself.
    const [lt, gt, now] = ['<', '>', 'Date.now()'];
    const perf = 'performance.now()';
    assert.equal(hit(`const fast = await get(u);\nassert.ok(fast.ms ${lt} 55, 'took');`), 1, 'scenario.spec.ts: fast.ms below 55');
    assert.equal(hit(`assert.ok(res.ms ${lt} 150, \`404 took \${res.ms} ms\`);`), 1, 'delays.spec.ts: res.ms below 150');
    assert.equal(hit(`const elapsed = ${now} - started;\nassert.ok(elapsed ${lt} 1200, 'x');`), 1, 'admin.spec.ts: elapsed below 1200');
    assert.equal(hit(`const took = ${now} - restarted;\nassert.ok(took ${lt}= 1000, 'x');`), 1, 'faults.spec.ts: took at most 1000');
    assert.equal(hit(`tally.maxMs = Math.max(tally.maxMs, ${perf} - started);\nassert.ok(tally.maxMs ${lt} 300);`), 1, 'fault-table: a tail');
    assert.equal(hit(`assert.ok(\n  ${perf} - started ${lt} 5_000,\n  'x',\n);`), 1, 'over lines');
    assert.equal(hit(`assert.ok(2000 ${gt} ${now} - started);`), 1, 'the other way round');
    assert.equal(hit(`assert.ok(${perf} - started ${gt}= 40);`), 0, 'a lower bound');
    assert.equal(hit(`assert.ok(slow.ms ${gt}= 55, 'x');`), 0, 'a lower bound');
    assert.equal(hit(`assert.ok(ok, \`answered after \${${now} - started} ms\`);`), 0, 'a message');
    assert.equal(hit(`await waitFor(() => ${now} - t ${lt} 1000, 5000, 'x');`), 0, 'a deadline, not an assert');
  });

  it('no spec under services/*/test, frontend/test or e2e/test asserts an elapsed time below a number', async () => {
    const files = (await Promise.all(SPEC_DIRS.map((d) => tsFiles(join(REPO_ROOT, d))))).flat();
    const texts = new Map(await Promise.all(files.map(async (f) => [f, await readFile(f, 'utf8')] as const)));
    // The duration fields the test helpers fill from the wall clock (e.g. `ms: performance.now() - started`).
    const properties = [...new Set([...texts.values()].flatMap((t) => [...t.matchAll(new RegExp(String.raw`([\w$]+)\s*:\s*(?:Math\.\w+\()?${NOW_DIFF}`, 'g'))].map((m) => m[1] ?? '')))].filter((p) => p !== '');
    assert.ok(properties.includes('ms'), `the helpers' duration field: ${properties.join(', ')}`);
    const hits: string[] = [];
    for (const [file, text] of texts) {
      if (!file.endsWith('.spec.ts')) continue;
      for (const call of wallClockBounds(text, properties)) hits.push(`${relative(REPO_ROOT, file)}:${call.line}: assert(${call.args.replace(/\s+/g, ' ').slice(0, 120)})`);
    }
    assert.ok(files.some((f) => f.endsWith('no-wall-clock.spec.ts')), 'it scans itself too');
    assert.deepEqual(hits, [], 'assert state or order instead, or move the check to the soak suite (make soak)');
  });
});
