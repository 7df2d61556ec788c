/**
 * The algorithm lab's runs: one at a time, a run (the current policy) or a comparison (each policy
 * in turn, the same seeded schedule each time, after one unmeasured warm-up), with a fault
 * optionally switched on in one replica for the time of it. Each policy's pass is sent and
 * measured by policy-run.ts, on the project's one open-loop engine (open-loop.ts): requests leave
 * at the times the schedule says, whether or not earlier ones have answered, and each latency
 * counts from its scheduled time.
 *
 * Bounded: rate, duration and outstanding requests are capped (see LIMITS); requests over the cap
 * are not sent and counted apart ("dropped"). A run that would mostly drop is refused before it
 * starts (check, capacity.ts).
 */
import type { Logger } from 'pino';
import type { Peers } from '../peers/peers.js';
import { POLICIES } from '../picker/policy.js';
import type { PolicyName, PolicySetting } from '../picker/policy.js';
import type { UpstreamTable } from '../upstreams/registry.js';
import { findLabPeer, setSharingSeenBy } from './balancer-mode.js';
import type { BalancerMode, LabPeer, PeerRefusal } from './balancer-mode.js';
import { assessCapacity, probeDeadlineMs } from './capacity.js';
import type { CapacityCheck } from './capacity.js';
import { startPolicyRun } from './policy-run.js';
import type { RunResult } from './policy-run.js';
import { probeImages } from './probe.js';
import type { Fault, ScenarioRelay } from './scenario-relay.js';
import { schedule } from './traffic.js';
import type { Arrival, TrafficSpec } from './traffic.js';

export type { RunResult, UpstreamResult } from './policy-run.js';

/**
 * The caps the admin API enforces on a spec. A request may take 30 s: the seed's slowest image
 * (10 s) on a replica made several seconds slower still answers, instead of timing out at 10 s.
 */
export const LIMITS = Object.freeze({ maxRate: 2000, maxDurationMs: 120_000, maxConcurrency: 1000, defaultConcurrency: 256, requestTimeoutMs: 30_000 });

/** What to send, and optionally which fault to switch on in one replica for the time of it. */
export interface LabSpec extends TrafficSpec {
  /** Most requests outstanding at once (connections to the data port); more are dropped. */
  readonly concurrency: number;
  readonly delayScale: number;
  /** Policies to compare, in order (compare only; default all). */
  readonly policies?: readonly PolicyName[];
  readonly scenario?: { readonly upstream: string; readonly fault: Fault };
  /** Through this balancer alone (default), or split with a live peer, counts isolated or shared. */
  readonly balancers?: BalancerMode;
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
  /** The balancers this one shares counts with: the two-balancer modes send to one of them. */
  readonly peers: Peers;
  readonly logger: Logger;
}

export interface LabRunner {
  status(): LabStatus;
  /** Probes the cluster and judges whether `spec` can be measured on it (capacity.ts). */
  check(spec: LabSpec): Promise<CapacityCheck>;
  /** For a two-balancer spec, the peer it would split its traffic with, or why there is none; null for one balancer. */
  peerFor(kind: 'run' | 'compare', spec: LabSpec): Promise<LabPeer | PeerRefusal | null>;
  /**
   * Starts a run (the current policy) or a comparison (each policy in turn), with the check it
   * passed; false when one is running.
   */
  start(kind: 'run' | 'compare', spec: LabSpec, check?: CapacityCheck, peer?: LabPeer | null): boolean;
  cancel(): void;
  /** Hears every status change and progress tick; returns the unsubscribe. */
  subscribe(listener: (status: LabStatus) => void): () => void;
  /** Cancels a run and waits for it. Idempotent. */
  stop(): Promise<void>;
}

/** Longest wait for the previous policy's requests to leave the upstreams before the next run. */
const SETTLE_MS = 10_000;
/**
 * The schedule's first second is sent once before the measured runs and thrown away: otherwise the
 * first policy alone pays for cold processes (JIT, new connections, latency estimates still
 * empty) that every later one finds done. On a fresh `npm start` cluster that put least-connections,
 * always first, at twice the p99 of the others.
 */
const WARM_UP_MS = 1000;
/**
 * Longest wait for the peer to drop or count this balancer after its sharing is switched: the
 * peer timeout (250 ms by default) many times over, for a busy machine.
 */
const SHARING_SEEN_MS = 10_000;

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

  /** Who answers to which id, and the cluster, as the run starts. */
  interface Setup {
    readonly targets: readonly string[];
    readonly identities: ReadonlyMap<string, string>;
    readonly cluster: readonly string[];
  }

  /** Sends the schedule once under the policy in force and measures it. */
  const runOnce = async (setup: Setup, policy: PolicyName, index: number, of: number, arrivals: readonly Arrival[], spec: LabSpec, warmUp = false): Promise<RunResult> => {
    const run = startPolicyRun({
      ...setup, balancers: spec.balancers ?? 'one',
      // Cancelled while the previous pass settled: this one sends nothing.
      upstreams: deps.upstreams, policy, arrivals: cancelled ? [] : arrivals, durationMs: spec.durationMs, concurrency: spec.concurrency,
      requestTimeoutMs: LIMITS.requestTimeoutMs, badUpstream: spec.scenario?.upstream ?? null,
      onProgress: (c) => {
        publish({ ...status, progress: { policy, index, of, elapsedMs: c.elapsedMs, durationMs: spec.durationMs, sent: c.sent, completed: c.completed, errors: c.errors, dropped: c.dropped, warmUp } });
      },
    });
    abortRun = run.abort;
    try {
      return await run.result;
    } finally {
      abortRun = undefined;
    }
  };

  const settle = async (): Promise<void> => {
    const deadline = Date.now() + SETTLE_MS;
    while (deps.upstreams.inFlight() > 0 && Date.now() < deadline && !cancelled) await sleep(20);
  };

  /** X-Backend-Id to upstream id for every upstream that names itself. */
  const identities = async (cluster: readonly string[]): Promise<Map<string, string>> => {
    const named = await Promise.all(cluster.map(async (id) => [await deps.relay.identify(id), id] as const));
    return new Map(named.flatMap(([backend, id]) => (backend === null ? [] : [[backend, id] as const])));
  };

  const execute = async (kind: 'run' | 'compare', spec: LabSpec, peer: LabPeer | null): Promise<void> => {
    const original = deps.policy.current;
    const order: readonly PolicyName[] = kind === 'run' ? [original] : (spec.policies ?? POLICIES);
    const arrivals = schedule(spec);
    const results: RunResult[] = [];
    const scenario = spec.scenario;
    const sharingBefore = deps.peers.sharing;
    try {
      if (scenario !== undefined) {
        const reply = await deps.relay.apply(scenario.upstream, scenario.fault);
        if (reply.status !== 200) throw new Error(`the backend refused the scenario: ${reply.status} ${JSON.stringify(reply.body)}`);
      }
      // Isolated: the peer must have dropped this balancer before the first request; sharing: it
      // must count it (sharing may have been switched off by hand).
      if (peer !== null) await setSharingSeenBy(deps.peers, peer, spec.balancers === 'two-sharing', SHARING_SEEN_MS, () => cancelled);
      const cluster = status.cluster?.upstreams ?? [];
      const setup: Setup = { targets: peer === null ? [deps.dataUrl()] : [deps.dataUrl(), peer.dataUrl], identities: await identities(cluster), cluster };
      const first = order[0];
      if (first !== undefined && !cancelled) {
        deps.policy.set(first);
        await settle();
        await runOnce(setup, first, 0, order.length, arrivals.filter((a) => a.at < WARM_UP_MS), { ...spec, durationMs: Math.min(WARM_UP_MS, spec.durationMs) }, true);
      }
      for (const [i, policy] of order.entries()) {
        if (cancelled) break;
        deps.policy.set(policy);
        await settle();
        results.push(await runOnce(setup, policy, i + 1, order.length, arrivals, spec));
        publish({ ...status, results: [...results] });
      }
      publish({ ...status, state: cancelled ? 'cancelled' : 'done', progress: null, results, finishedAt: Date.now() });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      logger.warn({ err: message }, 'lab run failed');
      publish({ ...status, state: 'failed', progress: null, results, error: message, finishedAt: Date.now() });
    } finally {
      if (kind === 'compare') deps.policy.set(original);
      // Also after a failure or a cancel: an isolated run must not leave this balancer isolated.
      if (peer !== null && deps.peers.sharing !== sharingBefore) deps.peers.setSharing(sharingBefore);
      if (scenario !== undefined) {
        await deps.relay.clear(scenario.upstream).catch((err: unknown) => {
          logger.warn({ err, upstream: scenario.upstream }, 'clearing the lab scenario failed');
        });
      }
      logger.info({ kind, state: status.state, results: results.map((r) => ({ policy: r.policy, balancers: r.balancers, p99Ms: r.p99Ms, spread: r.spread, errors: r.errors, dropped: r.dropped })) }, 'lab run ended');
    }
  };

  return {
    status: () => status,
    async check(spec) {
      const deadline = probeDeadlineMs(spec, LIMITS.requestTimeoutMs);
      const probe = await probeImages(deps.dataUrl(), spec.mix, spec.delayScale, deadline);
      return assessCapacity(spec, probe, deps.upstreams.available().length, LIMITS.requestTimeoutMs);
    },
    async peerFor(kind, spec) {
      if ((spec.balancers ?? 'one') === 'one') return null;
      return findLabPeer(deps.peers, kind === 'run' ? [deps.policy.current] : (spec.policies ?? POLICIES));
    },
    start(kind, spec, check, peer = null) {
      if (status.state === 'running') return false;
      cancelled = false;
      const upstreams = deps.upstreams.available().map((u) => u.id).sort();
      publish({
        state: 'running', kind, spec, progress: null, results: [], cluster: { size: upstreams.length, upstreams }, check: check ?? null,
        error: null, startedAt: Date.now(), finishedAt: null,
      });
      logger.info({ kind, balancers: spec.balancers ?? 'one', peer: peer?.address, rate: spec.rate, durationMs: spec.durationMs, seed: spec.seed, delayScale: spec.delayScale, scenario: spec.scenario, expectedOpen: check?.expectedOpen }, 'lab run started');
      running = execute(kind, spec, peer).finally(() => {
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
