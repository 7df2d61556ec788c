import { Counter, Gauge, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client';
import type { FailureReason, RejectReason } from './errors.js';
import type { PolicyName } from './picker/policy.js';
import { createRequestMetrics } from './request-metrics.js';
import { imbalanceOf } from './snapshot.js';
import type { UpstreamTable } from './upstreams/registry.js';
import type { Upstream } from './upstreams/upstream.js';

/** The label used for requests that found no upstream at all. */
export const NO_UPSTREAM = 'none';

/** How an upgrade request ended: a tunnel, an upstream that refused it, or no upstream to try. */
export type UpgradeOutcome = 'tunnel' | 'connect_error' | 'no_upstream';

/** The balancer's Prometheus metrics, on a registry of its own: every metric is defined here. */
export interface Metrics {
  readonly registry: PromRegistry;
  /**
   * Counts one finished client request (once, whatever the number of attempts) in Prometheus;
   * the live view's totals are the shared counters' (CounterTable.countRequest), not these.
   */
  recordRequest(upstream: string, status: number, seconds: number): void;
  /** A failed attempt; `status`: an answer with a --retry-on-status code that was retried. */
  recordFailure(upstream: string, reason: FailureReason | 'status'): void;
  recordRetry(): void;
  /** A request served while no upstream passed its checks (panic mode). */
  recordPanicRequest(): void;
  /** A retry the budget refused. */
  recordRetryRefused(): void;
  /** A client request refused before reaching an upstream (client guard). */
  recordClientRejection(reason: RejectReason): void;
  /** An upgrade (WebSocket) request's outcome; `upstream` is NO_UPSTREAM when none was tried. */
  recordUpgrade(upstream: string, outcome: UpgradeOutcome): void;
  /**
   * Where lb_queue_length reads from (the data plane's wait queue; 0 until set). Set after the
   * data plane is built, since the data plane records into these metrics.
   */
  readQueueLengthFrom(length: () => number): void;
}

export interface MetricsOptions {
  /** Process metrics (CPU, memory, event loop): once per process, by the thread that owns the registry. */
  readonly processMetrics: boolean;
  /** Gauges read from the upstream table: once per process too, as every thread sees the same shared counts. */
  readonly upstreamGauges: boolean;
  /** The policy in force, for `lb_policy_info` (once per process: the thread that owns the admin port). */
  readonly policy?: () => PolicyName;
}

/**
 * Creates the metrics; gauges read the upstream table at scrape time, never on the data path.
 * With several data-path threads each has its own counters and histograms, which the admin
 * thread sums at scrape time (see cluster/worker-pool.ts).
 */
export function createMetrics(upstreams: UpstreamTable, options: MetricsOptions = { processMetrics: true, upstreamGauges: true }): Metrics {
  let queueLength = (): number => 0;
  const registry = new PromRegistry();
  // The event-loop delay monitor samples on a timer: every 10 ms by default, which alone is most of
  // an idle process's CPU. Ten samples a second still give the lag percentiles.
  if (options.processMetrics) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> =>
    new Counter({ name, help, labelNames, registers: [registry] });

  // Updated by every request: plain numbers until scraped (see request-metrics.ts).
  const requests = createRequestMetrics(registry, {
    requestsName: 'lb_requests_total',
    requestsHelp: 'Client requests finished, by the upstream that answered (none: no upstream) and status code.',
    durationName: 'lb_request_duration_seconds',
    durationHelp: 'Time from receiving a request to the end of its response, by upstream.',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    // Which thread took the requests: shows how the kernel spreads connections over the workers.
    threadName: 'lb_thread_requests_total',
    threadHelp: 'Client requests finished by each data-path thread (0 = the main thread, 1..N = workers).',
    thread: String(upstreams.counters.writer),
  });
  const failures = counter('lb_upstream_failures_total', 'Failed attempts on an upstream, by reason (connect, timeout, reset, aborted, ejected, status: a retried 5xx).', ['upstream', 'reason']);
  const retries = counter('lb_retries_total', 'Attempts retried on another upstream.');
  const retriesRefused = counter('lb_retry_budget_exhausted_total', 'Retries not attempted because the retry budget was spent.');
  const panicRequests = counter('lb_panic_requests_total', 'Requests sent to upstreams that fail their checks because none passes them (panic mode).');
  const clientErrors = counter('lb_client_errors_total', 'Client requests refused before reaching an upstream, by reason.', ['reason']);
  const upgrades = counter('lb_upgrades_total', 'Upgrade (WebSocket) requests by upstream (none: no upstream) and outcome (tunnel, connect_error, no_upstream).', ['upstream', 'outcome']);
  new Gauge({
    name: 'lb_queue_length',
    help: 'Requests waiting for an upstream under its max in-flight.',
    registers: [registry],
    collect() {
      this.set(queueLength());
    },
  });
  if (options.upstreamGauges) registerUpstreamGauges(registry, upstreams);
  const policyOf = options.policy;
  if (policyOf !== undefined) {
    new Gauge({
      name: 'lb_policy_info',
      help: 'The selection policy in force (value 1; the policy label says which).',
      labelNames: ['policy'] as const,
      registers: [registry],
      collect() {
        this.reset();
        this.set({ policy: policyOf() }, 1);
      },
    });
  }
  return {
    registry,
    recordRequest(upstream, status, seconds) {
      requests.record(upstream, status, seconds);
    },
    recordFailure(upstream, reason) {
      failures.inc({ upstream, reason });
    },
    recordRetry() {
      retries.inc();
    },
    recordRetryRefused() {
      retriesRefused.inc();
    },
    recordPanicRequest() {
      panicRequests.inc();
    },
    recordClientRejection(reason) {
      clientErrors.inc({ reason });
    },
    recordUpgrade(upstream, outcome) {
      upgrades.inc({ upstream, outcome });
    },
    readQueueLengthFrom(length) {
      queueLength = length;
    },
  };
}

/** Per-upstream and imbalance gauges, read from the upstream table at scrape time. */
function registerUpstreamGauges(registry: PromRegistry, upstreams: UpstreamTable): void {
  const perUpstream: [name: string, help: string, value: (u: Upstream) => number][] = [
    ['lb_upstream_in_flight', 'Requests being served by each upstream (what least-connections compares).', (u) => u.inFlight],
    ['lb_upstream_weight', 'Configured weight of each upstream.', (u) => u.configuredWeight],
    ['lb_upstream_effective_weight', 'Weight the picker uses now: lower than the configured one while slow start ramps it up.', (u) => u.weight],
    ['lb_upstream_max_in_flight', 'Cap on in-flight requests per upstream (0 = none).', (u) => u.maxInFlight],
    ['lb_upstream_ejections', 'Passive outlier ejections in a row (the next ejection lasts base x 2^n).', (u) => u.ejections],
    ['lb_upstream_long_lived_connections', 'Open upgraded (WebSocket) tunnels per upstream; each also counts in lb_upstream_in_flight.', (u) => u.longLived],
    ['lb_upstream_healthy', '1 when the upstream may take new requests, else 0 (down, unproven or draining).', (u) => u.healthy ? 1 : 0],
  ];
  for (const [name, help, value] of perUpstream) {
    new Gauge({
      name,
      help,
      labelNames: ['upstream'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const u of upstreams.list()) this.set({ upstream: u.id }, value(u));
      },
    });
  }
  new Gauge({
    name: 'lb_upstreams',
    help: 'Known upstreams by state.',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const counts = { up: 0, down: 0, unproven: 0, draining: 0 };
      for (const u of upstreams.list()) counts[u.state]++;
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'lb_panic_mode',
    help: '1 while no upstream passes its checks and requests are spread over all of them (panic mode), else 0.',
    registers: [registry],
    collect() {
      this.set(upstreams.panicking() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'lb_in_flight_imbalance_ratio',
    help: 'max / mean in-flight over available upstreams (1 = perfectly even).',
    registers: [registry],
    collect() {
      this.set(imbalanceOf(upstreams.available()));
    },
  });
}
