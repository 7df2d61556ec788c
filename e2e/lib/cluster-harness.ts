import type { Snapshot } from './balancer-api.js';
import type { ContainerInfo } from './docker-inspect.js';
import type { HttpClient } from './http.js';

/** Durations (ms) and counts of one run, for the report (`e2e/artifacts/<compose|swarm>-timings.json`). */
export type Figures = Record<string, number>;

/**
 * A real cluster on 127.0.0.1 (nginx, balancer, backends, Prometheus) as every end-to-end suite
 * sees it, whichever orchestrator runs it. Compose's `Cluster` and Swarm's `SwarmCluster` extend it
 * with their own extras only; a suite that uses nothing else takes this type, so it could run on
 * either. e2e/test/cluster-harness.spec.ts fails when the two grow a member of the same name that
 * is not here.
 */
export interface ClusterHarness<Replica extends ContainerInfo = ContainerInfo> {
  /** nginx: the page, /images/* (balancer data port) and /api/* (balancer admin). */
  readonly web: HttpClient;
  /** The balancers' published data port (nginx passes every path to a replica). */
  readonly balancer: HttpClient;
  readonly prometheus: HttpClient;
  /** Filled by start(), the suites and stop(), which saves them. */
  readonly figures: Figures;
  /** Builds the images, starts the cluster with N backends, then waits until every balancer routes to all N. */
  start(replicas: number): Promise<void>;
  /** One balancer's Snapshot through nginx (`/api/upstreams`: the replica this client's /api/ reaches). */
  snapshot(): Promise<Snapshot>;
  /** Every running balancer replica's own Snapshot (the replicas share their in-flight counts). */
  balancerSnapshots(): Promise<Snapshot[]>;
  /** The backend replicas, running or not. */
  backends(): Promise<Replica[]>;
  /**
   * Has the orchestrator run N backends; resolves with the command's duration (ms). Routing is not
   * awaited: waitForBackends is.
   */
  scale(replicas: number): Promise<number>;
  /** Waits until exactly N backends run and every balancer's available upstreams are exactly their addresses; returns them. */
  waitForBackends(replicas: number, timeoutMs?: number): Promise<Replica[]>;
  /** Saves the logs and figures, then removes what the run made. Idempotent; each platform says what it resolves with. */
  stop(): Promise<unknown>;
}
