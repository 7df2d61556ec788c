import { Pool } from '../undici-pool.js';
import type { Candidate } from '../picker/types.js';
import type { UpstreamAddress } from './address.js';
import type { CounterTable } from './counters.js';

/**
 * `up` serves traffic; `unproven` was discovered and waits for its first health probe;
 * `down` failed its checks; `draining` left discovery (or was drained) and only finishes what it has.
 */
export type UpstreamState = 'unproven' | 'up' | 'down' | 'draining';

/** Where an upstream came from: the command line / env, or DNS discovery. */
export type UpstreamSource = 'static' | 'dns';

/** Settings of the keep-alive pool each upstream owns. */
export interface PoolSettings {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** Max sockets per upstream; null = as many as in-flight requests need. */
  readonly connections: number | null;
}

/** The pool settings of every upstream, from the balancer's config (the part of it they read). */
export function poolSettingsOf(config: Omit<PoolSettings, 'connections'>): PoolSettings {
  return {
    connectTimeoutMs: config.connectTimeoutMs,
    headersTimeoutMs: config.headersTimeoutMs,
    bodyTimeoutMs: config.bodyTimeoutMs,
    keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    connections: null,
  };
}

/** `host:port`, with brackets for IPv6 literals. */
export function upstreamId(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * What only the owner of an upstream may change: the registry (on the thread that owns it) or a
 * worker's mirror of it. Whoever constructs an Upstream keeps this object; everyone else reads
 * the same values through the Upstream's getters.
 */
export interface UpstreamFields {
  state: UpstreamState;
  /** The weight the picker uses: configuredWeight, scaled down while slow start ramps it up. */
  weight: number;
  /** The weight from config, discovery or the admin API. */
  configuredWeight: number;
  /** Cap on in-flight requests (0 = none); settable at runtime through the admin API. */
  maxInFlight: number;
  /** Set once the registry has forgotten it: release() then closes the pool when idle. */
  removed: boolean;
  /** When the upstream last became `up` (ms epoch), for slow start. */
  upSince: number;
  /** Consecutive health probe results, for rise/fall. */
  probeSuccesses: number;
  probeFailures: number;
  /** Passive outlier detection: recent failure times, ejections in a row, end of the current one. */
  failureTimes: number[];
  ejections: number;
  ejectedUntil: number;
  /** Drain requested by an operator (not by discovery): when it started and its deadline (ms epoch). */
  drainStartedAt: number;
  drainDeadline: number;
  /**
   * It stopped answering: its last probe, or the failure that ejected it, timed out (a hung
   * process, a host gone without closing its connections). Only a down upstream that is also
   * unresponsive has its waiting requests moved elsewhere (the proxy's rescue). One that answers
   * its probe with a failure (a replica draining before it stops: /healthz 503) or refuses
   * connections (one that stopped accepting) still finishes the requests it has, or closes their
   * connections itself, and then they fail at once and are retried by the usual rules.
   */
  unresponsive: boolean;
}

/** The fields of a new upstream in `state` with `weight`, no cap, no history. */
export function initialFields(state: UpstreamState, weight: number): UpstreamFields {
  return {
    state,
    weight,
    configuredWeight: weight,
    maxInFlight: 0,
    removed: false,
    upSince: 0,
    probeSuccesses: 0,
    probeFailures: 0,
    failureTimes: [],
    ejections: 0,
    ejectedUntil: 0,
    drainStartedAt: 0,
    drainDeadline: 0,
    unresponsive: false,
  };
}

/**
 * One backend origin and its live counters, read-only for everyone but its owner (see
 * UpstreamFields). The counters live in a shared CounterTable slot, so every data-path thread's
 * Upstream for the same origin reads the same numbers.
 */
export class Upstream implements Candidate {
  readonly id: string;
  /**
   * Unique for the life of the process, unlike `slot` (reused once an upstream is forgotten) and
   * `id` (an address can leave and come back): what messages between threads name an upstream by.
   */
  readonly key: number;
  readonly origin: string;
  readonly host: string;
  readonly port: number;
  readonly source: UpstreamSource;
  readonly pool: Pool;
  /** This upstream's cells in `counters`. */
  readonly slot: number;
  private readonly counters: CounterTable;
  private readonly fields: Readonly<UpstreamFields>;

  constructor(address: Omit<UpstreamAddress, 'weight'>, source: UpstreamSource, key: number, fields: UpstreamFields, pool: PoolSettings, counters: CounterTable, slot: number) {
    this.counters = counters;
    this.slot = slot;
    this.key = key;
    this.fields = fields;
    this.host = address.host;
    this.port = address.port;
    this.id = upstreamId(address.host, address.port);
    this.origin = `http://${this.id}`;
    this.source = source;
    this.pool = new Pool(this.origin, {
      connections: pool.connections,
      connectTimeout: pool.connectTimeoutMs,
      headersTimeout: pool.headersTimeoutMs,
      bodyTimeout: pool.bodyTimeoutMs,
      keepAliveTimeout: pool.keepAliveTimeoutMs,
      // Pipelining would make one slow response delay others queued on the same socket, which
      // hides load from least-connections; one request per socket at a time.
      pipelining: 1,
    });
  }

  get state(): UpstreamState {
    return this.fields.state;
  }

  get weight(): number {
    return this.fields.weight;
  }

  get configuredWeight(): number {
    return this.fields.configuredWeight;
  }

  get maxInFlight(): number {
    return this.fields.maxInFlight;
  }

  get removed(): boolean {
    return this.fields.removed;
  }

  get upSince(): number {
    return this.fields.upSince;
  }

  get probeSuccesses(): number {
    return this.fields.probeSuccesses;
  }

  get probeFailures(): number {
    return this.fields.probeFailures;
  }

  get ejections(): number {
    return this.fields.ejections;
  }

  get ejectedUntil(): number {
    return this.fields.ejectedUntil;
  }

  get drainStartedAt(): number {
    return this.fields.drainStartedAt;
  }

  get drainDeadline(): number {
    return this.fields.drainDeadline;
  }

  /** Stopped answering (see UpstreamFields.unresponsive). */
  get unresponsive(): boolean {
    return this.fields.unresponsive;
  }

  /** Passes its health checks and is not leaving (the one definition of healthy). */
  get healthy(): boolean {
    return this.fields.state === 'up';
  }

  /** Requests that still fit under the cap now; Infinity without a cap (the one definition of room). */
  get room(): number {
    const max = this.fields.maxInFlight;
    return max === 0 ? Infinity : Math.max(0, max - this.inFlight);
  }

  /** One more request fits under the cap now. */
  get hasRoom(): boolean {
    return this.room > 0;
  }

  /** Requests in flight on this upstream through this balancer, over every thread (what acquire and release count, and the cap limits). */
  get inFlight(): number {
    return this.counters.inFlight(this.slot);
  }

  /**
   * In flight across the balancers: this one's own plus its live peers' latest reports (equal to
   * inFlight without peers). What the load-reading policies compare (Candidate.inFlightCluster).
   */
  get inFlightCluster(): number {
    return this.counters.inFlight(this.slot) + this.counters.peerInFlight(this.slot);
  }

  /** Requests finished by this upstream (any outcome). */
  get requests(): number {
    return this.counters.upstreamRequests(this.slot);
  }

  /** Attempts that failed (connect, timeout, reset) or answered 5xx. */
  get errors(): number {
    return this.counters.upstreamErrors(this.slot);
  }

  /** Upgraded (WebSocket) connections among inFlight: long-lived, reported apart. */
  get longLived(): number {
    return this.counters.longLived(this.slot);
  }

  countError(): void {
    this.counters.countUpstreamError(this.slot);
  }
}
