/**
 * How long the cluster's backends take for each image, so that the load tool knows what each
 * request is expected to take: a 10 s image that answers in 10.1 s is not slow, a 1 ms one that
 * answers in 0.6 s is. Read from the running backend containers' environment (BACKEND_DELAYS_MS,
 * BACKEND_DELAY_SCALE) and interpreted by the backend's own parseConfig, defaults included: the
 * backend's /info does not report its delays, and Docker is what `make chaos` reaches the cluster
 * through anyway.
 */
import { parseConfig } from '../../services/backend/src/config.js';
import type { Compose } from '../test-compose/lib/compose.js';
import { run } from '../test-compose/lib/exec.js';
import { ms } from './report.js';

export interface BackendDelays {
  /** BACKEND_DELAY_SCALE. */
  readonly scale: number;
  /** What each image takes at that scale: index 0 is /images/1. */
  readonly imageMs: readonly number[];
}

/** Every image in turn: the stream of `make chaos` and of the seed-delay scale-down (1–10 s at scale 1). */
export const MIXED_IMAGES: readonly string[] = ['/images/1', '/images/2', '/images/3', '/images/4'];

/** The delays of a backend started with `env` (`KEY=value` lines, as `docker inspect` lists them). */
export function delaysFromEnv(env: readonly string[]): BackendDelays {
  const vars = Object.fromEntries(env.map((line) => [line.slice(0, Math.max(0, line.indexOf('='))), line.slice(line.indexOf('=') + 1)]));
  const parsed = parseConfig([], vars, 'backend');
  if (parsed.kind !== 'config') throw new Error(`the backend's environment is not a valid configuration: ${parsed.kind === 'errors' ? parsed.errors.join('; ') : parsed.kind}`);
  const { delaysMs, delayScale } = parsed.config;
  // Rounded as the backend rounds its timers (services/backend/src/app.ts).
  return { scale: delayScale, imageMs: delaysMs.map((d) => Math.round(d * delayScale)) };
}

/** Path -> expected time (ms), for OpenLoopOptions.expectedMs. */
export const expectedByPath = (delays: BackendDelays): Record<string, number> =>
  Object.fromEntries(delays.imageMs.map((t, i) => [`/images/${i + 1}`, t]));

/** `delay scale 1: /images/1..4 take 1.00 s, 3.00 s, 5.00 s, 10.00 s`. */
export const describeDelays = (delays: BackendDelays): string =>
  `delay scale ${delays.scale}: /images/1..${delays.imageMs.length} take ${delays.imageMs.map(ms).join(', ')}`;

/**
 * The delays of the project's running backends, read from their containers; fails when there is
 * none or when they differ (some recreated with other settings): no expected time would be right.
 */
export async function readBackendDelays(compose: Compose): Promise<BackendDelays & { readonly replicas: number }> {
  const running = (await compose.containers('backend')).filter((c) => c.status === 'running');
  if (running.length === 0) throw new Error(`project ${compose.project} has no running backend (make up first)`);
  const inspected = await run('docker', ['inspect', '--format', '{{json .Config.Env}}', ...running.map((c) => c.id)], { timeoutMs: 30_000 });
  const found = inspected.stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => delaysFromEnv(JSON.parse(line) as string[]));
  const distinct = [...new Set(found.map(describeDelays))];
  const [first] = found;
  if (first === undefined || distinct.length > 1) throw new Error(`the backends run with different delays (${distinct.join(' | ')}): recreate them with one setting`);
  return { ...first, replicas: found.length };
}
