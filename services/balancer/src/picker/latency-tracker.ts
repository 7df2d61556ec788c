/**
 * Per-thread latency estimates, a peak-sensitive moving average per upstream: what peak-EWMA
 * compares and what least-connections' 'latency' tie-break reads (with a shorter memory). Not a
 * policy, so in its own module: both policies and the data path use it.
 *
 * "Peak-sensitive": a response slower than the average replaces it at once, a faster one only
 * pulls it down with a weight that grows with the time since the last sample. Without samples the
 * estimate decays toward 0, so an upstream that was avoided is tried again.
 */

/** Per-thread latency estimates, keyed by upstream object. Time is passed in (ms), never read here. */
export interface LatencyTracker {
  /** A finished attempt took `ms`; `now` is when it finished. */
  observe(upstream: object, ms: number, now: number): void;
  /** The estimate at `now`: 0 for an upstream never measured. */
  estimate(upstream: object, now: number): number;
}

interface Ewma {
  cost: number;
  stamp: number;
}

/** Finagle's and Linkerd's default decay time. */
export const DEFAULT_DECAY_MS = 10_000;

/**
 * Decay of least-connections' latency tie-break. Short: a replica stalling every 100 ms renews its
 * peak far faster than this forgets it, while a healthy one that answered one slow request (a
 * 300 ms image, a CPU hiccup) is back in the ties within about two seconds.
 */
export const RECENT_DECAY_MS = 1_000;

/** Creates an empty tracker; `decayMs` is the EWMA's time constant. */
export function createLatencyTracker(decayMs = DEFAULT_DECAY_MS): LatencyTracker {
  // Weak: an upstream that leaves takes its estimate with it.
  const state = new WeakMap<object, Ewma>();
  return {
    observe(upstream, ms, now) {
      const s = state.get(upstream);
      if (s === undefined) {
        state.set(upstream, { cost: ms, stamp: now });
        return;
      }
      const w = Math.exp(-Math.max(0, now - s.stamp) / decayMs);
      s.cost = ms > s.cost ? ms : s.cost * w + ms * (1 - w);
      s.stamp = now;
    },
    estimate(upstream, now) {
      const s = state.get(upstream);
      if (s === undefined) return 0;
      return s.cost * Math.exp(-Math.max(0, now - s.stamp) / decayMs);
    },
  };
}
