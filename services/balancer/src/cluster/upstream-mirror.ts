import type { Logger } from 'pino';
import type { CounterTable } from '../upstreams/counters.js';
import { availableOf } from '../upstreams/registry.js';
import type { UpstreamTable } from '../upstreams/registry.js';
import { Upstream, initialFields } from '../upstreams/upstream.js';
import type { PoolSettings, UpstreamFields } from '../upstreams/upstream.js';
import type { UpstreamView } from './messages.js';

/** A data-path thread's copy of the registry: what it may pick, with its own connection pools. */
export interface UpstreamMirror extends UpstreamTable {
  /** Makes the mirror match the registry's list. */
  apply(views: readonly UpstreamView[]): void;
  /** Destroys every pool. Idempotent. */
  stop(): Promise<void>;
}

export interface MirrorOptions {
  readonly counters: CounterTable;
  readonly pool: PoolSettings;
  readonly logger: Logger;
  /** Called once per slot that left the list, when this thread no longer has a request on it. */
  readonly onDropped: (slot: number) => void;
  /** Panic mode, decided the same way as the registry's (see availableOf). */
  readonly panic: boolean;
}

interface Entry {
  readonly upstream: Upstream;
  /** The mirror's writable handle on the upstream's state, copied from the registry's views. */
  readonly fields: UpstreamFields;
  /** Requests of this thread on the upstream (the shared count has every thread's). */
  local: number;
  gone: boolean;
  /** A negative count was logged for it: the bug is said once, not on every release after it. */
  negativeLogged: boolean;
}

/**
 * State, weights and caps come from the registry thread; in-flight counts are the shared ones,
 * so the picker here compares the same numbers as every other thread's.
 */
export function createUpstreamMirror(options: MirrorOptions): UpstreamMirror {
  const { counters, logger } = options;
  // Keyed by the upstream's key, not its slot: a slot is reused by a newcomer once every thread let go of it.
  const byKey = new Map<number, Entry>();
  const byUpstream = new Map<Upstream, Entry>();
  let list: readonly Upstream[] = [];
  let available: readonly Upstream[] = [];
  let panicking = false;
  let stopped: Promise<void> | undefined;

  const drop = (entry: Entry): void => {
    byKey.delete(entry.upstream.key);
    byUpstream.delete(entry.upstream);
    entry.upstream.pool.close().catch((err: unknown) => {
      logger.warn({ upstream: entry.upstream.id, err }, 'closing pool failed');
    });
    options.onDropped(entry.upstream.slot);
  };

  const refresh = (): void => {
    list = [...byKey.values()].filter((e) => !e.gone).map((e) => e.upstream);
    ({ available, panic: panicking } = availableOf(list, options.panic));
  };

  return {
    counters,
    list: () => list,
    available: () => available,
    panicking: () => panicking,
    acquire(u) {
      const entry = byUpstream.get(u);
      if (entry === undefined || entry.gone || !counters.tryAcquire(u.slot, u.maxInFlight)) return false;
      entry.local++;
      return true;
    },
    release(u) {
      const entry = byUpstream.get(u);
      const left = counters.releaseOne(u.slot);
      counters.countUpstreamRequest(u.slot);
      if (left < 0 && entry?.negativeLogged !== true) {
        // A bug, not a race: every release pairs with one acquire (as on the registry's thread).
        if (entry !== undefined) entry.negativeLogged = true;
        logger.error({ upstream: u.id, slot: u.slot, inFlight: left, thisThread: entry?.local ?? 0, known: entry !== undefined }, 'in-flight count went below zero');
      }
      if (entry === undefined) return;
      entry.local--;
      if (entry.gone && entry.local === 0) drop(entry);
    },
    inFlight() {
      let n = 0;
      for (const u of list) n += u.inFlight;
      return n;
    },
    apply(views) {
      const wanted = new Set<number>();
      for (const view of views) {
        wanted.add(view.key);
        let entry = byKey.get(view.key);
        if (entry === undefined) {
          const fields = initialFields(view.state, view.weight);
          const upstream = new Upstream(view, view.source, view.key, fields, options.pool, counters, view.slot);
          entry = { upstream, fields, local: 0, gone: false, negativeLogged: false };
          byKey.set(view.key, entry);
          byUpstream.set(upstream, entry);
        }
        const f = entry.fields;
        f.state = view.state;
        f.unresponsive = view.unresponsive;
        f.weight = view.weight;
        f.configuredWeight = view.configuredWeight;
        f.maxInFlight = view.maxInFlight;
      }
      for (const entry of [...byKey.values()]) {
        if (wanted.has(entry.upstream.key) || entry.gone) continue;
        entry.gone = true;
        if (entry.local === 0) drop(entry);
      }
      refresh();
    },
    stop() {
      stopped ??= Promise.all([...byKey.values()].map((e) => e.upstream.pool.destroy().catch(() => undefined))).then(() => {
        byKey.clear();
        byUpstream.clear();
        refresh();
      });
      return stopped;
    },
  };
}
