import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from 'pino';
import { createAdminApp } from './admin/app.js';
import { registerPeerRoutes } from './admin/peers-api.js';
import { coalesced } from './coalesce.js';
import { createEventHub } from './admin/event-hub.js';
import { createWorkerPool } from './cluster/worker-pool.js';
import { planWorkers } from './cluster/workers.js';
import type { Config } from './config.js';
import { createDataPlane } from './data-path/data-plane.js';
import { createDecisionLog } from './decision-log.js';
import { createDnsDiscovery, resolveAll } from './discovery/dns.js';
import type { DnsDiscovery, Resolve } from './discovery/dns.js';
import { createHealthChecker } from './health/checker.js';
import { createOutlierDetector } from './health/outlier-detector.js';
import { createLab } from './lab/lab.js';
import { registerLabOffRoutes } from './lab/routes.js';
import { createLogger } from './logger.js';
import { createServer } from './node-http.js';
import { createMetrics } from './metrics.js';
import { createPolicySetting } from './picker/policy.js';
import type { PolicySetting } from './picker/policy.js';
import type { Metrics } from './metrics.js';
import { createPeers } from './peers/peers.js';
import type { Peers } from './peers/peers.js';
import { createWriteRelay } from './peers/write-relay.js';
import type { AdminWrite } from './peers/write-relay.js';
import { takeSnapshot } from './snapshot.js';
import type { Snapshot } from './snapshot.js';
import { CounterTable } from './upstreams/counters.js';
import { createRegistry } from './upstreams/registry.js';
import type { Registry } from './upstreams/registry.js';
import { poolSettingsOf } from './upstreams/upstream.js';

/** What a balancer can be given instead of the real thing (tests). */
export interface BalancerDeps {
  readonly logger?: Logger;
  readonly random?: () => number;
  readonly resolve?: Resolve;
  /** Node's version, which decides whether several data-path threads can share the port. */
  readonly nodeVersion?: string;
  /** A data-path thread died: counts can no longer be trusted (default: log; main.ts exits). */
  readonly onFatal?: (err: Error) => void;
  /** Name of this balancer replica in snapshots (default: the host name). */
  readonly instance?: string;
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
  /** Threads on the data path (1 = this thread). */
  readonly workers: number;
  /** The selection policy in force on every data-path thread. */
  readonly policy: PolicySetting;
  /** The balancers this one shares in-flight counts with (inert without --peer / --peers-dns). */
  readonly peers: Peers;
  snapshot(): Snapshot;
}

/** Most upstreams known at once (DNS discovery of a large service included). */
const MAX_UPSTREAMS = 1024;

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

/**
 * Wires discovery, health, registry, the data path and admin into one balancer. This thread owns
 * the registry, health checks, discovery and admin, and proxies; with `config.workers` > 1,
 * worker threads proxy too, on the same port and with the same in-flight counts.
 * Nothing listens until start().
 */
export function createBalancer(config: Config, deps: BalancerDeps = {}): Balancer {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const plan = planWorkers(config.workers, deps.nodeVersion ?? process.versions.node);
  // Asked for explicitly, a fallback is worth a warning; by default (auto) it is only information.
  if (plan.note !== undefined) {
    if (config.workers === 0) logger.info(plan.note);
    else logger.warn(plan.note);
  }
  const threaded = plan.count > 1;
  // Built in the order they depend on each other; the events that flow back (upstream changes to
  // the data path and the workers) are wired at the end, once everything they reach exists.

  // 1. Shared counts: one row of statistics per data-path thread, this one (0) and each worker (1..N-1).
  const counters = CounterTable.create(MAX_UPSTREAMS, plan.count);
  // 2. The other data-path threads: they get the registry and what they report to when they start.
  const workerPool = threaded
    ? createWorkerPool({ count: plan.count - 1, config, counters, logger, onFatal: deps.onFatal ?? (() => undefined) })
    : undefined;
  // 3. The one owner of upstream state; with workers, a slot is freed once every worker let go of it.
  const healthActive = config.health.intervalMs > 0;
  const registry = createRegistry({
    logger: logger.child({ component: 'registry' }),
    pool: poolSettingsOf(config),
    counters,
    maxInFlight: config.maxInFlight,
    slowStartMs: config.slowStartMs,
    panic: config.panic,
    rules: {
      rise: config.health.rise,
      fall: config.health.fall,
      activeChecks: healthActive,
      passiveFailures: config.passiveFailures,
      passiveWindowMs: config.passiveWindowMs,
      passiveDownMs: config.passiveDownMs,
    },
    undrainedState: healthActive ? 'unproven' : 'up',
    // Configured upstreams are trusted like nginx/HAProxy servers; discovered ones must pass a probe.
    initialState: (source) => (source === 'dns' && healthActive ? 'unproven' : 'up'),
    ...(workerPool !== undefined ? { releaseSlot: (slot: number) => { workerPool.releaseSlot(slot); } } : {}),
  });
  // 4. What the picker is told and what it tells: one policy for the process (workers get every
  //    change as a message), and the log of recent decisions.
  const decisions = createDecisionLog();
  const policy = createPolicySetting(config.policy, (name) => {
    workerPool?.setPolicy(name);
    logger.info({ policy: name }, 'selection policy changed');
  });
  // 5. Health: both report to the registry, which decides.
  const health = createHealthChecker(registry, config, logger.child({ component: 'health' }));
  const outliers = createOutlierDetector(registry);
  // 6. This thread's data path (one isolate fewer than a dedicated control thread: ~35 MB less).
  const metrics = createMetrics(registry, { processMetrics: true, upstreamGauges: true, policy: () => policy.current });
  const dataPlane = createDataPlane({
    config,
    upstreams: registry,
    outliers,
    metrics,
    decisions,
    logger,
    random: deps.random ?? Math.random,
    policy,
    sharedWithOtherThreads: threaded,
  });
  // 7. The wiring back: the data path and the workers follow every upstream change.
  metrics.readQueueLengthFrom(() => dataPlane.queueLength);
  // As an event, once per burst: never inside the call that changed the state (a failing attempt's
  // own report must not re-enter the proxy that is still handling that attempt).
  registry.onChange(
    coalesced(() => {
      workerPool?.broadcast();
      dataPlane.upstreamsChanged();
    }),
  );
  // 8. Peer balancers: their reported counts reach every thread's picker through shared cells.
  const peers = createPeers({
    config,
    upstreams: registry,
    resolve: deps.resolve ?? resolveAll,
    logger: logger.child({ component: 'peers' }),
    metrics: metrics.registry,
  });
  // Admin writes hold for the whole tier: each one from a client is relayed to the live peers.
  const relay = peers.enabled ? createWriteRelay({ peers: () => peers.view(), instanceId: peers.instanceId, logger: logger.child({ component: 'write-relay' }) }) : undefined;
  const instance = deps.instance ?? hostname();
  const snapshot = (): Snapshot => takeSnapshot(registry, decisions, { tieBreak: config.tieBreak, explain: config.explain, instance, policy: policy.current, peers: peers.view(), sharing: peers.enabled && peers.sharing });
  const events = createEventHub(snapshot, config.eventsIntervalMs);
  /** Prometheus text: this thread's metrics plus every worker's, summed per series. */
  const scrape = async (): Promise<string> => {
    if (workerPool === undefined) return metrics.registry.metrics();
    const all = [await metrics.registry.getMetricsAsJSON(), ...(await workerPool.scrape())];
    return AggregatorRegistry.aggregate(all).metrics();
  };

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

  const adminToken = { value: config.adminToken, source: config.adminTokenSource };
  const adminLogger = logger.child({ component: 'admin' });
  // The lab (optional, off by default) sends to this balancer's own data port, and nowhere else.
  // Off, nothing of it exists but routes that say it is off.
  let dataUrl = '';
  const lab = config.lab
    ? createLab({ dataUrl: () => dataUrl, registry, policy, peers, backendToken: config.backendAdminToken, adminToken, logger: logger.child({ component: 'lab' }), adminLogger })
    : undefined;

  let ready = false;
  const admin = createAdminApp({
    metrics, scrape, snapshot, events, ready: () => ready, logger: adminLogger, writes: { registry, token: adminToken, policy, ...(relay === undefined ? {} : { relay: (w: AdminWrite) => relay.relay(w) }) },
    routes: [
      (router) => {
        registerPeerRoutes(router, { peers, token: adminToken, logger: adminLogger });
      },
      lab?.routes ?? registerLabOffRoutes,
    ],
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
    await lab?.stop();
    discovery?.stop();
    health.stop();
    outliers.stop();
    events.stop();
    const adminClosed = close(adminServer);
    adminServer.closeAllConnections();
    await Promise.all([dataPlane.stop(), workerPool?.stop(), adminClosed]);
    // Only now: while in-flight requests finish, the peers still see them.
    await peers.stop();
    await registry.stop();
    logger.info('stopped');
  };

  // This thread binds first (port 0 = any free one); the workers join it on the same port.
  const listenData = async (): Promise<AddressInfo> => {
    const address = await dataPlane.listen(config.port, config.host, threaded);
    await workerPool?.start(address.port, {
      registry,
      policy: () => policy.current,
      onFailure: (u, reason) => {
        outliers.recordFailure(u, reason);
      },
      onSuccess: (u) => {
        outliers.recordSuccess(u);
      },
      onDecision: (chosen, reason, time) => {
        decisions.record(chosen, reason, time);
      },
    });
    return address;
  };

  return {
    registry,
    metrics,
    workers: plan.count,
    policy,
    peers,
    snapshot,
    start() {
      started ??= (async () => {
        registry.sync('static', config.upstreams);
        await discovery?.start();
        // Before listening: the first requests already pick on the peers' counts.
        await peers.start();
        // Listen only once every upstream had its first probe: a restarted balancer that nginx
        // sends traffic to at once must not answer 503 LB_NO_UPSTREAM in the meantime.
        await health.start();
        const [data, adminAddress] = await Promise.all([listenData(), listen(adminServer, config.adminPort, config.adminHost)]);
        // A wildcard address is reached on loopback; an explicit one as it is.
        const host = ['0.0.0.0', '::', ''].includes(config.host) ? '127.0.0.1' : data.address;
        dataUrl = `http://${host.includes(':') ? `[${host}]` : host}:${data.port}`;
        // From the next report on, the peers learn where this balancer takes requests (the lab's two-balancer runs).
        peers.setOwnPorts({ data: data.port, admin: adminAddress.port });
        ready = true;
        logger.info(
          {
            data: `http://${data.address}:${data.port}`,
            admin: `http://${adminAddress.address}:${adminAddress.port}`,
            upstreams: registry.list().map((u) => u.id),
            workers: plan.count,
          },
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
