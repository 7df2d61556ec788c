import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Snapshot } from './balancer-api.js';
import { createBalancers } from './balancers.js';
import { createCompose, type Compose, type ContainerInfo } from './compose.js';
import { createHttpClient, type HttpClient } from './http.js';
import { freePort } from './ports.js';

export { ADMIN_PORT, BACKEND_PORT, BALANCER_SERVICES, upstreamIdOf } from './balancers.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root: docker-compose.yml and the build context. */
export const REPO_ROOT = resolve(here, '../../..');
/** e2e/artifacts: Compose logs and timings of the last run (ignored by git). */
export const ARTIFACTS = resolve(here, '../../artifacts');

/** The backends' delays, as Compose passes them ('' for BACKEND_DELAYS_MS: the backend's default, the seed's 1, 3, 5 and 10 s). */
export interface BackendDelayEnv {
  readonly BACKEND_DELAY_SCALE: string;
  readonly BACKEND_DELAYS_MS: string;
}

/**
 * The suite's own, as in the issue's measurements: /images/1 takes 1 ms, so latency under change
 * is the cluster's own. Ids 2 and 3 (150, 250 ms) overlap for the least-connections checks, and id
 * 4 stays slow (3 s) so that requests to it are reliably still in flight while others are
 * routed. (The backend accepts delays up to 600 s before scaling.)
 */
export const SUITE_DELAYS: BackendDelayEnv = { BACKEND_DELAY_SCALE: '0.01', BACKEND_DELAYS_MS: '100,15000,25000,300000' };

/** Durations of the Compose steps, for the report (`e2e/artifacts/compose-timings.json`). */
export type Timings = Record<string, number>;

/** A real Compose cluster on 127.0.0.1 with free host ports and its own project name. */
export interface Cluster {
  readonly compose: Compose;
  /** nginx: the page, /images/* (balancer data port) and /api/* (balancer admin). */
  readonly web: HttpClient;
  /** The balancer's published data port. */
  readonly balancer: HttpClient;
  readonly prometheus: HttpClient;
  readonly timings: Timings;
  /** build + `up -d --scale backend=N`, then wait until the balancer routes to all N. */
  start(replicas: number): Promise<void>;
  /** The active balancer's Snapshot through nginx (`/api/upstreams`). */
  snapshot(): Promise<Snapshot>;
  /** Every balancer replica's own Snapshot, read from its container address (admin port). */
  balancerSnapshots(): Promise<Snapshot[]>;
  /** `PUT /api/policy` on every balancer replica (with the cluster's admin token). */
  setPolicy(policy: string): Promise<void>;
  /** A request to the active balancer's admin API with the cluster's admin token; the parsed JSON answer. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  backends(): Promise<ContainerInfo[]>;
  /** `up -d --no-recreate --scale backend=N backend`; resolves with the command's duration (ms). */
  scale(replicas: number): Promise<number>;
  /**
   * `up -d --force-recreate --no-deps --scale backend=N backend` with `delays` (the rest of the
   * cluster stays), then waits until every balancer routes to the N new replicas. The delays are
   * set at a backend's start, so this is how they change. Other commands keep SUITE_DELAYS: call
   * this again without `delays` to go back.
   */
  recreateBackends(replicas: number, delays?: BackendDelayEnv): Promise<void>;
  /** See Balancers.waitForBackends. */
  waitForBackends(replicas: number, timeoutMs?: number): Promise<ContainerInfo[]>;
  /** Saves the logs, then `down -v --remove-orphans --rmi local`. Idempotent. */
  stop(): Promise<void>;
}

const log = (line: string): void => {
  console.log(`      [compose] ${line}`);
};

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
  const web = createHttpClient(`http://127.0.0.1:${frontendPort}`);
  const balancer = createHttpClient(`http://127.0.0.1:${lbPort}`);
  const prometheus = createHttpClient(`http://127.0.0.1:${prometheusPort}`);
  const timings: Timings = {};
  let started = false;
  let stopping: Promise<void> | undefined;

  const snapshot = (): Promise<Snapshot> => web.json<Snapshot>('/api/upstreams', 5_000);
  const backends = (): Promise<ContainerInfo[]> => compose.containers('backend');
  const balancers = createBalancers(compose, adminToken);
  const admin = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> => {
    const [active] = await balancers.origins();
    if (active === undefined) throw new Error('the active balancer is not running');
    return balancers.request(active, method, path, body);
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
        await mkdir(ARTIFACTS, { recursive: true });
        const logs = await compose.compose(['logs', '--no-color', '--tail=300'], 60_000);
        await writeFile(join(ARTIFACTS, 'compose-logs.txt'), logs.stdout + logs.stderr);
      } catch (err) {
        log(`could not save logs: ${err instanceof Error ? err.message : String(err)}`);
      }
      const down = await compose.compose(['down', '-v', '--remove-orphans', '--rmi', 'local'], 180_000);
      timings.downMs = Math.round(down.ms);
      log(`down -v --remove-orphans --rmi local: ${(down.ms / 1000).toFixed(1)} s`);
      await mkdir(ARTIFACTS, { recursive: true });
      await writeFile(join(ARTIFACTS, 'compose-timings.json'), `${JSON.stringify({ project, cli: compose.cli, ...timings }, null, 2)}\n`);
    }
    await Promise.all([web.close(), balancer.close(), prometheus.close(), balancers.close()]);
    await rm(tokenFile, { force: true });
  }

  return {
    compose,
    web,
    balancer,
    prometheus,
    timings,
    snapshot,
    balancerSnapshots: balancers.snapshots,
    setPolicy,
    admin,
    backends,
    waitForBackends: balancers.waitForBackends,
    async start(replicas) {
      log(`project ${project} via "${compose.cli}"; nginx 127.0.0.1:${frontendPort}, balancer 127.0.0.1:${lbPort}, prometheus 127.0.0.1:${prometheusPort}`);
      started = true;
      const build = await compose.compose(['build'], 900_000);
      timings.buildMs = Math.round(build.ms);
      log(`build: ${(build.ms / 1000).toFixed(1)} s`);
      const up = await compose.compose(['up', '-d', '--scale', `backend=${replicas}`], 300_000);
      timings.upMs = Math.round(up.ms);
      const readyStarted = performance.now();
      await balancers.waitForBackends(replicas, 90_000);
      timings.upToReadyMs = Math.round(performance.now() - readyStarted);
      log(`up -d --scale backend=${replicas}: ${(up.ms / 1000).toFixed(1)} s, then ${(timings.upToReadyMs / 1000).toFixed(1)} s until the balancer routes to all`);
    },
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
