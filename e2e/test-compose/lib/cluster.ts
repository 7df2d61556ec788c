import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Snapshot } from './balancer-api.js';
import { createCompose, type Compose, type ContainerInfo } from './compose.js';
import { createHttpClient, type HttpClient } from './http.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root: docker-compose.yml and the build context. */
export const REPO_ROOT = resolve(here, '../../..');
/** e2e/artifacts: Compose logs and timings of the last run (ignored by git). */
export const ARTIFACTS = resolve(here, '../../artifacts');

/** The port every backend replica listens on inside the Compose network. */
export const BACKEND_PORT = 8002;
/** The balancer services: the active one (nginx sends it everything) and the hot standby. */
export const BALANCER_SERVICES = ['balancer', 'balancer-b'] as const;
/** The balancers' admin port inside the Compose network. */
export const ADMIN_PORT = 9001;

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
   * Waits until exactly N backend containers run and every balancer replica's available upstreams
   * are exactly their addresses; returns them. The balancers' own probes are the readiness that
   * counts (Docker's health checks are rare by design: they cost a `runc exec` each).
   */
  waitForBackends(replicas: number, timeoutMs?: number): Promise<ContainerInfo[]>;
  /** Saves the logs, then `down -v --remove-orphans --rmi local`. Idempotent. */
  stop(): Promise<void>;
}

/** `<ip>:8002`: the balancer's upstream id and Prometheus' instance label of a replica. */
export const upstreamIdOf = (c: ContainerInfo): string => `${c.ip ?? '?'}:${BACKEND_PORT}`;

const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && [...a].sort().join(' ') === [...b].sort().join(' ');

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
  const compose = await createCompose({
    root: REPO_ROOT,
    project,
    env: {
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
      // As in the issue's measurements: /images/1 takes 1 ms, so latency under change is the
      // cluster's own. Ids 2 and 3 (150, 250 ms) overlap for the least-connections checks, and id
      // 4 stays slow (3 s) so that requests to it are reliably still in flight while others are
      // routed. (The backend accepts delays up to 600 s before scaling.)
      BACKEND_DELAY_SCALE: '0.01',
      BACKEND_DELAYS_MS: '100,15000,25000,300000',
    },
  });
  const web = createHttpClient(`http://127.0.0.1:${frontendPort}`);
  const balancer = createHttpClient(`http://127.0.0.1:${lbPort}`);
  const prometheus = createHttpClient(`http://127.0.0.1:${prometheusPort}`);
  const timings: Timings = {};
  let started = false;
  let stopping: Promise<void> | undefined;

  const snapshot = (): Promise<Snapshot> => web.json<Snapshot>('/api/upstreams', 5_000);
  const backends = (): Promise<ContainerInfo[]> => compose.containers('backend');
  // The host reaches containers on the project's bridge network directly (never anything else).
  const balancerClients = new Map<string, HttpClient>();
  const balancerOrigins = async (): Promise<string[]> => {
    const containers = (await Promise.all(BALANCER_SERVICES.map((s) => compose.containers(s)))).flat().filter((b) => b.status === 'running');
    return containers.map((b) => {
      if (!b.ip) throw new Error(`balancer ${b.hostname} has no address yet`);
      return `http://${b.ip}:${ADMIN_PORT}`;
    });
  };
  const balancerSnapshots = async (): Promise<Snapshot[]> =>
    Promise.all(
      (await balancerOrigins()).map((origin) => {
        let client = balancerClients.get(origin);
        if (!client) balancerClients.set(origin, (client = createHttpClient(origin)));
        return client.json<Snapshot>('/api/upstreams', 5_000);
      }),
    );
  const admin = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> => {
    const active = (await compose.containers(BALANCER_SERVICES[0])).find((b) => b.status === 'running' && b.ip);
    if (!active?.ip) throw new Error('the active balancer is not running');
    const res = await fetch(`http://${active.ip}:${ADMIN_PORT}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: await res.json() };
  };
  const setPolicy = async (policy: string): Promise<void> => {
    for (const origin of await balancerOrigins()) {
      const res = await fetch(`${origin}/api/policy`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ policy }),
        signal: AbortSignal.timeout(5_000),
      });
      if (res.status !== 200) throw new Error(`PUT ${origin}/api/policy: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    }
  };

  // Each poll runs `docker ps` and `docker inspect` three times (backends and both balancers):
  // tens of ms of CPU each, which a tight loop would take from the cluster under measurement.
  async function waitForBackends(replicas: number, timeoutMs = 60_000): Promise<ContainerInfo[]> {
    return waitFor(
      async () => {
        const running = (await backends()).filter((c) => c.status === 'running');
        if (running.length !== replicas || running.some((c) => !c.ip)) return undefined;
        const views = await balancerSnapshots();
        if (views.length !== BALANCER_SERVICES.length) return undefined;
        const everywhere = views.every((v) => sameSet(v.upstreams.filter((u) => u.available).map((u) => u.id), running.map(upstreamIdOf)));
        return everywhere ? running : undefined;
      },
      { what: `${replicas} running backends, all available in every balancer`, timeoutMs, intervalMs: 1_000 },
    );
  }

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
    await Promise.all([web.close(), balancer.close(), prometheus.close(), ...[...balancerClients.values()].map((b) => b.close())]);
    await rm(tokenFile, { force: true });
  }

  return {
    compose,
    web,
    balancer,
    prometheus,
    timings,
    snapshot,
    balancerSnapshots,
    setPolicy,
    admin,
    backends,
    waitForBackends,
    async start(replicas) {
      log(`project ${project} via "${compose.cli}"; nginx 127.0.0.1:${frontendPort}, balancer 127.0.0.1:${lbPort}, prometheus 127.0.0.1:${prometheusPort}`);
      started = true;
      const build = await compose.compose(['build'], 900_000);
      timings.buildMs = Math.round(build.ms);
      log(`build: ${(build.ms / 1000).toFixed(1)} s`);
      const up = await compose.compose(['up', '-d', '--scale', `backend=${replicas}`], 300_000);
      timings.upMs = Math.round(up.ms);
      const readyStarted = performance.now();
      await waitForBackends(replicas, 90_000);
      timings.upToReadyMs = Math.round(performance.now() - readyStarted);
      log(`up -d --scale backend=${replicas}: ${(up.ms / 1000).toFixed(1)} s, then ${(timings.upToReadyMs / 1000).toFixed(1)} s until the balancer routes to all`);
    },
    async scale(replicas) {
      const result = await compose.compose(['up', '-d', '--no-recreate', '--scale', `backend=${replicas}`, 'backend'], 300_000);
      return result.ms;
    },
    stop() {
      stopping ??= stopOnce();
      return stopping;
    },
  };
}
