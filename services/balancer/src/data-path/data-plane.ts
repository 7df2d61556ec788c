import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createClientGuard } from './client-guard.js';
import type { Config } from '../config.js';
import type { DecisionLog } from '../decision-log.js';
import type { OutcomeSink } from '../health/outlier-detector.js';
import type { Metrics } from '../metrics.js';
import { createServer } from '../node-http.js';
import type { PolicySetting } from '../picker/policy.js';
import { createProxyHandler } from './proxy.js';
import { createRetryBudget } from './retry-budget.js';
import { createRouting } from './routing.js';
import { candidatesOf } from '../upstreams/candidates.js';
import type { UpstreamTable } from '../upstreams/registry.js';
import { createUpgradeHandler } from './upgrade.js';
import { createWaitQueue } from './wait-queue.js';
import type { WaitQueue } from './wait-queue.js';

/**
 * Longest a queued request goes without re-checking for a place freed on another thread. A
 * release normally wakes it at once (Atomics.notify); this only bounds the cost of a wake-up lost
 * in the instant between a failed pick and the start of the wait.
 */
const CROSS_THREAD_RECHECK_MS = 20;

export interface DataPlaneDeps {
  readonly config: Config;
  readonly upstreams: UpstreamTable;
  readonly outliers: OutcomeSink;
  readonly metrics: Metrics;
  readonly decisions: DecisionLog;
  readonly logger: Logger;
  readonly random: () => number;
  /** The selection policy in force on this thread. */
  readonly policy: PolicySetting;
  /** Other threads proxy to the same upstreams: a place they free must wake our queue too. */
  readonly sharedWithOtherThreads: boolean;
}

/** The data port: client guard, proxy, WebSocket upgrades and the wait queue, on one node:http server. */
export interface DataPlane {
  /** `reusePort` lets several threads listen on the same port (Node >= 22.12). */
  listen(port: number, host: string, reusePort: boolean): Promise<AddressInfo>;
  /** Requests waiting for a place under an upstream's max in-flight. */
  readonly queueLength: number;
  /**
   * Upstreams, states or caps changed (an operator raised a cap, one came up, one went down):
   * lets as many queued requests try again as there are free places now, oldest first (releases
   * wake the queue by themselves; this is for places that appear without one), and moves
   * replayable requests still waiting for headers off upstreams that went down and stopped answering.
   */
  upstreamsChanged(): void;
  /**
   * Graceful: stops accepting, lets in-flight requests finish within the shutdown timeout, then
   * cuts what is left (connections, tunnels, queued requests). Idempotent.
   */
  stop(): Promise<void>;
}

export function createDataPlane(deps: DataPlaneDeps): DataPlane {
  const { config, upstreams, logger } = deps;
  const localQueue = createWaitQueue(config.queueLength, config.queueTimeoutMs);
  let stopping = false;

  // With other threads, a place can be freed by a release we never see: while requests wait,
  // listen for releases on the shared counters too.
  let watching = false;
  const watchOtherThreads = async (): Promise<void> => {
    if (watching) return;
    watching = true;
    try {
      while (localQueue.length > 0 && !stopping) {
        await upstreams.counters.nextRelease(CROSS_THREAD_RECHECK_MS);
        if (localQueue.length > 0) localQueue.wakeOne();
      }
    } finally {
      watching = false;
    }
  };
  const queue: WaitQueue = deps.sharedWithOtherThreads
    ? {
        wait(cancel) {
          const waiting = localQueue.wait(cancel);
          void watchOtherThreads();
          return waiting;
        },
        wakeOne: () => {
          localQueue.wakeOne();
        },
        get length() {
          return localQueue.length;
        },
        stop: () => {
          localQueue.stop();
        },
      }
    : localQueue;

  const guard = createClientGuard({ config, metrics: deps.metrics, logger: logger.child({ component: 'client' }) });
  const retryBudget = createRetryBudget(config.retryBudgetPercent, config.retryBudgetMin);
  // One way to an upstream for requests and upgrades alike: the policy in force, one set of latency estimates.
  const routing = createRouting({ config, registry: upstreams, decisions: deps.decisions, queue, random: deps.random, policy: deps.policy });
  const proxy = createProxyHandler({
    config,
    registry: upstreams,
    outliers: deps.outliers,
    retryBudget,
    queue,
    metrics: deps.metrics,
    logger: logger.child({ component: 'proxy' }),
    routing,
  });
  const server = createServer(guard.serverOptions, guard.wrap(proxy.handle));
  guard.attach(server);
  const upgrades = createUpgradeHandler({
    config,
    registry: upstreams,
    routing,
    guard,
    outliers: deps.outliers,
    metrics: deps.metrics,
    logger: logger.child({ component: 'upgrade' }),
  });
  server.on('upgrade', upgrades.handle);

  const stopNow = async (): Promise<void> => {
    stopping = true;
    const closing = new Promise<void>((resolve) => {
      if (!server.listening) resolve();
      else server.close(() => {
        resolve();
      });
    });
    // A keep-alive connection whose last response just ended would hold close() open until the
    // client's idle timeout: sweep idle connections while in-flight requests finish.
    server.closeIdleConnections();
    const sweeper = setInterval(() => {
      server.closeIdleConnections();
    }, 50);
    const deadline = new Promise<'timeout'>((resolve) => {
      const t = setTimeout(() => {
        resolve('timeout');
      }, config.shutdownTimeoutMs);
      void closing.finally(() => {
        clearTimeout(t);
      });
    });
    try {
      if ((await Promise.race([closing, deadline])) === 'timeout') {
        logger.warn({ inFlight: upstreams.inFlight() }, 'shutdown deadline passed; cutting remaining connections');
        queue.stop();
        server.closeAllConnections();
        upgrades.closeAll(); // tunnels are not HTTP connections any more: closeAllConnections misses them
      }
      await closing;
    } finally {
      clearInterval(sweeper);
    }
  };

  let stopped: Promise<void> | undefined;
  return {
    async listen(port, host, reusePort) {
      server.listen({ port, host, reusePort });
      await once(server, 'listening');
      return server.address() as AddressInfo;
    },
    get queueLength() {
      return queue.length;
    },
    upstreamsChanged() {
      proxy.rescueFromUnresponsive();
      let free = 0;
      for (const u of candidatesOf(upstreams.available())) free += u.room; // Infinity without a cap: every waiter can go
      for (let i = Math.min(free, queue.length); i > 0; i--) queue.wakeOne();
    },
    stop() {
      stopped ??= stopNow();
      return stopped;
    },
  };
}
