/**
 * A data-path thread: its own HTTP server on the shared port (reusePort), proxy and pools; the
 * registry thread owns upstream state and sends it here. Started by worker-pool.ts only.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../config.js';
import { createDataPlane } from '../data-path/data-plane.js';
import { createLogger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import { createPolicySetting } from '../picker/policy.js';
import { CounterTable } from '../upstreams/counters.js';
import type { CounterBuffers } from '../upstreams/counters.js';
import { poolSettingsOf } from '../upstreams/upstream.js';
import type { FromWorker, ToWorker, WorkerDecision } from './messages.js';
import { createUpstreamMirror } from './upstream-mirror.js';

/** What worker-pool.ts passes as workerData. */
export interface WorkerInit {
  readonly config: Config;
  readonly counters: CounterBuffers;
  /** 1..N: this thread's row in the counters (0 is the registry thread's). */
  readonly index: number;
}

/** How often decisions and successes go to the registry thread (the live view ticks at 10 Hz). */
const REPORT_INTERVAL_MS = 100;

const port = parentPort;
if (port === null) throw new Error('worker-entry.ts runs only as a worker thread');
const { config, counters: buffers, index } = workerData as WorkerInit;
const post = (message: FromWorker): void => {
  port.postMessage(message);
};

const logger = createLogger(config.logLevel).child({ worker: index });
const counters = new CounterTable(buffers, index);
const upstreams = createUpstreamMirror({
  counters,
  pool: poolSettingsOf(config),
  logger: logger.child({ component: 'upstreams' }),
  panic: config.panic,
  onDropped: (slot) => {
    post({ type: 'dropped', slot });
  },
});

// Decisions are recorded here as the proxy makes them and shipped in batches; the registry
// thread keeps the log the live view shows.
let decisions: WorkerDecision[] = [];
const succeeded = new Set<number>();
const keyOf = new Map<string, number>();
const report = setInterval(() => {
  if (decisions.length === 0 && succeeded.size === 0) return;
  post({ type: 'report', decisions, succeeded: [...succeeded] });
  decisions = [];
  succeeded.clear();
}, REPORT_INTERVAL_MS);
report.unref();

// Starts as configured; the registry thread sends every runtime switch (and the current one at start).
const policy = createPolicySetting(config.policy);

const metrics = createMetrics(upstreams, { processMetrics: false, upstreamGauges: false });
const plane = createDataPlane({
  config,
  upstreams,
  metrics,
  logger,
  random: Math.random,
  policy,
  sharedWithOtherThreads: true,
  decisions: {
    record(id, reason, time = Date.now()) {
      const key = keyOf.get(id);
      if (key === undefined) return;
      // Only the last few matter to the live view; keep the batch bounded under any load.
      if (decisions.length >= 20) decisions.shift();
      decisions.push({ time, key, reason });
    },
    recent: () => [],
  },
  outliers: {
    recordFailure(u, reason) {
      post({ type: 'failure', key: u.key, reason });
    },
    recordSuccess(u) {
      succeeded.add(u.key);
    },
  },
});

metrics.readQueueLengthFrom(() => plane.queueLength);

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'upstreams':
      upstreams.apply(message.upstreams);
      keyOf.clear();
      for (const u of upstreams.list()) keyOf.set(u.id, u.key);
      plane.upstreamsChanged();
      break;
    case 'policy':
      policy.set(message.policy);
      break;
    case 'listen':
      plane.listen(message.port, message.host, true).then(
        (address) => {
          post({ type: 'listening', port: address.port });
        },
        (err: unknown) => {
          const e = err as { code?: string; message?: string };
          post({ type: 'listen-failed', code: e.code ?? 'UNKNOWN', message: e.message ?? String(err) });
        },
      );
      break;
    case 'scrape':
      metrics.registry.getMetricsAsJSON().then(
        (json) => {
          post({ type: 'scrape', id: message.id, metrics: json });
        },
        (err: unknown) => {
          logger.error({ err }, 'metrics scrape failed');
          post({ type: 'scrape', id: message.id, metrics: [] });
        },
      );
      break;
    case 'stop':
      clearInterval(report);
      void plane
        .stop()
        .then(() => upstreams.stop())
        .then(() => {
          post({ type: 'stopped' });
        });
      break;
  }
});
