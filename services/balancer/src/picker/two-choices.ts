/**
 * Power of two choices (Envoy's LEAST_REQUEST with choice_count 2), as a pure function: draw two
 * distinct candidates in proportion to weight and keep the one with less in-flight ÷ weight
 * (a tie goes to either at random). Close to least-connections at a fraction of the comparisons,
 * and it never herds every balancer thread onto the same "least" upstream.
 */
import type { Candidate, Pick } from './least-connections.js';
import { drawTwo } from './weighted.js';

/** Picks the less loaded of two drawn candidates; undefined when there is none. */
export function pickTwoChoices<T extends Candidate>(candidates: readonly T[], random: () => number): Pick<T> | undefined {
  const first = candidates[0];
  if (first === undefined) return undefined;
  if (candidates.length === 1) return { chosen: first, reason: 'only-candidate' };
  const [i, j] = drawTwo(candidates, random);
  const a = candidates[i] ?? first;
  const b = candidates[j] ?? first;
  // in-flight ÷ weight compared by cross-multiplication (exact for integers).
  const cmp = a.inFlight * b.weight - b.inFlight * a.weight;
  const chosen = cmp < 0 ? a : cmp > 0 ? b : random() < 0.5 ? a : b;
  return { chosen, reason: 'two-choices' };
}
