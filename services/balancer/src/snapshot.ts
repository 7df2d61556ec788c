import type { DecisionLog, Decision } from './decision-log.js';
import type { PeerView } from './peers/peer-table.js';
import type { TieBreak } from './picker/types.js';
import type { PolicyName } from './picker/policy.js';
import { candidatesOf } from './upstreams/candidates.js';
import type { UpstreamTable } from './upstreams/registry.js';
import type { Upstream, UpstreamSource, UpstreamState } from './upstreams/upstream.js';

/** One upstream as `/api/upstreams` and `/api/events` show it. */
export interface UpstreamView {
  readonly id: string;
  /** Configured weight. */
  readonly weight: number;
  /** Weight the picker uses now (lower while slow start ramps). */
  readonly effectiveWeight: number;
  /** Cap on in-flight requests; 0 = none. */
  readonly maxInFlight: number;
  /** Upgraded (WebSocket) connections, counted in inFlight too. */
  readonly longLived: number;
  /** Present while an operator drain runs: remainingMs counts down to the deadline. */
  readonly drain?: { readonly startedAt: number; readonly deadline: number; readonly remainingMs: number; readonly drained: boolean };
  /** In flight through this balancer. */
  readonly inFlight: number;
  /** In flight across the balancers: inFlight plus the live peers' latest reports (= inFlight without peers). */
  readonly inFlightCluster: number;
  readonly requests: number;
  readonly errors: number;
  readonly state: UpstreamState;
  readonly available: boolean;
  readonly source: UpstreamSource;
}

/** The whole balancer at one instant (the contract in docs/contracts.md). */
export interface Snapshot {
  readonly time: number;
  /**
   * Which balancer replica this is (its host name: the container id under Compose). Every replica
   * keeps its own counts, so a view of one replica shows only the requests it routed; with peers,
   * each upstream's inFlightCluster adds what the other replicas reported.
   */
  readonly instance: string;
  readonly tieBreak: TieBreak;
  /** The selection policy in force. */
  readonly policy: PolicyName;
  readonly explain: boolean;
  /** No upstream passes its checks and requests are spread over all of them (panic mode). */
  readonly panic: boolean;
  readonly totals: { readonly requests: number; readonly inFlight: number; readonly errors: number };
  readonly imbalance: number;
  readonly upstreams: readonly UpstreamView[];
  readonly decisions: readonly Decision[];
  /** The balancers this one shares in-flight counts with (empty without --peer / --peers-dns). */
  readonly peers: readonly PeerView[];
  /**
   * This balancer sends its counts to the peers and picks on theirs too (false without peers or
   * switched off by PUT /api/peers). Always sent; optional in the type so that snapshots made by hand need not say.
   */
  readonly sharing?: boolean;
}

/** max ÷ mean in-flight over the given upstreams; 1 when the load is even or there is none. */
export function imbalanceOf(upstreams: readonly Pick<Upstream, 'inFlight'>[]): number {
  if (upstreams.length === 0) return 1;
  let max = 0;
  let sum = 0;
  for (const u of upstreams) {
    max = Math.max(max, u.inFlight);
    sum += u.inFlight;
  }
  return sum === 0 ? 1 : max / (sum / upstreams.length);
}

/** Reads the upstreams and the shared totals into a Snapshot. */
export function takeSnapshot(
  registry: UpstreamTable,
  decisions: DecisionLog,
  settings: { readonly tieBreak: TieBreak; readonly explain: boolean; readonly instance: string; readonly policy: PolicyName; readonly peers?: readonly PeerView[]; readonly sharing?: boolean },
): Snapshot {
  const now = Date.now();
  // `available` is what the data path would pick from now: the same candidates (panic set and caps included).
  const candidates = new Set(candidatesOf(registry.available()));
  const upstreams = registry.list().map(
    (u): UpstreamView => ({
      id: u.id,
      weight: u.configuredWeight,
      effectiveWeight: Math.round(u.weight * 100) / 100,
      maxInFlight: u.maxInFlight,
      longLived: u.longLived,
      ...(u.drainStartedAt > 0
        ? { drain: { startedAt: u.drainStartedAt, deadline: u.drainDeadline, remainingMs: Math.max(0, u.drainDeadline - now), drained: u.inFlight === 0 } }
        : {}),
      inFlight: u.inFlight,
      inFlightCluster: u.inFlightCluster,
      requests: u.requests,
      errors: u.errors,
      state: u.state,
      available: candidates.has(u),
      source: u.source,
    }),
  );
  const totals = registry.counters.totals();
  return {
    time: now,
    instance: settings.instance,
    tieBreak: settings.tieBreak,
    policy: settings.policy,
    explain: settings.explain,
    panic: registry.panicking(),
    totals: { requests: totals.requests, inFlight: registry.inFlight(), errors: totals.errors },
    imbalance: Math.round(imbalanceOf(registry.available()) * 100) / 100,
    upstreams,
    decisions: decisions.recent(),
    peers: settings.peers ?? [],
    sharing: settings.sharing ?? false,
  };
}
