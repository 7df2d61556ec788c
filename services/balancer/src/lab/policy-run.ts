/**
 * One measured pass of the lab's schedule under one policy: the arrivals sent by the open-loop
 * engine (open-loop.ts) to this balancer's own data port (or, in the two-balancer modes, every
 * other one to a peer's), and what it came to (a RunResult). The runner (runner.ts) chooses the
 * policies, their order and the balancers.
 *
 * Which backend served each request is read from its response (the backends' X-Backend-Id, mapped
 * to upstream ids at the start of the run), and the in-flight figures come from the lab's own
 * records of each request: the same measure whichever balancer routed it. Backends that do not
 * name themselves fall back to this balancer's counters and sampled in-flight (`attribution`).
 *
 * Requests over the cap on open ones are not sent and counted apart ("dropped", never errors: the
 * upstreams did not fail them), so an overloaded run says so instead of queueing without end.
 */
import { Pool } from '../undici-pool.js';
import type { PolicyName } from '../picker/policy.js';
import type { BalancerMode } from './balancer-mode.js';
import type { UpstreamTable } from '../upstreams/registry.js';
import { OverCap, errorCode, startOpenLoopRun } from './open-loop.js';
import type { OpenLoopRecord } from './open-loop.js';
import { inFlightSpread } from './spread.js';
import { jainIndex, quantile, round2 } from './stats.js';
import type { Arrival } from './traffic.js';

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
  /** One balancer, two with isolated counts, or two sharing them (balancer-mode.ts). */
  readonly balancers: BalancerMode;
  /**
   * Where the per-upstream figures come from: `response`, each request's X-Backend-Id and the lab's
   * own request times (every balancer's traffic); `counters`, this balancer's counters and sampled
   * in-flight (backends that do not name themselves; this balancer's traffic only).
   */
  readonly attribution: 'response' | 'counters';
  /**
   * max ÷ mean in-flight over the backends, averaged over the time any request was in flight
   * (spread.ts); from the lab's records, null with `counters` attribution.
   */
  readonly spread: number | null;
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

/** Where a run is, for the progress events. */
export interface RunCounts {
  readonly elapsedMs: number;
  readonly sent: number;
  readonly completed: number;
  readonly errors: number;
  readonly dropped: number;
}

export interface PolicyRunOptions {
  /** `http://host:port` of the data ports to send to: this balancer's, then a peer's; arrival i goes to the (i mod n)th. */
  readonly targets: readonly string[];
  readonly balancers: BalancerMode;
  /** X-Backend-Id to upstream id, for the upstreams that answered to it at the start of the run. */
  readonly identities: ReadonlyMap<string, string>;
  /** The available upstreams at the start: the backends the spread is over. */
  readonly cluster: readonly string[];
  readonly upstreams: UpstreamTable;
  /** The policy in force (the caller set it), named in the result. */
  readonly policy: PolicyName;
  readonly arrivals: readonly Arrival[];
  readonly durationMs: number;
  /** Most requests open at once (connections to the data port); more are dropped. */
  readonly concurrency: number;
  readonly requestTimeoutMs: number;
  /** The scenario's replica, whose share the result names (null without a scenario). */
  readonly badUpstream: string | null;
  /** Hears the counts every PROGRESS_MS. */
  readonly onProgress: (counts: RunCounts) => void;
}

export interface PolicyRun {
  readonly result: Promise<RunResult>;
  /** Cuts the open requests (a hanging replica would otherwise hold a cancel for the request timeout). Idempotent. */
  readonly abort: () => void;
}

const PROGRESS_MS = 250;
const SAMPLE_MS = 10;

type LabFailure = 'error' | 'dropped';
interface LabRecord extends OpenLoopRecord {
  readonly path: string;
  failure?: LabFailure;
  /** The response's X-Backend-Id, mapped to an upstream id when known. */
  upstream?: string;
}

type Counts = Map<string, { requests: number; errors: number }>;
type Load = Map<string, { sum: number; max: number }>;

/**
 * Per upstream, the balancer's own counts (attempts finished, errors), not a response header:
 * X-Upstream is opt-in, and a retried request counts on both upstreams it tried. Other traffic
 * during the run counts too; the page says so.
 */
const countsNow = (upstreams: UpstreamTable): Counts => new Map(upstreams.list().map((u) => [u.id, { requests: u.requests, errors: u.errors }]));

/** Sends the arrivals once under the policy in force and measures them. */
export function startPolicyRun(options: PolicyRunOptions): PolicyRun {
  const pools = options.targets.map(
    (url) =>
      new Pool(url, {
        connections: options.concurrency,
        headersTimeout: options.requestTimeoutMs,
        bodyTimeout: options.requestTimeoutMs,
        pipelining: 1,
      }),
  );
  const before = countsNow(options.upstreams);
  const load: Load = new Map();
  let samples = 0;
  const n = { completed: 0, errors: 0, dropped: 0 };
  const sampler = setInterval(() => {
    samples++;
    for (const u of options.upstreams.list()) {
      const l = load.get(u.id) ?? { sum: 0, max: 0 };
      l.sum += u.inFlight;
      l.max = Math.max(l.max, u.inFlight);
      load.set(u.id, l);
    }
  }, SAMPLE_MS);

  const arrivals = options.arrivals;
  const run = startOpenLoopRun<LabRecord>({
    schedule: (seq) => arrivals[seq]?.at,
    durationMs: options.durationMs,
    maxOutstanding: options.concurrency,
    record: (times) => ({ ...times, path: arrivals[times.seq]?.path ?? '/' }),
    send: async (record, signal) => {
      const pool = pools[record.seq % pools.length];
      if (pool === undefined) throw new Error('no data port to send to');
      const res = await pool.request({ path: record.path, method: 'GET', signal });
      const backend = res.headers['x-backend-id'];
      if (typeof backend === 'string') record.upstream = options.identities.get(backend) ?? backend;
      // The whole body: latency is until the last byte, as a user sees it.
      await res.body.arrayBuffer();
      record.status = res.statusCode;
      if (res.statusCode >= 500) record.failure = 'error';
    },
    failed: (record, err) => {
      record.failure = err instanceof OverCap ? 'dropped' : 'error';
      record.detail = errorCode(err);
    },
    onEnd: (record) => {
      n.completed++;
      if (record.failure === 'dropped') n.dropped++;
      else if (record.failure !== undefined) n.errors++;
    },
  });
  const progress = setInterval(() => {
    options.onProgress({ elapsedMs: Math.round(run.now()), sent: run.records.length, ...n });
  }, PROGRESS_MS);

  const measure = async (): Promise<RunResult> => {
    try {
      await run.done;
    } finally {
      clearInterval(sampler);
      clearInterval(progress);
      await Promise.all(pools.map((p) => p.close()));
    }
    return resultOf(options, run.records, load, samples, before);
  };
  return {
    result: measure(),
    abort: () => {
      void run.abort();
    },
  };
}

/**
 * Per upstream from the responses: requests and errors by X-Backend-Id, in-flight from the records'
 * times. Undefined when some good response did not name its backend (then only the counters can
 * say); a balancer's own error answer (502 LB_UPSTREAM_*, no backend header) counts in the run's
 * errors but on no upstream.
 */
function fromResponses(options: PolicyRunOptions, records: readonly LabRecord[]): { served: Counts; load: Map<string, { max: number; mean: number }>; spread: number } | undefined {
  const answered = records.filter((r) => r.status !== undefined);
  if (answered.length === 0 || answered.some((r) => r.upstream === undefined && r.failure === undefined)) return undefined;
  const served: Counts = new Map(options.cluster.map((id) => [id, { requests: 0, errors: 0 }]));
  for (const r of answered) {
    if (r.upstream === undefined) continue;
    const c = served.get(r.upstream) ?? { requests: 0, errors: 0 };
    c.requests++;
    if (r.failure === 'error') c.errors++;
    served.set(r.upstream, c);
  }
  // From when the request left until its last byte: the backend holds it for about that long.
  const named = answered.flatMap((r) => (r.upstream === undefined ? [] : [{ upstream: r.upstream, start: r.sentAt, end: r.endAt }]));
  const { spread, upstreams } = inFlightSpread(named, options.cluster);
  return { served, load: new Map(upstreams), spread };
}

/** What the records and samples came to. */
function resultOf(options: PolicyRunOptions, records: readonly LabRecord[], sampled: Load, samples: number, before: Counts): RunResult {
  const latencies = records.filter((r) => r.failure !== 'dropped').map((r) => r.latencyMs).sort((a, b) => a - b);
  const after = countsNow(options.upstreams);
  const byResponse = fromResponses(options, records);
  const served = byResponse?.served ?? new Map([...after].map(([id, c]) => [id, { requests: c.requests - (before.get(id)?.requests ?? 0), errors: c.errors - (before.get(id)?.errors ?? 0) }]));
  const load = byResponse?.load ?? new Map([...sampled].map(([id, l]) => [id, { max: l.max, mean: samples === 0 ? 0 : l.sum / samples }]));
  const answered = [...served.values()].reduce((sum, c) => sum + c.requests, 0);
  const upstreams: UpstreamResult[] = [...served.keys()].sort().map((id) => {
    const s = served.get(id) ?? { requests: 0, errors: 0 };
    const l = load.get(id) ?? { max: 0, mean: 0 };
    return {
      id,
      requests: s.requests,
      // Four decimals, not round2(%) / 100: that division brings back binary fractions (0.029500000000000002).
      share: answered === 0 ? 0 : Math.round((s.requests / answered) * 10_000) / 10_000,
      errors: s.errors,
      maxInFlight: l.max,
      meanInFlight: round2(l.mean),
    };
  });
  const bad = options.badUpstream;
  const dropped = records.filter((r) => r.failure === 'dropped').length;
  return {
    policy: options.policy,
    balancers: options.balancers,
    attribution: byResponse === undefined ? 'counters' : 'response',
    spread: byResponse === undefined ? null : round2(byResponse.spread),
    requests: records.length,
    errors: records.filter((r) => r.failure === 'error').length,
    dropped,
    p50Ms: round2(quantile(latencies, 0.5)),
    p99Ms: round2(quantile(latencies, 0.99)),
    p999Ms: round2(quantile(latencies, 0.999)),
    maxMs: round2(latencies.at(-1) ?? 0),
    badUpstream: bad,
    badShare: bad === null ? null : (upstreams.find((u) => u.id === bad)?.share ?? 0),
    jain: Math.round(jainIndex(upstreams.map((u) => u.requests)) * 1000) / 1000,
    upstreams,
  };
}
