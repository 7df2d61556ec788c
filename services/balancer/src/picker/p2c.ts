/**
 * Power of two choices (Envoy's LEAST_REQUEST with choice_count 2), as a pure function: draw two
 * distinct candidates in proportion to weight and keep the one with less in-flight ÷ weight
 * (a tie goes to either at random). Close to least-connections at a fraction of the comparisons,
 * and it never herds every balancer thread onto the same "least" upstream.
 */
import { inFlightOf } from './load.js';
import type { Candidate, Pick, PickReason } from './types.js';
import { drawTwo } from './weighted.js';

/**
 * The P2C core shared with peak-EWMA: draw two distinct candidates by weight, keep the one with
 * the lower `cost` (a tie goes to either at random). Undefined when there is no candidate.
 */
export function pickCheaperOfTwo<T extends Candidate>(
  candidates: readonly T[],
  random: () => number,
  cost: (candidate: T) => number,
  reason: PickReason,
): Pick<T> | undefined {
  const first = candidates[0];
  if (first === undefined) return undefined;
  if (candidates.length === 1) return { chosen: first, reason: 'only-candidate' };
  const [i, j] = drawTwo(candidates, random);
  const a = candidates[i] ?? first;
  const b = candidates[j] ?? first;
  const costA = cost(a);
  const costB = cost(b);
  const chosen = costA < costB ? a : costB < costA ? b : random() < 0.5 ? a : b;
  return { chosen, reason };
}

/**
 * Picks the less loaded of two drawn candidates (in-flight ÷ weight: IEEE division rounds equal
 * ratios to the same number, so ties stay ties); undefined when there is none.
 */
export function pickTwoChoices<T extends Candidate>(candidates: readonly T[], random: () => number): Pick<T> | undefined {
  return pickCheaperOfTwo(candidates, random, (c) => inFlightOf(c) / c.weight, 'two-choices');
}
