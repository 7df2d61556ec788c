import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Config } from '../config.js';
import type { FailureReason } from '../errors.js';
import type { PickReason } from '../picker/types.js';
import type { PolicyName } from '../picker/policy.js';
import type { CounterTable } from '../upstreams/counters.js';
import type { Registry } from '../upstreams/registry.js';
import type { Upstream } from '../upstreams/upstream.js';
import type { FromWorker, ToWorker, UpstreamView } from './messages.js';
import type { WorkerInit } from './worker-entry.js';

/** A worker that does not answer a scrape in time is left out of that scrape, not waited for. */
const SCRAPE_TIMEOUT_MS = 2000;
/** How often upstreams removed while busy are checked for their last request (releases happen on workers). */
const SWEEP_INTERVAL_MS = 100;

export type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[];

export interface WorkerPoolOptions {
  readonly count: number;
  readonly config: Config;
  /** Made with count + 1 writers: row 0 is this thread's, row i worker i's (1..count). */
  readonly counters: CounterTable;
  readonly logger: Logger;
  /** A worker died (a bug): the process cannot keep its counts honest and should exit. */
  readonly onFatal: (err: Error) => void;
}

/**
 * What the workers report to and read from, given at start(): the pool is built before the
 * registry, which frees counter slots through it.
 */
export interface WorkerPoolLinks {
  readonly registry: Registry;
  /** The selection policy in force, sent to each worker at start. */
  readonly policy: () => PolicyName;
  readonly onFailure: (upstream: Upstream, reason: FailureReason | 'status') => void;
  readonly onSuccess: (upstream: Upstream) => void;
  readonly onDecision: (chosen: string, reason: PickReason, time: number) => void;
}

/** The data-path threads, seen from the thread that owns the registry. */
export interface WorkerPool {
  /** Starts every worker on `port`, which this thread has bound with reusePort. */
  start(port: number, links: WorkerPoolLinks): Promise<void>;
  /** Sends the upstream list to every worker (coalesced: once per tick however many changes). */
  broadcast(): void;
  /** Switches every worker to `policy`. */
  setPolicy(policy: PolicyName): void;
  /** Frees a forgotten upstream's counter slot once every worker has let go of it. */
  releaseSlot(slot: number): void;
  /** Every worker's metrics, for the admin thread to sum. */
  scrape(): Promise<WorkerMetrics[]>;
  /** Graceful stop of every worker (each finishes its in-flight requests), then terminates them. Idempotent. */
  stop(): Promise<void>;
}

interface Member {
  readonly index: number;
  readonly worker: Worker;
  readonly scrapes: Map<number, (metrics: WorkerMetrics) => void>;
  listening?: { resolve(port: number): void; reject(err: Error): void };
  stopped?: () => void;
  exited: boolean;
}

// dist/ runs the compiled .js; tests and `tsx` run the .ts next to this file.
const ENTRY = new URL(import.meta.url.endsWith('.ts') ? './worker-entry.ts' : './worker-entry.js', import.meta.url);

export function createWorkerPool(options: WorkerPoolOptions): WorkerPool {
  const { config, counters, logger } = options;
  const members: Member[] = [];
  /** Slots some worker may know: freeing them waits for every worker's 'dropped'. */
  const announced = new Set<number>();
  const pendingDrops = new Map<number, Set<number>>();
  let broadcastQueued = false;
  let stopping = false;
  let scrapeId = 0;
  let sweeper: NodeJS.Timeout | undefined;
  let stopped: Promise<void> | undefined;
  let links: WorkerPoolLinks | undefined;

  // By key, not slot: a batched report can arrive after its upstream's slot went to a newcomer.
  const upstreamByKey = (key: number): Upstream | undefined => links?.registry.list().find((u) => u.key === key);

  const send = (m: Member, message: ToWorker): void => {
    if (!m.exited) m.worker.postMessage(message);
  };

  const freeSlot = (slot: number): void => {
    pendingDrops.delete(slot);
    announced.delete(slot);
    counters.release(slot);
  };

  const onMessage = (m: Member, message: FromWorker): void => {
    switch (message.type) {
      case 'listening':
        m.listening?.resolve(message.port);
        break;
      case 'listen-failed':
        m.listening?.reject(Object.assign(new Error(message.message), { code: message.code }));
        break;
      case 'failure': {
        const u = upstreamByKey(message.key);
        if (u !== undefined) links?.onFailure(u, message.reason);
        break;
      }
      case 'report':
        for (const d of message.decisions) {
          const u = upstreamByKey(d.key);
          if (u !== undefined) links?.onDecision(u.id, d.reason, d.time);
        }
        for (const key of message.succeeded) {
          const u = upstreamByKey(key);
          if (u !== undefined) links?.onSuccess(u);
        }
        break;
      case 'dropped': {
        const waiting = pendingDrops.get(message.slot);
        waiting?.delete(m.index);
        if (waiting?.size === 0) freeSlot(message.slot);
        break;
      }
      case 'scrape':
        m.scrapes.get(message.id)?.(message.metrics as WorkerMetrics);
        m.scrapes.delete(message.id);
        break;
      case 'stopped':
        m.stopped?.();
        break;
    }
  };

  const spawn = (index: number): Member => {
    const init: WorkerInit = { config, counters: counters.buffers, index };
    const worker = new Worker(ENTRY, { workerData: init, name: `data-${index}` });
    const m: Member = { index, worker, scrapes: new Map(), exited: false };
    worker.on('message', (message: FromWorker) => {
      onMessage(m, message);
    });
    worker.on('error', (err: Error) => {
      logger.fatal({ err, worker: index }, 'data-path worker failed');
      m.listening?.reject(err);
      if (!stopping) options.onFatal(err);
    });
    worker.on('exit', (code) => {
      m.exited = true;
      m.stopped?.();
      for (const resolve of m.scrapes.values()) resolve([]);
      m.scrapes.clear();
      if (!stopping) {
        const err = new Error(`data-path worker ${index} exited with code ${code}`);
        m.listening?.reject(err);
        options.onFatal(err);
      }
    });
    return m;
  };

  const listenOn = (m: Member, port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      m.listening = { resolve, reject };
      send(m, { type: 'listen', port, host: config.host });
    });

  const views = (registry: Registry): UpstreamView[] =>
    registry.list().map((u) => {
      announced.add(u.slot);
      return {
        key: u.key,
        slot: u.slot,
        host: u.host,
        port: u.port,
        source: u.source,
        state: u.state,
        unresponsive: u.unresponsive,
        weight: u.weight,
        configuredWeight: u.configuredWeight,
        maxInFlight: u.maxInFlight,
      };
    });

  return {
    async start(port, started) {
      links = started;
      const { registry } = started;
      for (let i = 1; i <= options.count; i++) members.push(spawn(i));
      const list = views(registry);
      for (const m of members) {
        send(m, { type: 'upstreams', upstreams: list });
        send(m, { type: 'policy', policy: started.policy() });
      }
      sweeper = setInterval(() => {
        registry.sweep();
      }, SWEEP_INTERVAL_MS);
      sweeper.unref();
      await Promise.all(members.map((m) => listenOn(m, port)));
    },
    broadcast() {
      const registry = links?.registry;
      if (broadcastQueued || members.length === 0 || registry === undefined) return;
      broadcastQueued = true;
      queueMicrotask(() => {
        broadcastQueued = false;
        const list = views(registry);
        for (const m of members) send(m, { type: 'upstreams', upstreams: list });
      });
    },
    setPolicy(policy) {
      for (const m of members) send(m, { type: 'policy', policy });
    },
    releaseSlot(slot) {
      const live = members.filter((m) => !m.exited).map((m) => m.index);
      if (!announced.has(slot) || live.length === 0) {
        freeSlot(slot);
        return;
      }
      pendingDrops.set(slot, new Set(live));
    },
    async scrape() {
      return Promise.all(
        members.map(
          (m) =>
            new Promise<WorkerMetrics>((resolve) => {
              if (m.exited) {
                resolve([]);
                return;
              }
              const id = ++scrapeId;
              const timer = setTimeout(() => {
                m.scrapes.delete(id);
                resolve([]);
              }, SCRAPE_TIMEOUT_MS);
              m.scrapes.set(id, (metrics) => {
                clearTimeout(timer);
                resolve(metrics);
              });
              send(m, { type: 'scrape', id });
            }),
        ),
      );
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        if (sweeper !== undefined) clearInterval(sweeper);
        // Each worker applies the shutdown timeout itself; this bound only guards against a stuck one.
        const bound = config.shutdownTimeoutMs + 5000;
        await Promise.all(
          members.map(
            (m) =>
              new Promise<void>((resolve) => {
                if (m.exited) {
                  resolve();
                  return;
                }
                const timer = setTimeout(resolve, bound);
                m.stopped = () => {
                  clearTimeout(timer);
                  resolve();
                };
                send(m, { type: 'stop' });
              }),
          ),
        );
        await Promise.all(members.map((m) => m.worker.terminate()));
      })();
      return stopped;
    },
  };
}
