import { run, type RunResult } from './exec.js';

/** One container of the project, as `docker inspect` reports it. */
export interface ContainerInfo {
  id: string;
  /** The container's hostname: the first 12 hex digits of its id; the backend's default id is `<hostname>:8002`. */
  hostname: string;
  /** Address on the project's `<project>_default` network, when attached. */
  ip: string | undefined;
  /** created | running | exited | ... */
  status: string;
  /** starting | healthy | unhealthy, or undefined without a healthcheck. */
  health: string | undefined;
  /** End time (ms since epoch) of the oldest passing health probe still in Docker's log of the last 5. */
  firstPassingProbeAt: number | undefined;
}

interface InspectEntry {
  Id: string;
  Config: { Hostname: string };
  State: {
    Status: string;
    Health?: { Status: string; Log: { End: string; ExitCode: number }[] | null };
  };
  NetworkSettings: { Networks: Record<string, { IPAddress: string } | undefined> | null };
}

/** A Docker Compose project driven through the CLI, with only flags that v1.29 and v2 share. */
export interface Compose {
  readonly project: string;
  /** `docker compose` (v2 or the v1 shim) or `docker-compose`, whichever answered. */
  readonly cli: string;
  /** Runs `<compose> ARGS` in the repository root with the project's environment. */
  compose(args: readonly string[], timeoutMs?: number): Promise<RunResult>;
  /** The project's containers of one service (running or not), found by Compose labels. */
  containers(service: string): Promise<ContainerInfo[]>;
}

export interface ComposeOptions {
  /** Directory holding docker-compose.yml. */
  root: string;
  /** COMPOSE_PROJECT_NAME: lowercase [a-z0-9]. */
  project: string;
  /** Extra environment for every compose command (ports, knobs). */
  env: Record<string, string>;
}

function parseInspect(entry: InspectEntry, network: string): ContainerInfo {
  const passing = (entry.State.Health?.Log ?? []).filter((l) => l.ExitCode === 0).map((l) => Date.parse(l.End));
  // Docker reports "" for a network the container has left.
  const ip = entry.NetworkSettings.Networks?.[network]?.IPAddress;
  return {
    id: entry.Id,
    hostname: entry.Config.Hostname,
    ip: ip === undefined || ip === '' ? undefined : ip,
    status: entry.State.Status,
    health: entry.State.Health?.Status,
    firstPassingProbeAt: passing.length > 0 ? Math.min(...passing) : undefined,
  };
}

/** Creates the driver; picks the CLI once (`docker compose` when it answers, else `docker-compose`). */
export async function createCompose(options: ComposeOptions): Promise<Compose> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // The legacy builder: the offline machines have no buildx (see compose-offline.md).
    DOCKER_BUILDKIT: process.env.DOCKER_BUILDKIT ?? '0',
    ...options.env,
    COMPOSE_PROJECT_NAME: options.project,
  };
  const v2 = await run('docker', ['compose', 'version'], { env, allowFailure: true, timeoutMs: 30_000 });
  const base = v2.code === 0 ? ['docker', 'compose'] : ['docker-compose'];
  const [cmd = 'docker-compose', ...prefix] = base;
  const network = `${options.project}_default`;

  return {
    project: options.project,
    cli: base.join(' '),
    compose(args, timeoutMs = 600_000) {
      return run(cmd, [...prefix, ...args], { cwd: options.root, env, timeoutMs });
    },
    async containers(service) {
      const ps = await run(
        'docker',
        ['ps', '-aq', '--no-trunc', '--filter', `label=com.docker.compose.project=${options.project}`, '--filter', `label=com.docker.compose.service=${service}`],
        { env, timeoutMs: 30_000 },
      );
      const ids = ps.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
      if (ids.length === 0) return [];
      // A container removed between `ps` and `inspect` makes inspect exit 1 but still print the rest.
      const inspected = await run('docker', ['inspect', ...ids], { env, timeoutMs: 30_000, allowFailure: true });
      const entries = JSON.parse(inspected.stdout.trim() || '[]') as InspectEntry[];
      return entries.map((e) => parseInspect(e, network));
    },
  };
}
