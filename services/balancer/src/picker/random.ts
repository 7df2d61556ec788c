/**
 * Weighted random choice, as a pure function. Load-blind like round robin, but without the
 * shared counter: what a stateless client-side balancer does.
 */
import type { Candidate, Pick } from './types.js';
import { drawWeighted } from './weighted.js';

/** Picks in proportion to weight; undefined when there is no candidate. */
export function pickRandom<T extends Candidate>(candidates: readonly T[], random: () => number): Pick<T> | undefined {
  const first = candidates[0];
  if (first === undefined) return undefined;
  if (candidates.length === 1) return { chosen: first, reason: 'only-candidate' };
  return { chosen: candidates[drawWeighted(candidates, random)] ?? first, reason: 'random' };
}
