/**
 * scripts/require-tool.mjs: the one gate of every test that needs promtool, nginx, haproxy,
 * chromium or wrk. Under CI a missing tool fails (so a run cannot pass without checking what it
 * claims); elsewhere it skips with a reason.
 */
import assert from 'node:assert/strict';
import { requireTool, underCi } from '../../scripts/require-tool.mjs';

class Skipped extends Error {}
const ctx = { skip: (): never => { throw new Skipped('skipped'); } };
const NOWHERE = { PATH: '/nonexistent-dir' };
const quiet = (): void => undefined;

describe('scripts/require-tool.mjs', () => {
  it('reads CI like CI systems set it', () => {
    assert.equal(underCi({}), false);
    assert.equal(underCi({ CI: '' }), false);
    assert.equal(underCi({ CI: '0' }), false);
    assert.equal(underCi({ CI: 'false' }), false);
    assert.equal(underCi({ CI: '1' }), true);
    assert.equal(underCi({ CI: 'true' }), true);
  });

  for (const tool of ['promtool', 'nginx', 'haproxy', 'wrk'] as const) {
    it(`a missing ${tool} fails under CI and skips outside it`, () => {
      // Not on this PATH; /usr/sbin etc. are searched too, so name a tool that cannot exist there.
      const env = { ...NOWHERE, CI: '1' };
      assert.throws(() => requireTool(ctx, tool, { env, probeArgs: ['--no-such-flag-xyz'], log: quiet }), (err: Error) => {
        // Either missing, or found in an sbin dir but failing the probe: both must fail under CI.
        assert.ok(!(err instanceof Skipped), 'CI must not skip');
        assert.match(err.message, new RegExp(`^${tool} .*CI must not skip`));
        return true;
      });
      assert.throws(() => requireTool(ctx, tool, { env: NOWHERE, probeArgs: ['--no-such-flag-xyz'], log: quiet }), Skipped);
    });
  }

  it('a missing chromium (CHROMIUM_PATH) fails under CI and skips outside it', () => {
    const env = { ...NOWHERE, CHROMIUM_PATH: '/nonexistent-dir/chromium' };
    assert.throws(() => requireTool(ctx, 'chromium', { env: { ...env, CI: '1' }, log: quiet }), /chromium is not installed, and CI must not skip/);
    assert.throws(() => requireTool(ctx, 'chromium', { env, log: quiet }), Skipped);
  });

  it('returns the path of a tool that is there and runs', () => {
    // `node` stands in for a tool: any executable on PATH that answers --version.
    const env = { PATH: process.env.PATH ?? '', CI: '1', CHROMIUM_PATH: process.execPath };
    assert.equal(requireTool(ctx, 'chromium', { env }), process.execPath);
  });
});
