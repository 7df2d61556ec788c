import { parseInspect, type ContainerInfo } from '../../lib/docker-inspect.js';
import { run, type RunResult } from '../../lib/exec.js';

export type { ContainerInfo } from '../../lib/docker-inspect.js';

/** A Docker Compose project driven through the CLI, with only flags that v1.29 and v2 share. */
export interface Compose {
  readonly project: string;
  /** `docker compose` (v2 or the v1 shim) or `docker-compose`, whichever answered. */
  readonly cli: string;
  /** Runs `<compose> ARGS` in the repository root with the project's environment. */
  compose(args: readonly string[], timeoutMs?: number): Promise<RunResult>;
  /** Runs another command (a script of the repository, say) in the repository root with the project's environment. */
  command(cmd: string, args: readonly string[], timeoutMs?: number): Promise<RunResult>;
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

/** Creates the driver; picks the CLI once (`docker compose` when it answers, else `docker-compose`). */
export async function createCompose(options: ComposeOptions): Promise<Compose> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
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
    command(other, args, timeoutMs = 600_000) {
      return run(other, args, { cwd: options.root, env, timeoutMs });
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
      return parseInspect(inspected.stdout, network);
    },
  };
}
