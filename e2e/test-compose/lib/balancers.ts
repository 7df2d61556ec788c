import type { Snapshot } from './balancer-api.js';
import type { Compose, ContainerInfo } from './compose.js';
import { createHttpClient, type HttpClient } from './http.js';
import { waitFor } from './wait.js';

/** The port every backend replica listens on inside the Compose network. */
export const BACKEND_PORT = 8002;
/** The balancer services: the active one (nginx sends it everything) and the hot standby. */
export const BALANCER_SERVICES = ['balancer', 'balancer-b'] as const;
/** The balancers' admin port inside the Compose network. */
export const ADMIN_PORT = 9001;

/** `<ip>:8002`: the balancer's upstream id and Prometheus' instance label of a replica. */
export const upstreamIdOf = (c: ContainerInfo): string => `${c.ip ?? '?'}:${BACKEND_PORT}`;

const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && [...a].sort().join(' ') === [...b].sort().join(' ');

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
  /**
   * Waits until exactly N backend containers run and every balancer replica's available upstreams
   * are exactly their addresses; returns them. The balancers' own probes are the readiness that
   * counts (Docker's health checks are rare by design: they cost a `runc exec` each).
   */
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
        return client.json<Snapshot>('/api/upstreams', 5_000);
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
    // Each poll runs `docker ps` and `docker inspect` three times (backends and both balancers):
    // tens of ms of CPU each, which a tight loop would take from the cluster under measurement.
    waitForBackends: (replicas, timeoutMs = 60_000) =>
      waitFor(
        async () => {
          const running = (await compose.containers('backend')).filter((c) => c.status === 'running');
          if (running.length !== replicas || running.some((c) => !c.ip)) return undefined;
          const views = await snapshots();
          if (views.length !== BALANCER_SERVICES.length) return undefined;
          const ids = running.map(upstreamIdOf);
          return views.every((v) => sameSet(v.upstreams.filter((u) => u.available).map((u) => u.id), ids)) ? running : undefined;
        },
        { what: `${replicas} running backends, all available in every balancer`, timeoutMs, intervalMs: 1_000 },
      ),
    close: async () => {
      await Promise.all([...clients.values()].map((c) => c.close()));
    },
  };
}
