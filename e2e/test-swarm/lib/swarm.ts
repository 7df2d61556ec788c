import { REPO_ROOT } from '../../../scripts/cluster-lib.mjs';
import { saveArtifact } from '../../lib/artifacts.js';
import { readSnapshot, type Snapshot } from '../../lib/balancer-api.js';
import type { ClusterHarness, Figures } from '../../lib/cluster-harness.js';
import { parseInspect, type ContainerInfo } from '../../lib/docker-inspect.js';
import { run, type RunResult } from '../../lib/exec.js';
import { freePort } from '../../lib/ports.js';
import { createPublishedClients } from '../../lib/published-clients.js';
import { waitForRoutedBackends } from '../../lib/routed-backends.js';
import { SUITE_DELAYS } from '../../lib/suite-delays.js';
import { taggedLog } from '../../lib/tagged-log.js';

/**
 * Fixed names, so that a run killed hard (SIGKILL, machine reboot) leaves leftovers the next run
 * recognises and removes: the stack `lcbe2e` and the images `lcb-*:e2e`.
 */
export const STACK = 'lcbe2e';
export const IMAGE_TAG = 'e2e';
const SWARM_SH = 'deploy/swarm/swarm.sh';
/** Balancer tasks the stack runs (deploy/swarm/docker-stack.yml: BALANCER_REPLICAS, 2). */
export const BALANCER_TASKS = 2;
/** The balancers' admin port on the stack's network. */
const ADMIN_PORT = 9001;
/** Networks Swarm itself creates on a node (besides the stack's own `<stack>_default`). */
export const SWARM_NETWORKS = ['docker_gwbridge', 'ingress'] as const;

/** One container of a service's task. */
export interface TaskContainer extends ContainerInfo {
  taskId: string;
}

/** What teardown left behind; every list is empty after a clean `down`. */
export interface TeardownReport {
  swarmState: string;
  containers: string[];
  /** Networks present now that were not there before the run. */
  newNetworks: string[];
  /** Swarm's own networks (docker_gwbridge, ingress) still present. */
  swarmNetworks: string[];
  images: string[];
  /** Why `swarm.sh down` failed, if it did. */
  error: string | undefined;
  ms: number;
}

/** A one-node swarm on this Docker daemon, running the stack with host-mode ports on 127.0.0.1. */
export interface SwarmCluster extends ClusterHarness<TaskContainer> {
  readonly stack: string;
  /** `docker ...` with the run's environment; rejects on a non-zero exit. */
  docker(args: readonly string[], timeoutMs?: number): Promise<RunResult>;
  /** Containers of a service's tasks (running or not); `backends()` is `tasks('backend')`. */
  tasks(service: string): Promise<TaskContainer[]>;
  /** The service's virtual IPs (one per network). */
  virtualIps(service: string): Promise<string[]>;
  /** Saves the service logs and figures, then `swarm.sh down` (stack, swarm, networks, images); what is left. Idempotent. */
  stop(): Promise<TeardownReport>;
}

const lines = (text: string): string[] => text.split('\n').map((s) => s.trim()).filter(Boolean);

const log = taggedLog('swarm');

/** Picks ports; starts nothing yet. */
export async function createSwarmCluster(): Promise<SwarmCluster> {
  const [frontendPort, lbPort, prometheusPort] = [await freePort(), await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LCB_STACK: STACK,
    LCB_IMAGE_TAG: IMAGE_TAG,
    // Host mode: the port is bound on this node only, and the tests send traffic to 127.0.0.1 only.
    // (Swarm has no per-address publishing; the routing mesh would also need IPVS in the kernel.)
    LCB_PUBLISH_MODE: 'host',
    FRONTEND_PORT: String(frontendPort),
    LB_PORT_PUBLISHED: String(lbPort),
    PROMETHEUS_PORT: String(prometheusPort),
    // The same images as the Compose suite: 1, 150, 250 ms and one slow 3 s.
    ...SUITE_DELAYS,
    LCB_WAIT_S: '180',
    LCB_REMOVE_IMAGES: '1',
  };
  const clients = createPublishedClients({ frontend: frontendPort, balancer: lbPort, prometheus: prometheusPort });
  const figures: Figures = {};
  const network = `${STACK}_default`;
  let networksBefore: string[] | undefined;
  let started = false;
  let stopping: Promise<TeardownReport> | undefined;

  const docker = (args: readonly string[], timeoutMs = 60_000): Promise<RunResult> => run('docker', args, { env, timeoutMs });
  const swarmSh = (command: 'build' | 'up' | 'down', extra: Record<string, string> = {}, timeoutMs = 600_000): Promise<RunResult> =>
    run('bash', [SWARM_SH, command], { cwd: REPO_ROOT, env: { ...env, ...extra }, timeoutMs });
  const swarmState = async (): Promise<string> => (await docker(['info', '--format', '{{.Swarm.LocalNodeState}}'])).stdout.trim();
  const networkNames = async (): Promise<string[]> => lines((await docker(['network', 'ls', '--format', '{{.Name}}'])).stdout);

  async function tasks(service: string): Promise<TaskContainer[]> {
    const ps = await docker(['ps', '-aq', '--no-trunc', '--filter', `label=com.docker.swarm.service.name=${STACK}_${service}`]);
    const ids = lines(ps.stdout);
    if (ids.length === 0) return [];
    // A container removed between `ps` and `inspect` makes inspect exit 1 but still print the rest.
    const inspected = await run('docker', ['inspect', ...ids], { env, timeoutMs: 30_000, allowFailure: true });
    return parseInspect(inspected.stdout, network).map((c) => ({ ...c, taskId: c.labels['com.docker.swarm.task.id'] ?? '' }));
  }

  /**
   * Every running balancer task's own Snapshot. The stack's overlay network is not reachable from
   * the host, so nginx's container asks them (its image has curl): one `docker exec` for all.
   */
  async function balancerSnapshots(): Promise<Snapshot[]> {
    const [balancers, frontends] = await Promise.all([tasks('balancer'), tasks('frontend')]);
    const urls = balancers.filter((t) => t.status === 'running' && t.ip).map((t) => `http://${t.ip ?? ''}:${ADMIN_PORT}/api/upstreams`);
    const frontend = frontends.find((t) => t.status === 'running');
    if (!frontend) throw new Error('no running frontend task to reach the balancers from');
    if (urls.length === 0) return [];
    // Koa answers compact JSON: one line per balancer.
    const res = await docker(['exec', frontend.id, 'curl', '-fsS', '--max-time', '5', '-w', '\n', ...urls], 30_000);
    return lines(res.stdout).map((line) => JSON.parse(line) as Snapshot);
  }

  function waitForBackends(replicas: number, timeoutMs = 90_000): Promise<TaskContainer[]> {
    return waitForRoutedBackends(
      replicas,
      {
        backends: () => tasks('backend'),
        requireHealthy: true,
        views: async () => {
          const views = await balancerSnapshots();
          return views.length === BALANCER_TASKS ? views : undefined;
        },
      },
      // Every poll runs seven docker CLI calls (an exec among them): once a second on two shared cores.
      { what: `${replicas} healthy backend tasks, all up and available in every balancer task`, timeoutMs, intervalMs: 1_000 },
    );
  }

  /** A swarm is the whole daemon's: run only on one this suite (or `make swarm-up`) created and that runs nothing else. */
  async function preflight(): Promise<void> {
    if ((await swarmState()) === 'active') {
      log('a swarm is active: removing leftovers of an earlier run (stack lcbe2e) first');
      await swarmSh('down', {}, 300_000);
    }
    const state = await swarmState();
    if (state !== 'inactive') {
      const services = (await docker(['service', 'ls', '--format', '{{.Name}}'], 30_000).catch(() => undefined))?.stdout ?? '';
      throw new Error(
        `refusing to run: this Docker daemon is in a swarm (${state}) that the test did not create or that runs other services (${lines(services).join(', ') || 'none'}); ` +
          'run `make swarm-down`, or `docker swarm leave --force` if the swarm is yours',
      );
    }
  }

  async function saveLogs(): Promise<void> {
    try {
      const parts: string[] = [];
      for (const service of ['frontend', 'balancer', 'backend', 'prometheus']) {
        const res = await run('docker', ['service', 'logs', '--no-trunc', '--timestamps', '--tail', '300', `${STACK}_${service}`], {
          env,
          timeoutMs: 30_000,
          allowFailure: true,
        });
        parts.push(`==== ${STACK}_${service} ====\n${res.stdout}${res.stderr}`);
      }
      await saveArtifact('swarm-logs.txt', parts.join('\n'));
    } catch (err) {
      log(`could not save logs: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  async function stopOnce(): Promise<TeardownReport> {
    const started_ = performance.now();
    let error: string | undefined;
    if (started) {
      await saveLogs();
      try {
        await swarmSh('down', {}, 300_000);
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      }
    }
    const ms = performance.now() - started_;
    const now = await networkNames();
    const report: TeardownReport = {
      swarmState: await swarmState(),
      containers: lines((await docker(['ps', '-aq', '--filter', `label=com.docker.stack.namespace=${STACK}`])).stdout),
      newNetworks: now.filter((n) => !(networksBefore ?? now).includes(n)),
      swarmNetworks: now.filter((n) => (SWARM_NETWORKS as readonly string[]).includes(n)),
      images: lines((await docker(['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}', '--filter', `reference=lcb-*:${IMAGE_TAG}`])).stdout),
      error,
      ms,
    };
    if (started) {
      figures.teardownMs = Math.round(ms);
      log(`swarm.sh down: ${(ms / 1000).toFixed(1)} s`);
      await saveArtifact('swarm-timings.json', `${JSON.stringify({ stack: STACK, ...figures }, null, 2)}\n`);
    }
    await clients.close();
    return report;
  }

  return {
    stack: STACK,
    web: clients.web,
    balancer: clients.balancer,
    prometheus: clients.prometheus,
    figures,
    docker,
    snapshot: () => readSnapshot(clients.web),
    balancerSnapshots,
    tasks,
    backends: () => tasks('backend'),
    waitForBackends,
    // Refuses a swarm it did not create, builds, `swarm.sh up` with N backends, waits until the balancer routes to all.
    async start(replicas) {
      await preflight();
      // Recorded after the leftovers are gone: everything new from here on is this run's.
      networksBefore = await networkNames();
      started = true;
      log(`stack ${STACK}: nginx 127.0.0.1:${frontendPort}, balancer 127.0.0.1:${lbPort}, prometheus 127.0.0.1:${prometheusPort}`);
      const build = await swarmSh('build', {}, 900_000);
      figures.buildMs = Math.round(build.ms);
      log(`build (docker-compose.yml + deploy/swarm/images.yml): ${(build.ms / 1000).toFixed(1)} s`);
      const up = await swarmSh('up', { LCB_SKIP_BUILD: '1', BACKEND_REPLICAS: String(replicas) }, 300_000);
      figures.initDeployConvergeMs = Math.round(up.ms);
      const readyStarted = performance.now();
      await waitForBackends(replicas, 90_000);
      figures.convergedToRoutingMs = Math.round(performance.now() - readyStarted);
      log(
        `swarm init + stack deploy + all ${replicas + 3} services healthy: ${(up.ms / 1000).toFixed(1)} s, ` +
          `then ${(figures.convergedToRoutingMs / 1000).toFixed(1)} s until the balancer routes to all ${replicas} backend tasks`,
      );
    },
    async scale(replicas) {
      // --detach: return at once; the tests watch convergence themselves (tasks, balancer).
      return (await docker(['service', 'scale', '--detach', `${STACK}_backend=${replicas}`])).ms;
    },
    async virtualIps(service) {
      const res = await docker(['service', 'inspect', '--format', '{{json .Endpoint.VirtualIPs}}', `${STACK}_${service}`]);
      const vips = (JSON.parse(res.stdout.trim() || 'null') as { Addr: string }[] | null) ?? [];
      return vips.map((v) => v.Addr.replace(/\/\d+$/, ''));
    },
    stop() {
      stopping ??= stopOnce();
      return stopping;
    },
  };
}
