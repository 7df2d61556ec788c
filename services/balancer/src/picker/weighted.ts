/**
 * Weighted sampling shared by the policies that choose at random (random, P2C, peak-EWMA).
 * Pure: the caller passes the random source.
 */
import type { Candidate } from './types.js';

/**
 * Index of the candidate found at `position` in [0, total weight) when the candidates' weights
 * are laid end to end, skipping `skip` (-1: none). Rounding at the upper edge yields the last one.
 */
export function indexAtWeight(candidates: readonly Candidate[], position: number, skip = -1): number {
  let acc = 0;
  let last = -1;
  for (let i = 0; i < candidates.length; i++) {
    if (i === skip) continue;
    acc += candidates[i]?.weight ?? 0;
    last = i;
    if (position < acc) return i;
  }
  return last;
}

/** Sum of the weights, leaving out index `skip` (-1: none). */
export function totalWeight(candidates: readonly Candidate[], skip = -1): number {
  let sum = 0;
  for (let i = 0; i < candidates.length; i++) if (i !== skip) sum += candidates[i]?.weight ?? 0;
  return sum;
}

/** One candidate index drawn in proportion to weight. */
export function drawWeighted(candidates: readonly Candidate[], random: () => number, skip = -1): number {
  return indexAtWeight(candidates, random() * totalWeight(candidates, skip), skip);
}

/**
 * Two distinct candidates, each drawn in proportion to weight (the second among the rest).
 * Distinct, unlike Envoy's default draw with replacement: with two replicas the busier one must
 * never be compared with itself and win by default. Needs at least two candidates.
 */
export function drawTwo(candidates: readonly Candidate[], random: () => number): [number, number] {
  const first = drawWeighted(candidates, random);
  return [first, drawWeighted(candidates, random, first)];
}
