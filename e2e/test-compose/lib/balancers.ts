import { readSnapshot, type Snapshot } from '../../lib/balancer-api.js';
import { createHttpClient, type HttpClient } from '../../lib/http.js';
import { waitForRoutedBackends } from '../../lib/routed-backends.js';
import type { Compose, ContainerInfo } from './compose.js';

/** The balancer services: the active one (nginx sends it everything) and the hot standby. */
export const BALANCER_SERVICES = ['balancer', 'balancer-b'] as const;
/** The balancers' admin port inside the Compose network. */
export const ADMIN_PORT = 9001;

/**
 * The balancer replicas of a running Compose project, reached at their container addresses on
 * the project's bridge network (the host reaches its own containers there, never anything else).
 */
export interface Balancers {
  /** Admin origins of the running replicas, the active one first. */
  readonly origins: () => Promise<string[]>;
  /** Every replica's own Snapshot. */
  readonly snapshots: () => Promise<Snapshot[]>;
  /** One admin request with the bearer token; the status and the parsed JSON answer. */
  readonly request: (origin: string, method: string, path: string, body?: unknown) => Promise<{ status: number; body: unknown }>;
  /** Waits until exactly N backend containers run and every balancer replica routes to exactly them (waitForRoutedBackends); returns them. */
  readonly waitForBackends: (replicas: number, timeoutMs?: number) => Promise<ContainerInfo[]>;
  /** Releases the kept-alive connections. */
  readonly close: () => Promise<void>;
}

/** `token` is the admin write token ('' when the caller only reads). */
export function createBalancers(compose: Compose, token: string): Balancers {
  const clients = new Map<string, HttpClient>();
  const origins = async (): Promise<string[]> => {
    const containers = (await Promise.all(BALANCER_SERVICES.map((s) => compose.containers(s)))).flat().filter((b) => b.status === 'running');
    return containers.map((b) => {
      if (!b.ip) throw new Error(`balancer ${b.hostname} has no address yet`);
      return `http://${b.ip}:${ADMIN_PORT}`;
    });
  };
  const snapshots = async (): Promise<Snapshot[]> =>
    Promise.all(
      (await origins()).map((origin) => {
        let client = clients.get(origin);
        if (!client) clients.set(origin, (client = createHttpClient(origin)));
        return readSnapshot(client);
      }),
    );

  return {
    origins,
    snapshots,
    request: async (origin, method, path, body) => {
      const res = await fetch(`${origin}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      });
      return { status: res.status, body: await res.json() };
    },
    waitForBackends: (replicas, timeoutMs = 60_000) =>
      waitForRoutedBackends(
        replicas,
        {
          backends: () => compose.containers('backend'),
          requireHealthy: false,
          views: async () => {
            const views = await snapshots();
            return views.length === BALANCER_SERVICES.length ? views : undefined;
          },
        },
        // Each poll runs `docker ps` and `docker inspect` three times (backends and both balancers):
        // tens of ms of CPU each, which a tight loop would take from the cluster under measurement.
        { what: `${replicas} running backends, all available in every balancer`, timeoutMs, intervalMs: 1_000 },
      ),
    close: async () => {
      await Promise.all([...clients.values()].map((c) => c.close()));
    },
  };
}
