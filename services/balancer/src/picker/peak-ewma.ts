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
 * LatencyTracker (latency-tracker.ts), fed with the duration of every finished attempt on this
 * thread. With `--workers N` each thread keeps its own tracker: every thread sees a random share of the same
 * traffic (the kernel spreads connections), so each estimates the same latencies from its own
 * samples; nothing is shared, nothing is locked, and the in-flight part of the cost is the shared count.
 */
import { inFlightOf } from './load.js';
import { pickCheaperOfTwo } from './p2c.js';
import type { Candidate, Pick } from './types.js';

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
  return pickCheaperOfTwo(candidates, random, (c) => peakEwmaCost(latencyMs(c), inFlightOf(c), c.weight), 'peak-ewma');
}
