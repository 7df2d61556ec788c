import { once } from 'node:events';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createAdminApp } from './admin/app.js';
import { createEventHub } from './admin/event-hub.js';
import { createClientGuard } from './client-guard.js';
import type { Config } from './config.js';
import { createDecisionLog } from './decision-log.js';
import { createDnsDiscovery, resolveAll } from './discovery/dns.js';
import type { DnsDiscovery, Resolve } from './discovery/dns.js';
import { createHealthChecker } from './health/checker.js';
import { createOutlierDetector } from './health/outlier-detector.js';
import { createLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import type { Metrics } from './metrics.js';
import { createProxyHandler } from './proxy.js';
import { createRetryBudget } from './retry-budget.js';
import { takeSnapshot } from './snapshot.js';
import type { Snapshot } from './snapshot.js';
import { createRegistry } from './upstreams/registry.js';
import type { Registry } from './upstreams/registry.js';
import { createUpgradeHandler } from './upgrade.js';
import { createWaitQueue } from './wait-queue.js';

/** What a balancer can be given instead of the real thing (tests). */
export interface BalancerDeps {
  readonly logger?: Logger;
  readonly random?: () => number;
  readonly resolve?: Resolve;
}

/** The ports actually bound (useful with port 0). */
export interface BalancerAddresses {
  readonly data: AddressInfo;
  readonly admin: AddressInfo;
}

export interface Balancer {
  start(): Promise<BalancerAddresses>;
  /** Graceful: not ready, stop accepting, finish in-flight (bounded), close pools. Idempotent. */
  stop(): Promise<void>;
  readonly registry: Registry;
  readonly metrics: Metrics;
  snapshot(): Snapshot;
}

const listen = async (server: Server, port: number, host: string): Promise<AddressInfo> => {
  server.listen(port, host);
  await once(server, 'listening');
  return server.address() as AddressInfo;
};

const close = (server: Server): Promise<void> =>
  new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => {
      resolve();
    });
  });

/** Wires discovery, health, registry, proxy and admin into one balancer. Nothing listens until start(). */
export function createBalancer(config: Config, deps: BalancerDeps = {}): Balancer {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const healthActive = config.health.intervalMs > 0;
  const registry = createRegistry({
    logger: logger.child({ component: 'registry' }),
    pool: {
      connectTimeoutMs: config.connectTimeoutMs,
      headersTimeoutMs: config.headersTimeoutMs,
      bodyTimeoutMs: config.bodyTimeoutMs,
      keepAliveTimeoutMs: config.keepAliveTimeoutMs,
      connections: null,
    },
    maxInFlight: config.maxInFlight,
    slowStartMs: config.slowStartMs,
    undrainedState: healthActive ? 'unproven' : 'up',
    // Configured upstreams are trusted like nginx/HAProxy servers; discovered ones must pass a probe.
    initialState: (source) => (source === 'dns' && healthActive ? 'unproven' : 'up'),
  });
  const decisions = createDecisionLog();
  const health = createHealthChecker(registry, config, logger.child({ component: 'health' }));
  const outliers = createOutlierDetector(registry, config, logger.child({ component: 'outliers' }));
  const queue = createWaitQueue(config.queueLength, config.queueTimeoutMs);
  const metrics = createMetrics(registry, () => queue.length);
  const retryBudget = createRetryBudget(config.retryBudgetPercent, config.retryBudgetMin);
  const snapshot = (): Snapshot => takeSnapshot(registry, metrics.totals, decisions, config);
  const events = createEventHub(snapshot, config.eventsIntervalMs);

  let discovery: DnsDiscovery | undefined;
  if (config.discovery !== undefined) {
    discovery = createDnsDiscovery({
      ...config.discovery,
      resolve: deps.resolve ?? resolveAll,
      logger: logger.child({ component: 'discovery' }),
      onAddresses: (addresses) => {
        registry.sync('dns', addresses);
        health.probeUnproven();
      },
    });
  }

  // Client input limits (client-guard.ts) sit in front of the proxy; Upgrade requests go to upgrade.ts.
  const guard = createClientGuard({ config, promRegistry: metrics.registry, logger: logger.child({ component: 'client' }) });
  const dataServer = createServer(
    guard.serverOptions,
    guard.wrap(
      createProxyHandler({ config, registry, outliers, retryBudget, queue, metrics, decisions, logger: logger.child({ component: 'proxy' }), random: deps.random ?? Math.random }),
    ),
  );
  guard.attach(dataServer);
  const upgrades = createUpgradeHandler({
    config, registry, decisions, guard, outliers, queue, promRegistry: metrics.registry, logger: logger.child({ component: 'upgrade' }), random: deps.random ?? Math.random,
  });
  dataServer.on('upgrade', upgrades.handle);
  let ready = false;
  const admin = createAdminApp({
    metrics, snapshot, events, ready: () => ready, logger: logger.child({ component: 'admin' }), writes: { registry, token: config.adminToken },
  });
  const adminHandler = admin.callback();
  // Koa's callback handles its own errors; the promise it returns carries nothing more.
  const adminServer = createServer((req, res) => {
    void adminHandler(req, res);
  });

  let started: Promise<BalancerAddresses> | undefined;
  let stopped: Promise<void> | undefined;

  const stopNow = async (): Promise<void> => {
    ready = false;
    logger.info('shutting down: no new connections, finishing in-flight requests');
    discovery?.stop();
    health.stop();
    outliers.stop();
    events.stop();
    const closing = Promise.all([close(dataServer), close(adminServer)]);
    adminServer.closeAllConnections();
    // A keep-alive connection whose last response just ended would hold close() open until the
    // client's idle timeout: sweep idle connections while in-flight requests finish.
    dataServer.closeIdleConnections();
    const sweeper = setInterval(() => {
      dataServer.closeIdleConnections();
    }, 50);
    void closing.finally(() => {
      clearInterval(sweeper);
    });
    const deadline = new Promise<'timeout'>((resolve) => {
      const t = setTimeout(() => {
        resolve('timeout');
      }, config.shutdownTimeoutMs);
      void closing.finally(() => {
        clearTimeout(t);
      });
    });
    if ((await Promise.race([closing, deadline])) === 'timeout') {
      logger.warn({ inFlight: registry.inFlight() }, 'shutdown deadline passed; cutting remaining connections');
      queue.stop();
      dataServer.closeAllConnections();
      upgrades.closeAll(); // tunnels are not HTTP connections any more: closeAllConnections misses them
    }
    await closing;
    await registry.stop();
    logger.info('stopped');
  };

  return {
    registry,
    metrics,
    snapshot,
    start() {
      started ??= (async () => {
        registry.sync('static', config.upstreams);
        await discovery?.start();
        health.start();
        const [data, adminAddress] = await Promise.all([
          listen(dataServer, config.port, config.host),
          listen(adminServer, config.adminPort, config.adminHost),
        ]);
        ready = true;
        logger.info(
          { data: `http://${data.address}:${data.port}`, admin: `http://${adminAddress.address}:${adminAddress.port}`, upstreams: registry.list().map((u) => u.id) },
          'balancer listening',
        );
        return { data, admin: adminAddress };
      })();
      return started;
    },
    stop() {
      stopped ??= stopNow();
      return stopped;
    },
  };
}
