/**
 * README.md is the user's guide: short, the two commands on its first screen, nothing that needs
 * a folder beside the clone. docs/ stands alone too.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../../scripts/cluster-lib.mjs';

const FIRST_SCREEN_LINES = 40;

describe('README.md and docs/', () => {
  it('README.md has at most 200 lines, and its first screen gives the command that runs the cluster and the one that tests it', async () => {
    // Lines as `wc -l` counts them: the final newline ends the last line, it starts none.
    const lines = (await readFile(join(REPO_ROOT, 'README.md'), 'utf8')).replace(/\n$/, '').split('\n');
    assert.ok(lines.length <= 200, `README.md has ${lines.length} lines`);
    const firstScreen = lines.slice(0, FIRST_SCREEN_LINES).join('\n');
    assert.match(firstScreen, /^make up\b/m, 'the run command');
    assert.match(firstScreen, /^make test\b/m, 'the test command');
  });

  it('the Makefile targets the README names exist', async () => {
    const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
    const makefile = await readFile(join(REPO_ROOT, 'Makefile'), 'utf8');
    const targets = new Set([...makefile.matchAll(/^([a-z0-9-]+):/gm)].map((m) => m[1]));
    const named = new Set([...readme.matchAll(/`make ([a-z0-9-]+)/g)].map((m) => m[1]));
    assert.ok(named.size > 3);
    for (const target of named) assert.ok(targets.has(target), `make ${target} is not a target`);
  });

  it('neither README.md nor docs/ points outside the repository', async () => {
    const files = ['README.md', ...(await readdir(join(REPO_ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];
    for (const file of files) {
      const text = await readFile(join(REPO_ROOT, file), 'utf8');
      // Links, and any path written with `../` in the text (a folder beside the clone that only
      // our own machines have, say), must stay inside the clone.
      const links = [...text.matchAll(/\]\(([^)#]+)[^)]*\)/g)].map((m) => m[1] ?? '').filter((t) => !/^[a-z]+:/.test(t));
      const prose = text.replace(/\]\([^)]*\)/g, '](…)');
      const upward = [...prose.matchAll(/(?:\.\.\/)+[\w.-]+/g)].map((m) => m[0]);
      // A link is relative to its file; a path in the text to where commands run, the root.
      const outside = [...links.map((t) => [t, join(REPO_ROOT, file, '..', t)]), ...upward.map((t) => [t, join(REPO_ROOT, t)])]
        .filter(([, resolved = '']) => !resolved.startsWith(`${REPO_ROOT}/`))
        .map(([target]) => target);
      assert.deepEqual(outside, [], `${file} names paths outside the repository`);
    }
  });
});
