import type { Snapshot, UpstreamView } from './balancer-api.js';
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
  /**
   * Whether this very replica answers now (its own process, not an earlier one at the same
   * address). Docker hands a recreated container the address its predecessor had, so a view that
   * lists the address as up may still speak of the predecessor; where the orchestrator's health
   * check is not required, this is the proof that the new process listens.
   */
  readonly answers?: (replica: Replica) => Promise<boolean>;
  /** Every balancer view that must route to the replicas; undefined while one of them is missing. */
  views(): Promise<Snapshot[] | undefined>;
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && [...a].sort().join(' ') === [...b].sort().join(' ');

/**
 * An upstream the view routes to because it passes its checks: `available` alone also holds for
 * the panic set (every upstream down or unproven, spread over anyway), where nothing is proven.
 */
const routed = (u: UpstreamView): boolean => u.available && u.state === 'up';

/**
 * Waits until exactly N backend replicas run (with an address, healthy where required, answering
 * where the sources can ask them) and every view's upstreams that are up and available are
 * exactly their addresses; returns them.
 */
export function waitForRoutedBackends<Replica extends ContainerInfo>(replicas: number, sources: RoutingSources<Replica>, options: WaitOptions): Promise<Replica[]> {
  return waitFor(async () => {
    const running = (await sources.backends()).filter((r) => r.status === 'running');
    if (running.length !== replicas || running.some((r) => !r.ip || (sources.requireHealthy && r.health !== 'healthy'))) return undefined;
    const { answers } = sources;
    if (answers !== undefined && !(await Promise.all(running.map((r) => answers(r)))).every(Boolean)) return undefined;
    const views = await sources.views();
    if (views === undefined) return undefined;
    const ids = running.map(upstreamIdOf);
    return views.every((v) => sameSet(v.upstreams.filter(routed).map((u) => u.id), ids)) ? running : undefined;
  }, options);
}
