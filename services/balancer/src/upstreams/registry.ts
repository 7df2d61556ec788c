import type { Logger } from 'pino';
import type { FailureReason } from '../errors.js';
import type { UpstreamAddress } from './address.js';
import type { CounterTable } from './counters.js';
import { Upstream, initialFields, upstreamId } from './upstream.js';
import type { PoolSettings, UpstreamFields, UpstreamSource, UpstreamState } from './upstream.js';
import { afterPassiveFailure, afterPassiveSuccess, afterProbe } from './verdicts.js';
import type { HealthRules, ProbeResult, Verdict } from './verdicts.js';

/** What the data path needs of the upstreams: which to pick from, and one acquire/release pair per attempt. */
export interface UpstreamTable {
  /** Every upstream still known, draining ones included. */
  list(): readonly Upstream[];
  /**
   * Upstreams that may be picked (healthy: state `up`), whether or not they have room under
   * their cap; the same array until something changes. In panic mode (no upstream up, panic on)
   * every down or unproven one instead.
   */
  available(): readonly Upstream[];
  /**
   * Whether available() is the panic set: no upstream passes its checks and panic mode is on (on
   * the registry, never before health checking's first round has ended: see firstProbeRoundOver).
   */
  panicking(): boolean;
  /**
   * Counts a request on the upstream, unless it is at its max in-flight (another thread may have
   * taken the last place since the pick). Exactly one release() must follow a true.
   */
  acquire(upstream: Upstream): boolean;
  release(upstream: Upstream): void;
  /** Sum of in-flight over every upstream. */
  inFlight(): number;
  /** The shared counters behind every upstream's numbers. */
  readonly counters: CounterTable;
}

/** The one owner of upstream state: which upstreams exist, their state, weights and caps. */
export interface Registry extends UpstreamTable {
  get(id: string): Upstream | undefined;
  /** Makes the upstreams of `source` exactly `addresses`: adds the new, drains the missing. */
  sync(source: UpstreamSource, addresses: readonly UpstreamAddress[]): void;
  setState(upstream: Upstream, state: UpstreamState, why: string): void;
  /** Operator drain: no new requests; in-flight ones finish; `deadlineMs` is shown as a countdown. */
  drain(upstream: Upstream, deadlineMs: number): void;
  /** Ends an operator drain: the upstream must pass a probe again when health checks are on. */
  undrain(upstream: Upstream): void;
  setWeight(upstream: Upstream, weight: number): void;
  setMaxInFlight(upstream: Upstream, maxInFlight: number): void;
  /** Health checking reports a probe; the registry applies rise/fall. */
  reportProbe(upstream: Upstream, result: ProbeResult): void;
  /**
   * Health checking's first round has ended: every upstream known at start has been probed once.
   * With active checks on, panic mode is neither flagged nor warned about before this: no upstream
   * up then means none has been probed yet, not that they all fail their checks.
   */
  firstProbeRoundOver(): void;
  /**
   * The data path reports a failed attempt (passive health); the registry counts it and may eject
   * the upstream. Returns the ejection's length when it ends on a timer (no active checks), for
   * the outlier detector to call ejectionOver() then.
   */
  reportFailure(upstream: Upstream, reason: FailureReason | 'status'): number | undefined;
  /** The data path reports a good answer: enough of them forgive earlier ejections. */
  reportSuccess(upstream: Upstream): void;
  /** A timed ejection ended (no active checks): an upstream still down is up again. */
  ejectionOver(upstream: Upstream): void;
  /**
   * Forgets removed upstreams whose last request has ended. release() does it on this thread;
   * when other threads proxy, their owner calls this after they report releases.
   */
  sweep(): void;
  /**
   * Calls `listener` after anything the data path sees has changed: upstreams, states, weights,
   * caps. Wired once the data path exists (the registry is built first: it depends on nothing).
   */
  onChange(listener: () => void): void;
  /** Destroys every pool (call once in-flight requests are done or given up on). Idempotent. */
  stop(): Promise<void>;
}

export interface RegistryOptions {
  readonly pool: PoolSettings;
  /** Cap on in-flight requests given to every new upstream (0 = none). */
  readonly maxInFlight: number;
  /** Weight ramp after an upstream becomes up; 0 = off. */
  readonly slowStartMs: number;
  /** State an upstream returns to when an operator drain ends. */
  readonly undrainedState: UpstreamState;
  readonly logger: Logger;
  /** State a newly discovered upstream starts in (`unproven` when health checks will prove it). */
  readonly initialState: (source: UpstreamSource) => UpstreamState;
  readonly counters: CounterTable;
  /** Frees a forgotten upstream's slot; other threads may have to let go of it first (default: at once). */
  readonly releaseSlot?: (slot: number) => void;
  /** Panic mode: with no upstream up, pick among all of them (see availableOf). */
  readonly panic?: boolean;
  /** How probe and passive reports change state (default: the config's defaults). */
  readonly rules?: HealthRules;
}

/** The config's defaults: rise 2, fall 2, 5 failures in 10 s eject for 10 s. */
const DEFAULT_RULES: HealthRules = { rise: 2, fall: 2, activeChecks: true, passiveFailures: 5, passiveWindowMs: 10_000, passiveDownMs: 10_000 };

/**
 * What the data path may pick from: the upstreams that are up; when none is and `panic` is on,
 * every upstream that is down or unproven (not draining: those are leaving on purpose), as
 * Envoy's healthy-panic threshold and nginx do. Checks that fail everywhere at once are more
 * often wrong (a bad --health-path, a broken dependency of /healthz) than every upstream is,
 * and a refused connection still fails over at once.
 */
export function availableOf(upstreams: Iterable<Upstream>, panic: boolean): { readonly available: readonly Upstream[]; readonly panic: boolean } {
  const up: Upstream[] = [];
  const rest: Upstream[] = [];
  for (const u of upstreams) {
    if (u.removed) continue;
    if (u.healthy) up.push(u);
    else if (u.state === 'down' || u.state === 'unproven') rest.push(u);
  }
  if (up.length > 0 || !panic || rest.length === 0) return { available: up, panic: false };
  return { available: rest, panic: true };
}

/** Creates an empty registry. */
export function createRegistry(options: RegistryOptions): Registry {
  const { logger, counters } = options;
  const releaseSlot = options.releaseSlot ?? ((slot: number) => {
    counters.release(slot);
  });
  const listeners: (() => void)[] = [];
  const changed = (): void => {
    for (const listener of listeners) listener();
  };
  const rules = options.rules ?? DEFAULT_RULES;
  const upstreams = new Map<string, Upstream>();
  // The only writable handle on each upstream's state (Upstream itself is read-only).
  const fieldsOf = new Map<Upstream, UpstreamFields>();
  const fields = (u: Upstream): UpstreamFields => {
    const f = fieldsOf.get(u);
    if (f === undefined) throw new Error(`upstream ${u.id} is not one of this registry's`);
    return f;
  };
  let nextKey = 1;
  let availableCache: readonly Upstream[] = [];
  let panicking = false;
  // Every start has upstreams that nothing has probed yet (DNS-discovered ones begin unproven):
  // calling that panic would raise the alarm on every start, before a single check has failed.
  let probedOnce = !rules.activeChecks;
  let stopped: Promise<void> | undefined;

  const refresh = (): void => {
    const wasPanicking = panicking;
    const next = availableOf(upstreams.values(), options.panic ?? false);
    availableCache = next.available;
    panicking = next.panic && probedOnce;
    if (panicking !== wasPanicking) {
      if (panicking) logger.warn({ upstreams: availableCache.map((u) => u.id) }, 'panic mode: no upstream passes its checks; spreading requests over all of them');
      else logger.info('panic mode over');
    }
    changed();
  };

  // Slow start: while any upstream ramps, its effective weight is recomputed on a short timer
  // (not per request), from 10% of its configured weight up to all of it.
  const { slowStartMs } = options;
  let rampTimer: NodeJS.Timeout | undefined;
  const ramp = (): void => {
    const now = Date.now();
    let ramping = false;
    for (const f of fieldsOf.values()) {
      const progress = slowStartMs > 0 && f.state === 'up' ? (now - f.upSince) / slowStartMs : 1;
      if (progress < 1) ramping = true;
      f.weight = f.configuredWeight * Math.min(1, Math.max(0.1, progress));
    }
    changed();
    if (!ramping && rampTimer !== undefined) {
      clearInterval(rampTimer);
      rampTimer = undefined;
    } else if (ramping && rampTimer === undefined && stopped === undefined) {
      rampTimer = setInterval(ramp, Math.max(10, Math.min(100, slowStartMs / 20)));
    }
  };

  const forget = (u: Upstream): void => {
    upstreams.delete(u.id);
    fieldsOf.delete(u);
    refresh();
    releaseSlot(u.slot);
    logger.info({ upstream: u.id }, 'upstream removed');
    // close() lets an in-flight health probe finish; nothing else can use the pool any more.
    u.pool.close().catch((err: unknown) => {
      logger.warn({ upstream: u.id, err }, 'closing pool failed');
    });
  };

  const setState = (u: Upstream, state: UpstreamState, why: string): void => {
    const f = fields(u);
    if (f.state === state) return;
    const from = f.state;
    f.state = state;
    f.probeSuccesses = 0;
    f.probeFailures = 0;
    if (state === 'up') f.upSince = Date.now();
    if (state !== 'draining') {
      f.drainStartedAt = 0;
      f.drainDeadline = 0;
    }
    refresh();
    // Joining after the start (not the first set of static upstreams) ramps up.
    if (state === 'up' && slowStartMs > 0) ramp();
    logger.info({ upstream: u.id, from, to: state, why }, `upstream ${state}`);
  };

  /** Makes a verdict's state change; returns the length of a timed ejection. */
  const apply = (u: Upstream, verdict: Verdict | undefined): number | undefined => {
    if (verdict === undefined) return undefined;
    setState(u, verdict.state, verdict.why);
    return verdict.ejectedForMs;
  };

  const drainAndForget = (u: Upstream, why: string): void => {
    setState(u, 'draining', why);
    fields(u).removed = true;
    if (u.inFlight === 0) forget(u);
  };

  return {
    list: () => [...upstreams.values()],
    available: () => availableCache,
    panicking: () => panicking,
    get: (id) => upstreams.get(id),
    sync(source, addresses) {
      const wanted = new Map(addresses.map((a) => [upstreamId(a.host, a.port), a]));
      for (const u of upstreams.values()) {
        if (u.source === source && !wanted.has(u.id) && !u.removed) drainAndForget(u, `left ${source} discovery`);
      }
      for (const [id, address] of wanted) {
        const existing = upstreams.get(id);
        if (existing && !existing.removed) {
          const f = fields(existing);
          if (f.configuredWeight !== address.weight) {
            f.configuredWeight = address.weight;
            f.weight = address.weight;
          }
          continue;
        }
        if (existing) forget(existing); // came back while draining: start afresh
        let slot: number;
        try {
          slot = counters.allocate();
        } catch (err) {
          // More upstreams than counter slots (1024): the rest are left out, loudly, not crashed on.
          logger.error({ upstream: id, err }, 'upstream not added: no free counter slot');
          continue;
        }
        const f = { ...initialFields(options.initialState(source), address.weight), maxInFlight: options.maxInFlight };
        const u = new Upstream(address, source, nextKey++, f, options.pool, counters, slot);
        fieldsOf.set(u, f);
        upstreams.set(id, u);
        logger.info({ upstream: id, source, weight: u.weight, state: u.state }, 'upstream added');
      }
      refresh();
    },
    setState,
    drain(u, deadlineMs) {
      if (u.removed) return;
      setState(u, 'draining', 'operator drain');
      const f = fields(u);
      f.drainStartedAt = Date.now();
      f.drainDeadline = f.drainStartedAt + deadlineMs;
    },
    undrain(u) {
      if (u.removed || u.state !== 'draining') return;
      setState(u, options.undrainedState, 'operator undrain');
    },
    setWeight(u, weight) {
      const f = fields(u);
      f.configuredWeight = weight;
      f.weight = weight;
      logger.info({ upstream: u.id, weight }, 'upstream weight changed');
      if (slowStartMs > 0) ramp();
      changed();
    },
    setMaxInFlight(u, maxInFlight) {
      fields(u).maxInFlight = maxInFlight;
      logger.info({ upstream: u.id, maxInFlight }, 'upstream max in-flight changed');
      changed();
    },
    reportProbe(u, result) {
      if (u.removed) return;
      const f = fields(u);
      const wasUnresponsive = f.unresponsive;
      const verdict = afterProbe(f, result, rules, Date.now());
      if (verdict !== undefined) apply(u, verdict);
      // Down already (ejected on a refused connect, or draining with /healthz failing) and now
      // silent, or answering again: the data path moves requests off unresponsive upstreams only.
      else if (u.state === 'down' && f.unresponsive !== wasUnresponsive) changed();
    },
    firstProbeRoundOver() {
      if (probedOnce) return;
      probedOnce = true;
      refresh();
    },
    reportFailure(u, reason) {
      if (u.removed) return undefined;
      return apply(u, afterPassiveFailure(fields(u), reason, rules, Date.now()));
    },
    reportSuccess(u) {
      if (u.removed) return;
      if (afterPassiveSuccess(fields(u), rules, Date.now())) logger.debug({ upstream: u.id }, 'ejection count reset');
    },
    ejectionOver(u) {
      if (u.state === 'down' && !u.removed) setState(u, 'up', 'passive ejection over');
    },
    acquire(u) {
      return counters.tryAcquire(u.slot, u.maxInFlight);
    },
    release(u) {
      const left = counters.releaseOne(u.slot);
      counters.countUpstreamRequest(u.slot);
      if (left < 0) {
        // A bug, not a race: every release pairs with one acquire. Log it loudly.
        logger.error({ upstream: u.id, inFlight: left }, 'in-flight count went below zero');
      }
      if (u.removed && left === 0 && upstreams.get(u.id) === u) forget(u);
    },
    sweep() {
      for (const u of [...upstreams.values()]) if (u.removed && u.inFlight === 0) forget(u);
    },
    counters,
    onChange(listener) {
      listeners.push(listener);
    },
    inFlight() {
      let n = 0;
      for (const u of upstreams.values()) n += u.inFlight;
      return n;
    },
    stop() {
      if (rampTimer !== undefined) clearInterval(rampTimer);
      rampTimer = undefined;
      stopped ??= Promise.all([...upstreams.values()].map((u) => u.pool.destroy().catch(() => undefined))).then(() => {
        upstreams.clear();
        fieldsOf.clear();
        refresh();
      });
      return stopped;
    },
  };
}
