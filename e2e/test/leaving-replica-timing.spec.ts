/**
 * A replica that is scaled away must be out of every balancer's rotation before it stops
 * listening. After SIGTERM the backend keeps serving with /healthz at 503 for
 * BACKEND_SHUTDOWN_DELAY_MS, then refuses connections, finishes what it has and exits; once its
 * container is gone its address answers nothing, and a connect to it waits the balancer's whole
 * connect timeout (500 ms) before the request is retried elsewhere: a slow request for the user.
 *
 * The balancer needs, at worst, one whole probe interval (the replica was probed just before the
 * signal), then `fall - 1` more probes at the down interval, each answered at once. The Compose
 * defaults were short of that: a 2.5 s delay against 2 s + 250 ms of probe schedule left 0.25 s
 * for round trips and timer lag, and a CI log showed a balancer marking leaving replicas down
 * 2.2-2.9 s after the scale command began. These checks read the real files
 * with the balancer's own config parser, so changing either side alone fails them.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '../../scripts/cluster-lib.mjs';
import { parseConfig as parseBalancerConfig } from '../../services/balancer/src/config.js';
import { drainBudgetMs, parseConfig as parseBackendConfig } from '../../services/backend/src/config.js';

/**
 * The probes' own round trips and timer lag on a machine busy with a scale event (CI saw the load
 * generator's timers 200 ms late, and the 250 ms that was left was not enough).
 */
const MARGIN_MS = 1000;

type Env = Record<string, string>;

/** Compose's `${VAR:-default}` / `${VAR}` with nothing set in the shell: the default, or unset. */
function composeDefaults(environment: Record<string, string | number | null> | undefined): Env {
  const env: Env = {};
  for (const [key, raw] of Object.entries(environment ?? {})) {
    if (raw === null) continue;
    const value = String(raw).replace(/\$\{[A-Z0-9_]+(?::-([^}]*))?\}/g, (_m, fallback: string | undefined) => fallback ?? '');
    if (value !== '') env[key] = value;
  }
  return env;
}

/**
 * The probe schedule's worst case from the moment /healthz starts failing to the replica marked
 * down: a whole interval, then `fall - 1` probes at the down interval (the leaving replica answers
 * 503 at once, so the probe timeout does not come into it; MARGIN_MS covers the round trips).
 */
function detectionBoundMs(env: Env): number {
  const parsed = parseBalancerConfig([], env, () => '');
  if (parsed.kind !== 'config') throw new Error(`the balancer refused its settings: ${JSON.stringify(parsed)}`);
  const { intervalMs, downIntervalMs, fall } = parsed.config.health;
  return intervalMs + (fall - 1) * downIntervalMs;
}

function backendConfig(env: Env): { shutdownDelayMs: number; drainMs: number } {
  const parsed = parseBackendConfig([], env, 'replica');
  if (parsed.kind !== 'config') throw new Error(`the backend refused its settings: ${JSON.stringify(parsed)}`);
  return { shutdownDelayMs: parsed.config.shutdownDelayMs, drainMs: drainBudgetMs(parsed.config) };
}

const seconds = (text: string): number => {
  const m = /^(\d+)s$/.exec(text);
  if (!m) throw new Error(`unexpected duration ${text}`);
  return Number(m[1]) * 1000;
};

interface ComposeService {
  environment?: Record<string, string | number | null>;
  stop_grace_period?: string;
}

describe('a leaving replica is out of rotation before it stops listening', () => {
  let services: Record<string, ComposeService>;
  before(async () => {
    const doc = parse(await readFile(join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
    services = doc.services;
  });

  it('docker-compose.yml: the backends\' shutdown delay covers the balancers\' worst-case detection plus a margin', () => {
    const backend = backendConfig(composeDefaults(services.backend?.environment));
    const bound = detectionBoundMs(composeDefaults(services.balancer?.environment));
    assert.ok(backend.shutdownDelayMs >= bound + MARGIN_MS, `BACKEND_SHUTDOWN_DELAY_MS ${backend.shutdownDelayMs} ms < detection ${bound} ms + ${MARGIN_MS} ms margin`);
  });

  it('docker-compose.yml: stop_grace_period covers the shutdown delay and the drain of the slowest image', () => {
    const backend = backendConfig(composeDefaults(services.backend?.environment));
    const grace = seconds(services.backend?.stop_grace_period ?? '10s');
    assert.ok(grace >= backend.shutdownDelayMs + backend.drainMs, `stop_grace_period ${grace} ms < ${backend.shutdownDelayMs} + ${backend.drainMs} ms`);
  });

  it('deploy/swarm: the same for the stack\'s tasks (Swarm\'s own DNS removal before SIGTERM is not counted on)', async () => {
    const doc = parse(await readFile(join(REPO_ROOT, 'deploy', 'swarm', 'docker-stack.yml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
    const backend = backendConfig(composeDefaults(doc.services.backend?.environment));
    const bound = detectionBoundMs(composeDefaults(doc.services.balancer?.environment));
    assert.ok(backend.shutdownDelayMs >= bound + MARGIN_MS, `BACKEND_SHUTDOWN_DELAY_MS ${backend.shutdownDelayMs} ms < detection ${bound} ms + ${MARGIN_MS} ms margin`);
    const grace = seconds(doc.services.backend?.stop_grace_period ?? '10s');
    assert.ok(grace >= backend.shutdownDelayMs + backend.drainMs, `stop_grace_period ${grace} ms < ${backend.shutdownDelayMs} + ${backend.drainMs} ms`);
  });

  it('deploy/k8s: the configmap\'s shutdown delay covers the balancer\'s detection, and the grace period the drain', async () => {
    const docs = (await readFile(join(REPO_ROOT, 'deploy', 'k8s', 'configmap.yaml'), 'utf8')).split(/^---$/m).map((d) => parse(d) as { kind?: string; data?: Env } | null);
    const data = docs.find((d) => d?.kind === 'ConfigMap')?.data ?? {};
    const backend = backendConfig(Object.fromEntries(Object.entries(data).filter(([k]) => k.startsWith('BACKEND_'))));
    // The discovery name is built in the Deployment from the pod's namespace; any name will do here.
    const bound = detectionBoundMs({ LB_DISCOVERY_DNS: 'backend', ...Object.fromEntries(Object.entries(data).filter(([k]) => k.startsWith('LB_'))) });
    assert.ok(backend.shutdownDelayMs >= bound + MARGIN_MS, `BACKEND_SHUTDOWN_DELAY_MS ${backend.shutdownDelayMs} ms < ${bound} + ${MARGIN_MS} ms`);
    const deployment = (await readFile(join(REPO_ROOT, 'deploy', 'k8s', 'backend.yaml'), 'utf8'))
      .split(/^---$/m)
      .map((d) => parse(d) as { kind?: string; spec?: { template?: { spec?: { terminationGracePeriodSeconds?: number } } } } | null)
      .find((d) => d?.kind === 'Deployment');
    const grace = (deployment?.spec?.template?.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
    assert.ok(grace >= backend.shutdownDelayMs + backend.drainMs, `terminationGracePeriodSeconds ${grace} ms < ${backend.shutdownDelayMs} + ${backend.drainMs} ms`);
  });
});
