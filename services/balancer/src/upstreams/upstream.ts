import { Pool } from 'undici';
import type { Config } from '../config.js';
import type { Candidate } from '../picker/least-connections.js';
import type { CounterTable } from './counters.js';

/**
 * `up` serves traffic; `unproven` was discovered and waits for its first health probe;
 * `down` failed its checks; `draining` left discovery (or was drained) and only finishes what it has.
 */
export type UpstreamState = 'unproven' | 'up' | 'down' | 'draining';

/** Where an upstream came from: the command line / env, or DNS discovery. */
export type UpstreamSource = 'static' | 'dns';

/** One upstream address as configured or discovered. */
export interface UpstreamAddress {
  readonly host: string;
  readonly port: number;
  readonly weight: number;
}

/** Settings of the keep-alive pool each upstream owns. */
export interface PoolSettings {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** Max sockets per upstream; null = as many as in-flight requests need. */
  readonly connections: number | null;
}

/** The pool settings of every upstream, from the balancer's config. */
export function poolSettingsOf(config: Config): PoolSettings {
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
 * One backend origin and its live counters. Mutated only by the registry (state) and by the
 * proxy through the registry's acquire/release pair. The counters live in a shared CounterTable
 * slot, so every data-path thread's Upstream for the same origin reads the same numbers.
 */
export class Upstream implements Candidate {
  readonly id: string;
  readonly origin: string;
  readonly host: string;
  readonly port: number;
  readonly source: UpstreamSource;
  readonly pool: Pool;
  /** The weight the picker uses: configuredWeight, scaled down while slow start ramps it up. */
  weight: number;
  /** The weight from config, discovery or the admin API. */
  configuredWeight: number;
  /** This upstream's cells in `counters`. */
  readonly slot: number;
  private readonly counters: CounterTable;
  state: UpstreamState;
  /** Consecutive health probe results, for rise/fall. */
  probeSuccesses = 0;
  probeFailures = 0;
  /** Set once the registry has forgotten it: release() then closes the pool when idle. */
  removed = false;
  /** Cap on in-flight requests (0 = none); settable at runtime through the admin API. */
  maxInFlight = 0;
  /** When the upstream last became `up` (ms epoch), for slow start. */
  upSince = 0;
  /** Passive outlier detection: recent failure times, ejections in a row, end of the current one. */
  failureTimes: number[] = [];
  ejections = 0;
  ejectedUntil = 0;
  /** Drain requested by an operator (not by discovery): when it started and its deadline (ms epoch). */
  drainStartedAt = 0;
  drainDeadline = 0;

  constructor(address: UpstreamAddress, source: UpstreamSource, state: UpstreamState, pool: PoolSettings, counters: CounterTable, slot: number) {
    this.counters = counters;
    this.slot = slot;
    this.host = address.host;
    this.port = address.port;
    this.weight = address.weight;
    this.configuredWeight = address.weight;
    this.id = upstreamId(address.host, address.port);
    this.origin = `http://${this.id}`;
    this.source = source;
    this.state = state;
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

  /** Requests in flight on this upstream, over every thread (what least-connections compares). */
  get inFlight(): number {
    return this.counters.inFlight(this.slot);
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
