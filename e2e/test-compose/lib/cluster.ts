import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../../../scripts/cluster-lib.mjs';
import { saveArtifact } from '../../lib/artifacts.js';
import { readSnapshot } from '../../lib/balancer-api.js';
import type { ClusterHarness, Figures } from '../../lib/cluster-harness.js';
import { freePort } from '../../lib/ports.js';
import { createPublishedClients } from '../../lib/published-clients.js';
import { SUITE_DELAYS, type BackendDelayEnv } from '../../lib/suite-delays.js';
import { taggedLog } from '../../lib/tagged-log.js';
import { BALANCER_REPLICAS, createBalancers, type Balancers } from './balancers.js';
import { createCompose, type Compose } from './compose.js';

export { BALANCER_REPLICAS, BALANCER_SERVICE } from './balancers.js';
// e2e/load/chaos.ts, rewritten elsewhere at the moment, imports the root from this path.
export { REPO_ROOT };

/** A real Compose cluster on 127.0.0.1 with free host ports and its own project name. */
export interface Cluster extends ClusterHarness {
  readonly compose: Compose;
  /** The balancer replicas at their container addresses (admin and data ports), with the admin token. */
  readonly balancerReplicas: Balancers;
  /** `PUT /api/policy` on every balancer replica (with the cluster's admin token). */
  setPolicy(policy: string): Promise<void>;
  /** A request to the first balancer replica's admin API with the cluster's admin token; the parsed JSON answer. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  /**
   * `up -d --force-recreate --no-deps --scale backend=N backend` with `delays` (the rest of the
   * cluster stays), then waits until every balancer routes to the N new replicas. The delays are
   * set at a backend's start, so this is how they change. Other commands keep SUITE_DELAYS: call
   * this again without `delays` to go back.
   */
  recreateBackends(replicas: number, delays?: BackendDelayEnv): Promise<void>;
  /** Saves the logs and figures, then `down -v --remove-orphans --rmi local`. Idempotent. */
  stop(): Promise<void>;
}

const log = taggedLog('compose');

/** Picks ports and a project name and finds the Compose CLI; starts nothing yet. */
export async function createCluster(): Promise<Cluster> {
  const project = `lbe2e${randomBytes(4).toString('hex')}`;
  const [frontendPort, lbPort, adminPort, prometheusPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  // The admin write token, as a Docker secret file (what a user does with LB_ADMIN_TOKEN_FILE).
  const adminToken = randomBytes(16).toString('hex');
  const tokenFile = join(tmpdir(), `${project}-admin-token`);
  await writeFile(tokenFile, `${adminToken}\n`, { mode: 0o644 });
  const env: Record<string, string> = {
    FRONTEND_ADDR: '127.0.0.1',
    FRONTEND_PORT: String(frontendPort),
    LB_ADDR: '127.0.0.1',
    LB_PORT_PUBLISHED: String(lbPort),
    LB_ADMIN_TOKEN_FILE: tokenFile,
    // The backends' fault scenarios, reached through the balancer (the algorithm lab).
    BACKEND_ADMIN_TOKEN: randomBytes(16).toString('hex'),
    LB_ADMIN_ADDR: '127.0.0.1',
    LB_ADMIN_PORT_PUBLISHED: String(adminPort),
    PROMETHEUS_ADDR: '127.0.0.1',
    PROMETHEUS_PORT: String(prometheusPort),
    ...SUITE_DELAYS,
  };
  const compose = await createCompose({ root: REPO_ROOT, project, env });
  const clients = createPublishedClients({ frontend: frontendPort, balancer: lbPort, prometheus: prometheusPort });
  const figures: Figures = {};
  let started = false;
  let stopping: Promise<void> | undefined;

  const balancers = createBalancers(compose, adminToken, BALANCER_REPLICAS);
  const admin = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> => {
    const [first] = await balancers.origins();
    if (first === undefined) throw new Error('no balancer is running');
    return balancers.request(first, method, path, body);
  };
  const setPolicy = async (policy: string): Promise<void> => {
    for (const origin of await balancers.origins()) {
      const res = await balancers.request(origin, 'PUT', '/api/policy', { policy });
      if (res.status !== 200) throw new Error(`PUT ${origin}/api/policy: ${res.status} ${JSON.stringify(res.body)}`);
    }
  };

  async function stopOnce(): Promise<void> {
    if (started) {
      try {
        const logs = await compose.compose(['logs', '--no-color', '--tail=300'], 60_000);
        await saveArtifact('compose-logs.txt', logs.stdout + logs.stderr);
        // nginx's error log in full (the tail above is mostly its access log): why it answered a
        // 502 or 504 (refused, timed out, "no live upstreams") is only there.
        const edge = await compose.compose(['logs', '--no-color', 'frontend'], 60_000);
        await saveArtifact('nginx-errors.txt', `${edge.stdout}${edge.stderr}`.split('\n').filter((line) => /\[(warn|error|crit|alert|emerg)\]/.test(line)).join('\n') + '\n');
      } catch (err) {
        log(`could not save logs: ${err instanceof Error ? err.message : String(err)}`);
      }
      const down = await compose.compose(['down', '-v', '--remove-orphans', '--rmi', 'local'], 180_000);
      figures.downMs = Math.round(down.ms);
      log(`down -v --remove-orphans --rmi local: ${(down.ms / 1000).toFixed(1)} s`);
      await saveArtifact('compose-timings.json', `${JSON.stringify({ project, cli: compose.cli, ...figures }, null, 2)}\n`);
    }
    await Promise.all([clients.close(), balancers.close()]);
    await rm(tokenFile, { force: true });
  }

  return {
    compose,
    balancerReplicas: balancers,
    web: clients.web,
    balancer: clients.balancer,
    prometheus: clients.prometheus,
    figures,
    snapshot: () => readSnapshot(clients.web),
    balancerSnapshots: balancers.snapshots,
    setPolicy,
    admin,
    backends: () => compose.containers('backend'),
    waitForBackends: balancers.waitForBackends,
    async start(replicas) {
      log(`project ${project} via "${compose.cli}"; nginx 127.0.0.1:${frontendPort}, balancer 127.0.0.1:${lbPort}, prometheus 127.0.0.1:${prometheusPort}`);
      started = true;
      const build = await compose.compose(['build'], 900_000);
      figures.buildMs = Math.round(build.ms);
      log(`build: ${(build.ms / 1000).toFixed(1)} s`);
      const up = await compose.compose(['up', '-d', '--scale', `backend=${replicas}`, '--scale', `balancer=${BALANCER_REPLICAS}`], 300_000);
      figures.upMs = Math.round(up.ms);
      const readyStarted = performance.now();
      await balancers.waitForBackends(replicas, 90_000);
      figures.upToReadyMs = Math.round(performance.now() - readyStarted);
      log(
        `up -d --scale backend=${replicas} --scale balancer=${BALANCER_REPLICAS}: ${(up.ms / 1000).toFixed(1)} s, ` +
          `then ${(figures.upToReadyMs / 1000).toFixed(1)} s until every balancer routes to all`,
      );
    },
    // `up` returns once Compose has started the containers, before the balancers route to them.
    async scale(replicas) {
      const result = await compose.compose(['up', '-d', '--no-recreate', '--scale', `backend=${replicas}`, 'backend'], 300_000);
      return result.ms;
    },
    async recreateBackends(replicas, delays = SUITE_DELAYS) {
      const withDelays = await createCompose({ root: REPO_ROOT, project, env: { ...env, ...delays } });
      const result = await withDelays.compose(['up', '-d', '--force-recreate', '--no-deps', '--scale', `backend=${replicas}`, 'backend'], 300_000);
      await balancers.waitForBackends(replicas, 120_000);
      log(`backends recreated with BACKEND_DELAY_SCALE=${delays.BACKEND_DELAY_SCALE} BACKEND_DELAYS_MS=${delays.BACKEND_DELAYS_MS || '(default)'}: ${(result.ms / 1000).toFixed(1)} s`);
    },
    stop() {
      stopping ??= stopOnce();
      return stopping;
    },
  };
}
