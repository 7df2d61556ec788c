import type { Snapshot } from './balancer-api.js';
import type { ContainerInfo } from './docker-inspect.js';
import { upstreamIdOf } from './upstream-id.js';
import { waitFor, type WaitOptions } from './wait.js';

/** Where a harness reads what `waitForRoutedBackends` compares: the orchestrator's side and the balancers'. */
export interface RoutingSources<Replica extends ContainerInfo> {
  /** The backend replicas, running or not. */
  backends(): Promise<Replica[]>;
  /**
   * Whether a running replica must also pass Docker's health check. Compose's checks run rarely by
   * design (each costs a `runc exec`), so there the balancers' own probes are the readiness that
   * counts; Swarm only puts a task in `tasks.backend` once it is healthy.
   */
  readonly requireHealthy: boolean;
  /** Every balancer view that must route to the replicas; undefined while one of them is missing. */
  views(): Promise<Snapshot[] | undefined>;
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && [...a].sort().join(' ') === [...b].sort().join(' ');

/**
 * Waits until exactly N backend replicas run (with an address, and healthy where required) and
 * every view's available upstreams are exactly their addresses; returns them.
 */
export function waitForRoutedBackends<Replica extends ContainerInfo>(replicas: number, sources: RoutingSources<Replica>, options: WaitOptions): Promise<Replica[]> {
  return waitFor(async () => {
    const running = (await sources.backends()).filter((r) => r.status === 'running');
    if (running.length !== replicas || running.some((r) => !r.ip || (sources.requireHealthy && r.health !== 'healthy'))) return undefined;
    const views = await sources.views();
    if (views === undefined) return undefined;
    const ids = running.map(upstreamIdOf);
    return views.every((v) => sameSet(v.upstreams.filter((u) => u.available).map((u) => u.id), ids)) ? running : undefined;
  }, options);
}
