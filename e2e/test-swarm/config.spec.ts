/** Static checks of the Swarm inputs that need Docker but no swarm. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '../../scripts/cluster-lib.mjs';
import { run } from '../lib/exec.js';
import { createCompose } from '../test-compose/lib/compose.js';

interface StackService {
  image?: string;
  build?: unknown;
  environment?: Record<string, string>;
  ports?: { target: number; published: number | string; mode: string }[];
  deploy?: { replicas?: number; update_config?: { order?: string; parallelism?: number } };
  healthcheck?: { test?: string[]; interval?: string };
}

describe('Swarm inputs', () => {
  it('deploy/swarm/prometheus.yml passes the image\'s own promtool (Prometheus 2.42 in the stand-in)', async () => {
    const res = await run(
      'docker',
      ['run', '--rm', '--network', 'none', '--entrypoint', '/bin/promtool', '-v', `${join(REPO_ROOT, 'deploy/swarm')}:/cfg:ro`, 'prom/prometheus:v3.5.3', 'check', 'config', '/cfg/prometheus.yml'],
      { timeoutMs: 60_000, allowFailure: true },
    );
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.match(res.stdout + res.stderr, /SUCCESS/);
  });

  it('deploy/swarm/images.yml adds image names to docker-compose.yml without warnings', async () => {
    const compose = await createCompose({ root: REPO_ROOT, project: 'lbe2eswarmconfig', env: { COMPOSE_FILE: 'docker-compose.yml:deploy/swarm/images.yml', LCB_IMAGE_TAG: 'check' } });
    const res = await compose.compose(['config'], 60_000);
    assert.equal(res.stderr.trim(), '', `no warnings from ${compose.cli} config`);
    const services = (parse(res.stdout) as { services: Partial<Record<string, StackService>> }).services;
    for (const name of ['backend', 'balancer', 'frontend']) {
      const service = services[name];
      assert.ok(service, name);
      assert.equal(service.image, `lcb-${name}:check`);
      assert.ok(service.build, `${name} still builds from docker-compose.yml`);
    }
  });

  // `docker stack config` came with CLI 23; the 20.10 CLI that CI installs deploys the file but cannot
  // print it. Compose reads the same file format (3.8, deploy: keys included) with the same
  // interpolation, so where the CLI lacks `stack config` the compose CLI checks the file instead:
  // the test runs everywhere, and never skips.
  it('deploy/swarm/docker-stack.yml passes `docker stack config` (or compose config where the CLI has none) and says what Swarm needs', async () => {
    const vars = { FRONTEND_PORT: '18080', LCB_PUBLISH_MODE: 'host', BACKEND_REPLICAS: '5', LCB_IMAGE_TAG: 'check' };
    let res = await run('docker', ['stack', 'config', '-c', 'deploy/swarm/docker-stack.yml'], { cwd: REPO_ROOT, env: { ...process.env, ...vars }, timeoutMs: 30_000, allowFailure: true });
    if (res.code !== 0 && /unknown command|is not a docker command|Usage:\s+docker stack COMMAND/i.test(res.stderr)) {
      const compose = await createCompose({ root: REPO_ROOT, project: 'lbe2eswarmstack', env: { ...vars, COMPOSE_FILE: 'deploy/swarm/docker-stack.yml' } });
      res = await compose.compose(['config'], 60_000);
      // Compose's only complaint may be that it does not deploy `configs:` itself (the stack does).
      const warnings = res.stderr.split('\n').filter((l) => l.trim() !== '' && !l.includes('use `docker stack deploy` to deploy to a swarm'));
      assert.deepEqual(warnings, [], `no other warnings from ${compose.cli} config`);
    }
    assert.equal(res.code, 0, res.stderr);
    const services = (parse(res.stdout) as { services: Partial<Record<string, StackService>> }).services;
    assert.deepEqual(Object.keys(services).sort(), ['backend', 'balancer', 'frontend', 'prometheus']);
    for (const name of ['backend', 'balancer', 'frontend']) {
      const service = services[name];
      assert.ok(service, name);
      assert.equal(service.image, `lcb-${name}:check`, `${name} runs the image swarm.sh builds`);
      assert.equal(service.build, undefined, 'stack deploy never builds');
    }
    const { backend, balancer, frontend } = services;
    assert.ok(backend && balancer && frontend);
    assert.equal(backend.deploy?.replicas, 5);
    assert.equal(backend.deploy.update_config?.order, 'start-first');
    assert.equal(backend.ports, undefined, 'backends publish no port (scaling)');
    assert.match(JSON.stringify(backend.healthcheck?.test), /\/healthz/);
    assert.equal(balancer.environment?.LB_DISCOVERY_DNS, 'tasks.backend');
    // Active-active: two or more tasks sharing their counts, rolled one at a time, no host port to hold.
    assert.equal(balancer.environment.LB_PEERS_DNS, 'tasks.balancer');
    assert.equal(balancer.deploy?.replicas, 2);
    assert.equal(balancer.deploy.update_config?.order, 'start-first');
    assert.equal(balancer.ports, undefined, 'balancers publish no port (several tasks per node)');
    assert.equal(frontend.environment?.BALANCER_HOST, 'tasks.balancer');
    assert.deepEqual(frontend.ports, [
      { target: 8080, published: 18080, protocol: 'tcp', mode: 'host' },
      { target: 8001, published: 8001, protocol: 'tcp', mode: 'host' },
    ]);
  });
});
