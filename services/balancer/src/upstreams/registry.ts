import type { Logger } from 'pino';
import { Upstream, upstreamId } from './upstream.js';
import type { PoolSettings, UpstreamAddress, UpstreamSource, UpstreamState } from './upstream.js';

/** The one owner of upstream state: which upstreams exist, their state and their in-flight counts. */
export interface Registry {
  /** Every upstream still known, draining ones included. */
  list(): readonly Upstream[];
  /** Upstreams that may take a new request now (state `up`); the same array until something changes. */
  available(): readonly Upstream[];
  get(id: string): Upstream | undefined;
  /** Makes the upstreams of `source` exactly `addresses`: adds the new, drains the missing. */
  sync(source: UpstreamSource, addresses: readonly UpstreamAddress[]): void;
  setState(upstream: Upstream, state: UpstreamState, why: string): void;
  /** Counts a request on the upstream. Exactly one release() must follow. */
  acquire(upstream: Upstream): void;
  release(upstream: Upstream): void;
  /** Sum of in-flight over every upstream. */
  inFlight(): number;
  /** Destroys every pool (call once in-flight requests are done or given up on). Idempotent. */
  stop(): Promise<void>;
}

export interface RegistryOptions {
  readonly pool: PoolSettings;
  readonly logger: Logger;
  /** State a newly discovered upstream starts in (`unproven` when health checks will prove it). */
  readonly initialState: (source: UpstreamSource) => UpstreamState;
}

/** Creates an empty registry. */
export function createRegistry(options: RegistryOptions): Registry {
  const { logger } = options;
  const upstreams = new Map<string, Upstream>();
  let availableCache: readonly Upstream[] = [];
  let stopped: Promise<void> | undefined;

  const refresh = (): void => {
    availableCache = [...upstreams.values()].filter((u) => u.state === 'up');
  };

  const forget = (u: Upstream): void => {
    upstreams.delete(u.id);
    refresh();
    logger.info({ upstream: u.id }, 'upstream removed');
    // close() lets an in-flight health probe finish; nothing else can use the pool any more.
    u.pool.close().catch((err: unknown) => {
      logger.warn({ upstream: u.id, err }, 'closing pool failed');
    });
  };

  const setState = (u: Upstream, state: UpstreamState, why: string): void => {
    if (u.state === state) return;
    const from = u.state;
    u.state = state;
    u.probeSuccesses = 0;
    u.probeFailures = 0;
    refresh();
    logger.info({ upstream: u.id, from, to: state, why }, `upstream ${state}`);
  };

  const drainAndForget = (u: Upstream, why: string): void => {
    setState(u, 'draining', why);
    u.removed = true;
    if (u.inFlight === 0) forget(u);
  };

  return {
    list: () => [...upstreams.values()],
    available: () => availableCache,
    get: (id) => upstreams.get(id),
    sync(source, addresses) {
      const wanted = new Map(addresses.map((a) => [upstreamId(a.host, a.port), a]));
      for (const u of upstreams.values()) {
        if (u.source === source && !wanted.has(u.id) && !u.removed) drainAndForget(u, `left ${source} discovery`);
      }
      for (const [id, address] of wanted) {
        const existing = upstreams.get(id);
        if (existing && !existing.removed) {
          existing.weight = address.weight;
          continue;
        }
        if (existing) forget(existing); // came back while draining: start afresh
        const u = new Upstream(address, source, options.initialState(source), options.pool);
        upstreams.set(id, u);
        logger.info({ upstream: id, source, weight: u.weight, state: u.state }, 'upstream added');
      }
      refresh();
    },
    setState,
    acquire(u) {
      u.inFlight++;
    },
    release(u) {
      u.inFlight--;
      u.requests++;
      if (u.inFlight < 0) {
        // A bug, not a race: every release pairs with one acquire. Log it loudly, keep the count honest.
        logger.error({ upstream: u.id, inFlight: u.inFlight }, 'in-flight count went below zero');
      }
      if (u.removed && u.inFlight === 0 && upstreams.get(u.id) === u) forget(u);
    },
    inFlight() {
      let n = 0;
      for (const u of upstreams.values()) n += u.inFlight;
      return n;
    },
    stop() {
      stopped ??= Promise.all([...upstreams.values()].map((u) => u.pool.destroy().catch(() => undefined))).then(() => {
        upstreams.clear();
        refresh();
      });
      return stopped;
    },
  };
}
