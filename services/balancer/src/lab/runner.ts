/**
 * The algorithm lab's load generator: open-loop traffic from the balancer's own admin side to its
 * own data port, one run at a time.
 *
 * Open loop: requests leave at the times the seeded schedule says, whether or not earlier ones
 * have answered, and each latency is measured from its *scheduled* send time. A closed-loop tool
 * (N clients, each waiting for its answer) sends less when the system slows down and so never
 * records the wait it caused (coordinated omission); here a stall shows up in every request
 * that should have left during it.
 *
 * Bounded: rate, duration and outstanding requests are capped (see LIMITS); requests over the cap
 * are not sent and counted apart ("dropped", never errors: the upstreams did not fail them), so an
 * overloaded run says so instead of queueing without end. A run that would mostly drop is refused
 * before it starts (check, capacity.ts).
 */
import type { Logger } from 'pino';
import { Pool } from 'undici';
import { POLICIES } from '../picker/policy.js';
import type { PolicyName, PolicySetting } from '../picker/policy.js';
import type { UpstreamTable } from '../upstreams/registry.js';
import { assessCapacity, probeDeadlineMs } from './capacity.js';
import type { CapacityCheck } from './capacity.js';
import { probeImages } from './probe.js';
import type { Fault, ScenarioRelay } from './scenario-relay.js';
import { jainIndex, quantile, round2 } from './stats.js';
import { schedule } from './traffic.js';
import type { Arrival, TrafficSpec } from './traffic.js';

/** The caps the admin API enforces on a spec. */
export const LIMITS = Object.freeze({ maxRate: 2000, maxDurationMs: 120_000, maxConcurrency: 1000, defaultConcurrency: 256, requestTimeoutMs: 10_000 });

/** What to send, and optionally which fault to switch on in one replica for the time of it. */
export interface LabSpec extends TrafficSpec {
  /** Most requests outstanding at once (connections to the data port); more are dropped. */
  readonly concurrency: number;
  readonly delayScale: number;
  /** Policies to compare, in order (compare only; default all). */
  readonly policies?: readonly PolicyName[];
  readonly scenario?: { readonly upstream: string; readonly fault: Fault };
}

/** One upstream over one run. */
export interface UpstreamResult {
  readonly id: string;
  readonly requests: number;
  /** Share of the run's answered requests, 0..1. */
  readonly share: number;
  readonly errors: number;
  readonly maxInFlight: number;
  readonly meanInFlight: number;
}

/** One policy over the whole schedule. */
export interface RunResult {
  readonly policy: PolicyName;
  /** Scheduled, the dropped ones included. */
  readonly requests: number;
  /** Sent and failed: a 5xx, a reset, a timeout. */
  readonly errors: number;
  /** Not sent: over the cap on open requests. */
  readonly dropped: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  /** The scenario's replica and its share of requests (null without a scenario). */
  readonly badUpstream: string | null;
  readonly badShare: number | null;
  /** Jain's fairness index of requests per upstream: 1 = perfectly even. */
  readonly jain: number;
  readonly upstreams: readonly UpstreamResult[];
}

export type LabState = 'idle' | 'running' | 'done' | 'failed' | 'cancelled';

/** Where the lab is; what `/api/lab` answers and every progress event carries. */
export interface LabStatus {
  readonly state: LabState;
  readonly kind: 'run' | 'compare' | null;
  readonly spec: LabSpec | null;
  readonly progress: {
    readonly policy: PolicyName;
    readonly index: number;
    readonly of: number;
    readonly elapsedMs: number;
    readonly durationMs: number;
    readonly sent: number;
    readonly completed: number;
    readonly errors: number;
    readonly dropped: number;
    /** The unmeasured first second (see WARM_UP_MS); index is 0 then. */
    readonly warmUp: boolean;
  } | null;
  readonly results: readonly RunResult[];
  /** The available upstreams when the run started: the cluster the results came from. */
  readonly cluster: { readonly size: number; readonly upstreams: readonly string[] } | null;
  /** The capacity check the run passed (its probe, expected open requests, warnings). */
  readonly check: CapacityCheck | null;
  readonly error: string | null;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
}

export interface LabRunnerDeps {
  /** `http://host:port` of this balancer's data port, once it listens. */
  readonly dataUrl: () => string;
  readonly upstreams: UpstreamTable;
  readonly policy: PolicySetting;
  readonly relay: ScenarioRelay;
  readonly logger: Logger;
}

export interface LabRunner {
  status(): LabStatus;
  /** Probes the cluster and judges whether `spec` can be measured on it (capacity.ts). */
  check(spec: LabSpec): Promise<CapacityCheck>;
  /**
   * Starts a run (the current policy) or a comparison (each policy in turn), with the check it
   * passed; false when one is running.
   */
  start(kind: 'run' | 'compare', spec: LabSpec, check?: CapacityCheck): boolean;
  cancel(): void;
  /** Hears every status change and progress tick; returns the unsubscribe. */
  subscribe(listener: (status: LabStatus) => void): () => void;
  /** Cancels a run and waits for it. Idempotent. */
  stop(): Promise<void>;
}

const PROGRESS_MS = 250;
const SAMPLE_MS = 10;
/** Longest wait for the previous policy's requests to leave the upstreams before the next run. */
const SETTLE_MS = 10_000;
/**
 * The schedule's first second is sent once before the measured runs and thrown away: otherwise the
 * first policy alone pays for cold processes (JIT, new connections, latency estimates still
 * empty) that every later one finds done. On a fresh `npm start` cluster that put least-connections,
 * always first, at twice the p99 of the others.
 */
const WARM_UP_MS = 1000;

const IDLE: LabStatus = Object.freeze({ state: 'idle', kind: null, spec: null, progress: null, results: [], cluster: null, check: null, error: null, startedAt: null, finishedAt: null });

export function createLabRunner(deps: LabRunnerDeps): LabRunner {
  const { logger } = deps;
  let status: LabStatus = IDLE;
  let running: Promise<void> | undefined;
  let cancelled = false;
  let wake: (() => void) | undefined;
  /** Cuts the current run's outstanding requests (a hanging replica would hold cancel for 10 s). */
  let abortRun: (() => void) | undefined;
  const listeners = new Set<(s: LabStatus) => void>();

  const publish = (next: LabStatus): void => {
    status = next;
    for (const l of listeners) l(status);
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(() => {
        wake = undefined;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(t);
        wake = undefined;
        resolve();
      };
    });

  /** Sends the schedule once under the policy in force and measures it. */
  const runOnce = async (policy: PolicyName, index: number, of: number, arrivals: readonly Arrival[], spec: LabSpec, warmUp = false): Promise<RunResult> => {
    const pool = new Pool(deps.dataUrl(), {
      connections: spec.concurrency,
      headersTimeout: LIMITS.requestTimeoutMs,
      bodyTimeout: LIMITS.requestTimeoutMs,
      pipelining: 1,
    });
    abortRun = () => {
      pool.destroy().catch(() => undefined);
    };
    const latencies: number[] = [];
    // Per upstream, the balancer's own counts over the run (attempts finished, errors), not a
    // response header: X-Upstream is opt-in, and a retried request counts on both upstreams it
    // tried. Other traffic during the run counts too; the page says so.
    const countsNow = (): Map<string, { requests: number; errors: number }> =>
      new Map(deps.upstreams.list().map((u) => [u.id, { requests: u.requests, errors: u.errors }]));
    const before = countsNow();
    const load = new Map<string, { sum: number; max: number }>();
    // One object, not six variables: the sampler, the sender and the progress ticker all update it.
    const n = { samples: 0, sent: 0, completed: 0, errors: 0, dropped: 0, outstanding: 0 };
    const t0 = performance.now();

    const sampler = setInterval(() => {
      n.samples++;
      for (const u of deps.upstreams.list()) {
        const l = load.get(u.id) ?? { sum: 0, max: 0 };
        l.sum += u.inFlight;
        l.max = Math.max(l.max, u.inFlight);
        load.set(u.id, l);
      }
    }, SAMPLE_MS);
    const progress = setInterval(() => {
      publish({ ...status, progress: { policy, index, of, elapsedMs: Math.round(performance.now() - t0), durationMs: spec.durationMs, sent: n.sent, completed: n.completed, errors: n.errors, dropped: n.dropped, warmUp } });
    }, PROGRESS_MS);

    let allSent: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => {
      allSent = resolve;
    });
    let next = 0;
    let doneSending = false;
    const maybeDone = (): void => {
      if (doneSending && n.outstanding === 0) allSent();
    };

    const send = (a: Arrival): void => {
      n.sent++;
      if (n.outstanding >= spec.concurrency) {
        n.dropped++;
        n.completed++;
        return;
      }
      n.outstanding++;
      const scheduled = t0 + a.at;
      const count = (failed: boolean): void => {
        latencies.push(performance.now() - scheduled);
        n.completed++;
        if (failed) n.errors++;
      };
      pool
        .request({ path: a.path, method: 'GET' })
        .then(async (res) => {
          // The whole body: latency is until the last byte, as a user sees it.
          await res.body.arrayBuffer();
          count(res.statusCode >= 500);
        })
        .catch(() => {
          count(true);
        })
        .finally(() => {
          n.outstanding--;
          maybeDone();
        });
    };

    let timer: NodeJS.Timeout | undefined;
    const tick = (): void => {
      timer = undefined;
      const now = performance.now() - t0;
      while (next < arrivals.length && !cancelled) {
        const a = arrivals[next];
        if (a === undefined || a.at > now) break;
        send(a);
        next++;
      }
      const upcoming = arrivals[next];
      if (upcoming === undefined || cancelled) {
        doneSending = true;
        maybeDone();
        return;
      }
      timer = setTimeout(tick, Math.max(0, upcoming.at - (performance.now() - t0)));
    };
    tick();
    try {
      await finished;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      clearInterval(sampler);
      clearInterval(progress);
      abortRun = undefined;
      if (!pool.destroyed) await pool.close();
    }

    latencies.sort((a, b) => a - b);
    const after = countsNow();
    const served = new Map([...after].map(([id, c]) => [id, { requests: c.requests - (before.get(id)?.requests ?? 0), errors: c.errors - (before.get(id)?.errors ?? 0) }]));
    const answered = [...served.values()].reduce((sum, c) => sum + c.requests, 0);
    const upstreams: UpstreamResult[] = [...served.keys()].sort().map((id) => {
      const s = served.get(id) ?? { requests: 0, errors: 0 };
      const l = load.get(id) ?? { sum: 0, max: 0 };
      return {
        id,
        requests: s.requests,
        // Four decimals, not round2(%) / 100: that division brings back binary fractions (0.029500000000000002).
        share: answered === 0 ? 0 : Math.round((s.requests / answered) * 10_000) / 10_000,
        errors: s.errors,
        maxInFlight: l.max,
        meanInFlight: n.samples === 0 ? 0 : round2(l.sum / n.samples),
      };
    });
    const bad = spec.scenario?.upstream ?? null;
    return {
      policy,
      requests: n.sent,
      errors: n.errors,
      dropped: n.dropped,
      p50Ms: round2(quantile(latencies, 0.5)),
      p99Ms: round2(quantile(latencies, 0.99)),
      p999Ms: round2(quantile(latencies, 0.999)),
      maxMs: round2(latencies.at(-1) ?? 0),
      badUpstream: bad,
      badShare: bad === null ? null : (upstreams.find((u) => u.id === bad)?.share ?? 0),
      jain: Math.round(jainIndex(upstreams.map((u) => u.requests)) * 1000) / 1000,
      upstreams,
    };
  };

  const settle = async (): Promise<void> => {
    const deadline = Date.now() + SETTLE_MS;
    while (deps.upstreams.inFlight() > 0 && Date.now() < deadline && !cancelled) await sleep(20);
  };

  const execute = async (kind: 'run' | 'compare', spec: LabSpec): Promise<void> => {
    const original = deps.policy.current;
    const order: readonly PolicyName[] = kind === 'run' ? [original] : (spec.policies ?? POLICIES);
    const arrivals = schedule(spec);
    const results: RunResult[] = [];
    const scenario = spec.scenario;
    try {
      if (scenario !== undefined) {
        const reply = await deps.relay.apply(scenario.upstream, scenario.fault);
        if (reply.status !== 200) throw new Error(`the backend refused the scenario: ${reply.status} ${JSON.stringify(reply.body)}`);
      }
      const first = order[0];
      if (first !== undefined && !cancelled) {
        deps.policy.set(first);
        await settle();
        await runOnce(first, 0, order.length, arrivals.filter((a) => a.at < WARM_UP_MS), { ...spec, durationMs: Math.min(WARM_UP_MS, spec.durationMs) }, true);
      }
      for (const [i, policy] of order.entries()) {
        if (cancelled) break;
        deps.policy.set(policy);
        await settle();
        results.push(await runOnce(policy, i + 1, order.length, arrivals, spec));
        publish({ ...status, results: [...results] });
      }
      publish({ ...status, state: cancelled ? 'cancelled' : 'done', progress: null, results, finishedAt: Date.now() });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      logger.warn({ err: message }, 'lab run failed');
      publish({ ...status, state: 'failed', progress: null, results, error: message, finishedAt: Date.now() });
    } finally {
      if (kind === 'compare') deps.policy.set(original);
      if (scenario !== undefined) {
        await deps.relay.clear(scenario.upstream).catch((err: unknown) => {
          logger.warn({ err, upstream: scenario.upstream }, 'clearing the lab scenario failed');
        });
      }
      logger.info({ kind, state: status.state, results: results.map((r) => ({ policy: r.policy, p99Ms: r.p99Ms, errors: r.errors, dropped: r.dropped })) }, 'lab run ended');
    }
  };

  return {
    status: () => status,
    async check(spec) {
      const deadline = probeDeadlineMs(spec, LIMITS.requestTimeoutMs);
      const probe = await probeImages(deps.dataUrl(), spec.mix, spec.delayScale, deadline);
      return assessCapacity(spec, probe, deps.upstreams.available().length, LIMITS.requestTimeoutMs);
    },
    start(kind, spec, check) {
      if (status.state === 'running') return false;
      cancelled = false;
      const upstreams = deps.upstreams.available().map((u) => u.id).sort();
      publish({
        state: 'running', kind, spec, progress: null, results: [], cluster: { size: upstreams.length, upstreams }, check: check ?? null,
        error: null, startedAt: Date.now(), finishedAt: null,
      });
      logger.info({ kind, rate: spec.rate, durationMs: spec.durationMs, seed: spec.seed, delayScale: spec.delayScale, scenario: spec.scenario, expectedOpen: check?.expectedOpen }, 'lab run started');
      running = execute(kind, spec).finally(() => {
        running = undefined;
      });
      return true;
    },
    cancel() {
      cancelled = true;
      wake?.();
      abortRun?.();
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop() {
      cancelled = true;
      wake?.();
      abortRun?.();
      await running;
      listeners.clear();
    },
  };
}
