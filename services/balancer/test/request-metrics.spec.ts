import assert from 'node:assert/strict';
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { createRequestMetrics } from '../src/request-metrics.js';

const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const OPTIONS = {
  requestsName: 'lb_requests_total',
  requestsHelp: 'requests help',
  durationName: 'lb_request_duration_seconds',
  durationHelp: 'duration help',
  buckets: BUCKETS,
  threadName: 'lb_thread_requests_total',
  threadHelp: 'thread help',
};

/** The same three metrics as prom-client's own Counter and Histogram, as the balancer had them before. */
function promClientReference(thread: string): { registry: Registry; record(upstream: string, status: number, seconds: number): void } {
  const registry = new Registry();
  const requests = new Counter({ name: OPTIONS.requestsName, help: OPTIONS.requestsHelp, labelNames: ['upstream', 'code'], registers: [registry] });
  const duration = new Histogram({ name: OPTIONS.durationName, help: OPTIONS.durationHelp, labelNames: ['upstream'], buckets: BUCKETS, registers: [registry] });
  const byThread = new Counter({ name: OPTIONS.threadName, help: OPTIONS.threadHelp, labelNames: ['thread'], registers: [registry] }).labels(thread);
  return {
    registry,
    record(upstream, status, seconds) {
      byThread.inc();
      requests.labels(upstream, String(status)).inc();
      duration.labels(upstream).observe(seconds);
    },
  };
}

/** Observations that hit every bucket edge, above the last bound, several codes and upstreams. */
const OBSERVED: [string, number, number][] = [
  ['a:1', 200, 0.0004], ['a:1', 200, 0.001], ['a:1', 503, 0.0011], ['b:2', 200, 0.3], ['a:1', 200, 30], ['b:2', 499, 31],
  ['none', 503, 0], ['b:2', 200, 0.025], ['a:1', 200, 2.5], ['b:2', 404, 7],
];

const sortLines = (text: string): string[] => text.split('\n').filter((l) => l !== '').sort();
/** JSON with object keys sorted at every depth (an undefined value is no key, as in JSON). */
const canonical = (v: unknown): string =>
  v !== null && typeof v === 'object' && !Array.isArray(v)
    ? `{${Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`
    : JSON.stringify(v);
/** The JSON of a scrape with each metric's samples in one order (series order carries no meaning). */
const sortedJson = (metrics: { values: unknown[] }[]): unknown[] => metrics.map((m) => ({ ...m, values: m.values.map(canonical).sort() }));

describe('request metrics (plain numbers, prom-client samples at scrape time)', () => {
  it('renders exactly what prom-client\'s Counter and Histogram render for the same requests', async () => {
    const registry = new Registry();
    const mine = createRequestMetrics(registry, { ...OPTIONS, thread: '0' });
    const reference = promClientReference('0');
    for (const [u, s, t] of OBSERVED) {
      mine.record(u, s, t);
      reference.record(u, s, t);
    }
    assert.deepEqual(sortLines(await registry.metrics()), sortLines(await reference.registry.metrics()));
    assert.deepEqual(sortedJson(await registry.getMetricsAsJSON()), sortedJson(await reference.registry.getMetricsAsJSON()));
  });

  it('sums over threads like prom-client\'s aggregation does (the admin thread\'s scrape of the workers)', async () => {
    const threads = ['0', '1'].map((thread) => {
      const registry = new Registry();
      return { registry, metrics: createRequestMetrics(registry, { ...OPTIONS, thread }), reference: promClientReference(thread) };
    });
    OBSERVED.forEach(([u, s, t], i) => {
      const thread = threads[i % 2];
      thread?.metrics.record(u, s, t);
      thread?.reference.record(u, s, t);
    });
    const mine = AggregatorRegistry.aggregate(await Promise.all(threads.map((t) => t.registry.getMetricsAsJSON())));
    const reference = AggregatorRegistry.aggregate(await Promise.all(threads.map((t) => t.reference.registry.getMetricsAsJSON())));
    assert.deepEqual(sortLines(await mine.metrics()), sortLines(await reference.metrics()));
  });

  it('shows no sample before the first request, as prom-client does', async () => {
    const registry = new Registry();
    createRequestMetrics(registry, { ...OPTIONS, thread: '0' });
    assert.deepEqual(sortLines(await registry.metrics()), sortLines(await promClientReference('0').registry.metrics()));
  });
});
