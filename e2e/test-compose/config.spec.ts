/** Static checks of the Compose inputs that need Docker but no running cluster. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { REPO_ROOT } from '../../scripts/cluster-lib.mjs';
import { run } from '../lib/exec.js';
import { createCompose } from './lib/compose.js';

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

  describe('the balancer and backend images answer --help and --check themselves (ENTRYPOINT, not CMD)', function () {
    // Built from the Dockerfiles under names of this run; the layer cache of the cluster suite's
    // builds makes that cheap, and the first build on a fresh machine installs npm packages.
    this.timeout(900_000);
    const suffix = randomBytes(4).toString('hex');
    const images = { balancer: `lcb-balancer:cli-test-${suffix}`, backend: `lcb-backend:cli-test-${suffix}` };
    const built: string[] = [];

    before(async () => {
      for (const [name, tag] of Object.entries(images)) {
        await run('docker', ['build', '-q', '-f', `Dockerfile.${name}`, '-t', tag, '.'], { cwd: REPO_ROOT, timeoutMs: 840_000 });
        built.push(tag);
      }
    });
    after(async () => {
      if (built.length > 0) await run('docker', ['rmi', ...built], { timeoutMs: 60_000, allowFailure: true });
    });

    /** `docker run --rm <image> ARGS`, offline: what a user types to ask the image for help. */
    const runImage = (image: string, args: readonly string[]) => run('docker', ['run', '--rm', '--network', 'none', image, ...args], { timeoutMs: 60_000, allowFailure: true });

    it('balancer: --help is its usage (not node\'s); --check validates the image\'s settings plus the arguments, exit 0; bad ones exit 2', async () => {
      const help = await runImage(images.balancer, ['--help']);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, /^Usage: balancer \[options\]/);
      assert.match(help.stdout, /--check /);
      assert.doesNotMatch(help.stdout, /Usage: node/);

      const check = await runImage(images.balancer, ['--check', 'backend:8002']);
      assert.equal(check.code, 0, check.stderr);
      assert.equal(check.stdout, 'balancer: configuration ok (listen 0.0.0.0:8001, admin 0.0.0.0:9001, upstreams backend:8002=1)\n');

      const bad = await runImage(images.balancer, ['--check']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /^balancer: invalid configuration:\n {2}- no upstreams: /);
    });

    it('backend: --help is its usage (not node\'s); --check validates the image\'s settings, exit 0; a bad port exits 2', async () => {
      const help = await runImage(images.backend, ['--help']);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, /^usage: backend \[PORT\]\n {7}backend --check \[PORT\] /);
      assert.match(help.stdout, /BACKEND_ADMIN_TOKEN/);
      assert.doesNotMatch(help.stdout, /Usage: node/);

      const check = await runImage(images.backend, ['--check']);
      assert.equal(check.code, 0, check.stderr);
      assert.match(check.stdout, /^backend: configuration ok \(listen 0\.0\.0\.0:8002, id \S+:8002, delays 1000,3000,5000,10000 ms x 1, /);

      const bad = await runImage(images.backend, ['--check', '0']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /^backend: invalid configuration\n[\s\S]*must be from 1 to 65535[\s\S]*→ at PORT/);
    });
  });
});
