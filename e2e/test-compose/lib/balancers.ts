import { backendAnswers } from '../../lib/backend-answers.js';
import { readSnapshot, type Snapshot } from '../../lib/balancer-api.js';
import { createHttpClient, type HttpClient } from '../../lib/http.js';
import { waitForRoutedBackends } from '../../lib/routed-backends.js';
import type { Compose, ContainerInfo } from './compose.js';

/** The balancer service: every replica active, sharing in-flight counts with the others. */
export const BALANCER_SERVICE = 'balancer';
/** How many balancer replicas the end-to-end cluster runs (`--scale balancer=2`). */
export const BALANCER_REPLICAS = 2;
/** The balancers' admin port inside the Compose network. */
export const ADMIN_PORT = 9001;
/** The balancers' data port inside the Compose network. */
export const DATA_PORT = 8001;

/** One running balancer replica: its container and its own origins on the project's network. */
export interface BalancerReplica {
  readonly container: ContainerInfo;
  /** `http://<container address>:9001` */
  readonly admin: string;
  /** `http://<container address>:8001` */
  readonly data: string;
}

/**
 * The balancer replicas of a running Compose project, reached at their container addresses on
 * the project's bridge network (the host reaches its own containers there, never anything else).
 */
export interface Balancers {
  /** The running replicas, lowest Compose number first. */
  readonly replicas: () => Promise<BalancerReplica[]>;
  /** Admin origins of the running replicas, lowest Compose number first. */
  readonly origins: () => Promise<string[]>;
  /** Every running replica's own Snapshot, in the order of `origins`. */
  readonly snapshots: () => Promise<Snapshot[]>;
  /** A kept-alive client of one origin (admin or data), made once. */
  readonly client: (origin: string) => HttpClient;
  /** One admin request with the bearer token; the status and the parsed JSON answer (given up after `timeoutMs`, 10 s by default). */
  readonly request: (origin: string, method: string, path: string, body?: unknown, timeoutMs?: number) => Promise<{ status: number; body: unknown }>;
  /**
   * Waits until exactly N backend containers run and every balancer replica routes to exactly them
   * (waitForRoutedBackends), with as many replicas answering as expected; returns the backends.
   */
  readonly waitForBackends: (replicas: number, timeoutMs?: number) => Promise<ContainerInfo[]>;
  /** Releases the kept-alive connections. */
  readonly close: () => Promise<void>;
}

/** How long a listing of the replicas is reused by `snapshots`. */
const LIST_REUSE_MS = 500;

/** Compose's replica number of a container (1, 2, ...). */
const numberOf = (c: ContainerInfo): number => Number(c.labels['com.docker.compose.container-number'] ?? Infinity);

/**
 * `token` is the admin write token ('' when the caller only reads). `expected` is how many
 * balancer replicas must answer before `waitForBackends` is satisfied; undefined = as many as run.
 */
export function createBalancers(compose: Compose, token: string, expected?: number): Balancers {
  const clients = new Map<string, HttpClient>();
  const client = (origin: string): HttpClient => {
    let c = clients.get(origin);
    if (!c) clients.set(origin, (c = createHttpClient(origin)));
    return c;
  };
  const replicas = async (): Promise<BalancerReplica[]> => {
    const running = (await compose.containers(BALANCER_SERVICE)).filter((b) => b.status === 'running').sort((a, b) => numberOf(a) - numberOf(b));
    return running.map((container) => {
      if (!container.ip) throw new Error(`balancer ${container.hostname} has no address yet`);
      return { container, admin: `http://${container.ip}:${ADMIN_PORT}`, data: `http://${container.ip}:${DATA_PORT}` };
    });
  };
  const origins = async (): Promise<string[]> => (await replicas()).map((r) => r.admin);
  // Listing the replicas is `docker ps` and `docker inspect` (~100 ms): a test that polls every
  // balancer's view every 20 ms reads the list at most every LIST_REUSE_MS. A replica that left
  // in between fails the read, which the pollers take as "not yet".
  let listed: { at: number; origins: Promise<string[]> } | undefined;
  const recentOrigins = (): Promise<string[]> => {
    if (!listed || performance.now() - listed.at > LIST_REUSE_MS) listed = { at: performance.now(), origins: origins() };
    const current = listed;
    current.origins.catch(() => {
      if (listed === current) listed = undefined;
    });
    return current.origins;
  };
  const snapshots = async (): Promise<Snapshot[]> => Promise.all((await recentOrigins()).map((origin) => readSnapshot(client(origin))));

  return {
    replicas,
    origins,
    snapshots,
    client,
    request: async (origin, method, path, body, timeoutMs = 10_000) => {
      const res = await fetch(`${origin}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      return { status: res.status, body: await res.json() };
    },
    waitForBackends: (backends, timeoutMs = 60_000) =>
      waitForRoutedBackends(
        backends,
        {
          backends: () => compose.containers('backend'),
          requireHealthy: false,
          // Compose's health checks are rare by design, so the proof that a recreated replica (which
          // often gets its predecessor's address) listens is asking it.
          answers: (replica) => backendAnswers(replica),
          views: async () => {
            const views = await snapshots();
            return views.length > 0 && (expected === undefined || views.length === expected) ? views : undefined;
          },
        },
        // Each poll runs `docker ps` and `docker inspect` twice (backends and balancers): tens of ms
        // of CPU each, which a tight loop would take from the cluster under measurement.
        { what: `${backends} running backends, answering, all up and available in every balancer${expected === undefined ? '' : ` (${expected} replicas)`}`, timeoutMs, intervalMs: 1_000 },
      ),
    close: async () => {
      await Promise.all([...clients.values()].map((c) => c.close()));
    },
  };
}
