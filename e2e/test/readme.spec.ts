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
      assert.doesNotMatch(text, /\.\.\/shared\b/, `${file} names ../shared`);
      // Relative links must stay inside the clone.
      for (const [, target = ''] of text.matchAll(/\]\(([^)#]+)[^)]*\)/g)) {
        if (/^[a-z]+:/.test(target)) continue;
        const resolved = join(REPO_ROOT, file, '..', target);
        assert.ok(resolved.startsWith(REPO_ROOT), `${file} links to ${target}, outside the repository`);
      }
    }
  });
});
