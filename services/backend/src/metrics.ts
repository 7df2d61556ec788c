import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** A backend's Prometheus metrics, in a Registry of its own so two apps can share a process. */
export interface Metrics {
  readonly registry: Registry;
  /** Records one finished request under its route template (never the raw URL) and status. */
  observe(route: string, status: number, seconds: number): void;
}

// Spans the default delays (1-10 s) scaled by 1 down to 0.01.
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30];

/**
 * Creates the registry with Node's default metrics and the backend series:
 * `backend_requests_total{route,status}`, `backend_request_duration_seconds{route}` and
 * `backend_in_flight_requests`, which reads `inFlight()` at scrape time so it can never drift
 * from the count `/info` reports.
 */
export function createMetrics(inFlight: () => number): Metrics {
  const registry = new Registry();
  // The event-loop delay monitor samples on a timer: every 10 ms by default, which alone is most of
  // an idle process's CPU. Ten samples a second still give the lag percentiles.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  const requests = new Counter({
    name: 'backend_requests_total',
    help: 'Requests answered, by route template and status (499: the client went away first).',
    labelNames: ['route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'backend_request_duration_seconds',
    help: 'Time from request to response, including the image delay, by route template.',
    labelNames: ['route'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  new Gauge({
    name: 'backend_in_flight_requests',
    help: 'Image requests being served now (waiting out their delay or being written).',
    registers: [registry],
    collect() {
      this.set(inFlight());
    },
  });
  return {
    registry,
    observe(route, status, seconds) {
      requests.inc({ route, status: String(status) });
      duration.observe({ route }, seconds);
    },
  };
}
