/**
 * Peak-EWMA (Finagle's PeakEwma, Linkerd's default balancer): each upstream's cost is a
 * peak-sensitive moving average of its response times × (in-flight + 1) ÷ weight, compared over
 * two distinct candidates drawn at random (P2C), as Linkerd does.
 *
 * "Peak-sensitive": a response slower than the average replaces it at once, a faster one only
 * pulls it down with a weight that grows with the time since the last sample, so one slow answer
 * moves traffic away immediately and good answers win it back over about `decayMs`. Without
 * samples the estimate decays toward 0, so an upstream that was avoided is tried again.
 *
 * The picker is pure: the caller passes each candidate's current estimate. The estimates live in a
 * LatencyTracker, fed with the duration of every finished attempt on this thread. With
 * `--workers N` each thread keeps its own tracker: every thread sees a random share of the same
 * traffic (the kernel spreads connections), so each estimates the same latencies from its own
 * samples; nothing is shared, nothing is locked, and the in-flight part of the cost is the shared count.
 */
import type { Candidate, Pick } from './least-connections.js';
import { pickCheaperOfTwo } from './two-choices.js';

/** Cost of an upstream with requests in flight and no latency sample yet (Finagle's Penalty, in ms). */
export const UNSEEN_PENALTY_MS = 1e6;

/** The cost peak-EWMA compares: estimated latency × (in-flight + 1) ÷ weight. */
export function peakEwmaCost(latencyMs: number, inFlight: number, weight: number): number {
  // A never-measured upstream with work on it: expensive, but cheaper the less it has (Finagle).
  if (latencyMs === 0 && inFlight > 0) return (UNSEEN_PENALTY_MS + inFlight) / weight;
  return (latencyMs * (inFlight + 1)) / weight;
}

/** Picks the cheaper of two drawn candidates; `latencyMs` gives each one's current estimate. */
export function pickPeakEwma<T extends Candidate>(
  candidates: readonly T[],
  random: () => number,
  latencyMs: (candidate: T) => number,
): Pick<T> | undefined {
  return pickCheaperOfTwo(candidates, random, (c) => peakEwmaCost(latencyMs(c), c.inFlight, c.weight), 'peak-ewma');
}

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
