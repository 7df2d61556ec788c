/**
 * The three metrics every client request updates (lb_requests_total, lb_request_duration_seconds,
 * lb_thread_requests_total), kept as plain numbers and turned into Prometheus samples only when
 * scraped. prom-client's own counters and histograms hash their labels on every inc/observe, even
 * through a bound child, which was most of the cost of a request's metrics in the CPU profile
 * (bench/PROFILE.md). The samples are the same as prom-client's: names, labels, label order,
 * cumulative buckets with +Inf, _sum and _count, and the `sum` aggregator that sums several
 * threads' values at scrape time.
 */
import type { Metric, MetricValueWithName, Registry } from 'prom-client';

/** `exemplar` only on buckets, always null (no exemplars), as prom-client's JSON has it. */
type Sample = MetricValueWithName<string> & { exemplar?: null };

/** What a metric's get() returns: prom-client's JSON of one metric. */
interface ScrapedValues {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  readonly values: Sample[];
}

/** What prom-client's registry asks of a metric it renders (its `get()`), nothing more. */
interface ScrapedMetric extends Omit<ScrapedValues, 'values'> {
  get(): Promise<ScrapedValues>;
  reset(): void;
}

/** One upstream's counts: requests by status code, and the duration histogram's buckets. */
interface UpstreamStats {
  readonly codes: Map<number, number>;
  /** Observations per bucket, not cumulative; one more cell for those above the last bound. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

export interface RequestMetricsOptions {
  readonly requestsName: string;
  readonly requestsHelp: string;
  readonly durationName: string;
  readonly durationHelp: string;
  readonly buckets: readonly number[];
  readonly threadName: string;
  readonly threadHelp: string;
  /** This thread's label value in the thread counter. */
  readonly thread: string;
}

export interface RequestMetrics {
  /** One finished client request: by the upstream that answered (or NO_UPSTREAM), status and duration. */
  record(upstream: string, status: number, seconds: number): void;
}

/** Creates the metrics and registers them on `registry`. */
export function createRequestMetrics(registry: Registry, options: RequestMetricsOptions): RequestMetrics {
  const bounds = Float64Array.from(options.buckets);
  const stats = new Map<string, UpstreamStats>();
  let threadRequests = 0;

  const register = (metric: ScrapedMetric): void => {
    // The registry renders anything with prom-client's get(); the cast is only for its type.
    registry.registerMetric(metric as unknown as Metric);
  };
  const metricOf = (name: string, help: string, type: 'counter' | 'histogram', values: () => Sample[], reset: () => void): ScrapedMetric => ({
    name,
    help,
    type,
    aggregator: 'sum',
    get: () => Promise.resolve({ name, help, type, aggregator: 'sum', values: values() }),
    reset,
  });

  register(
    metricOf(options.requestsName, options.requestsHelp, 'counter', () => {
      const values: Sample[] = [];
      for (const [upstream, s] of stats) for (const [code, value] of s.codes) values.push({ value, labels: { upstream, code: String(code) } });
      return values;
    }, () => {
      for (const s of stats.values()) s.codes.clear();
    }),
  );
  const durationBucket = `${options.durationName}_bucket`;
  register(
    metricOf(options.durationName, options.durationHelp, 'histogram', () => {
      const values: Sample[] = [];
      for (const [upstream, s] of stats) {
        if (s.count === 0) continue;
        let cumulative = 0;
        for (let i = 0; i < bounds.length; i++) {
          cumulative += s.buckets[i] ?? 0;
          values.push({ value: cumulative, labels: { le: bounds[i] ?? 0, upstream }, metricName: durationBucket, exemplar: null });
        }
        values.push(
          { value: s.count, labels: { le: '+Inf', upstream }, metricName: durationBucket, exemplar: null },
          { value: s.sum, labels: { upstream }, metricName: `${options.durationName}_sum` },
          { value: s.count, labels: { upstream }, metricName: `${options.durationName}_count` },
        );
      }
      return values;
    }, () => {
      for (const s of stats.values()) {
        s.buckets.fill(0);
        s.sum = 0;
        s.count = 0;
      }
    }),
  );
  register(
    metricOf(options.threadName, options.threadHelp, 'counter', () => (threadRequests === 0 ? [] : [{ value: threadRequests, labels: { thread: options.thread } }]), () => {
      threadRequests = 0;
    }),
  );

  return {
    record(upstream, status, seconds) {
      threadRequests++;
      let s = stats.get(upstream);
      if (s === undefined) {
        s = { codes: new Map(), buckets: new Float64Array(bounds.length + 1), sum: 0, count: 0 };
        stats.set(upstream, s);
      }
      s.codes.set(status, (s.codes.get(status) ?? 0) + 1);
      let i = 0;
      while (i < bounds.length && seconds > (bounds[i] ?? 0)) i++;
      s.buckets[i] = (s.buckets[i] ?? 0) + 1;
      s.sum += seconds;
      s.count++;
    },
  };
}
