/** Static checks of the Compose inputs that need Docker but no running cluster. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { REPO_ROOT } from './lib/cluster.js';
import { createCompose } from './lib/compose.js';
import { run } from './lib/exec.js';

describe('Compose inputs', () => {
  it('prometheus/prometheus.yml passes the image\'s own promtool (Prometheus 3.5)', async () => {
    const res = await run(
      'docker',
      ['run', '--rm', '--network', 'none', '--entrypoint', '/bin/promtool', '-v', `${join(REPO_ROOT, 'prometheus')}:/cfg:ro`, 'prom/prometheus:v3.5.3', 'check', 'config', '/cfg/prometheus.yml'],
      { timeoutMs: 60_000, allowFailure: true },
    );
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.match(res.stdout + res.stderr, /SUCCESS/);
  });

  it('docker-compose.yml is valid for the Compose CLI in use, with defaults and with the CI overrides', async () => {
    const variants: Record<string, string>[] = [{}, { FRONTEND_ADDR: '127.0.0.1', FRONTEND_PORT: '18080', HEALTHCHECK_INTERVAL: '1s' }];
    for (const env of variants) {
      const compose = await createCompose({ root: REPO_ROOT, project: 'lbe2econfig', env });
      const res = await compose.compose(['config', '-q'], 60_000);
      assert.equal(res.stderr.trim(), '', `no warnings from ${compose.cli} config`);
    }
  });
});
