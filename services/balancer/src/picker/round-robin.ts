/**
 * Weighted round robin, as a pure function: the caller's shared turn counter walks the
 * candidates' weights laid end to end, so weight 3 gets three turns in a row for every one of
 * weight 1. It ignores load entirely: the baseline the lab compares least-connections with.
 */
import type { Candidate, Pick } from './types.js';
import { indexAtWeight, totalWeight } from './weighted.js';

/** Picks by turn; undefined when there is no candidate. */
export function pickRoundRobin<T extends Candidate>(candidates: readonly T[], turn: number): Pick<T> | undefined {
  const first = candidates[0];
  if (first === undefined) return undefined;
  if (candidates.length === 1) return { chosen: first, reason: 'only-candidate' };
  const total = totalWeight(candidates);
  const position = Math.abs(Math.trunc(turn)) % total;
  return { chosen: candidates[indexAtWeight(candidates, position)] ?? first, reason: 'round-robin' };
}
