/**
 * Least-connections selection, as a pure function.
 *
 * "Connections" here means in-flight *requests* (accepted by the balancer and not yet finished),
 * not TCP sockets: keep-alive pools hold idle sockets that carry no load, so counting sockets
 * would mislead the choice. The load of a candidate is inFlight / weight. Among the least-loaded,
 * ties are broken in proportion to weight, by rotation (`turn`) or at random: never "first wins",
 * which would send all sequential traffic to one upstream.
 */

/** What the picker needs to know about an upstream. */
export interface Candidate {
  readonly id: string;
  readonly inFlight: number;
  /** Effective weight, > 0. */
  readonly weight: number;
}

export type TieBreak = 'rotation' | 'random';

/**
 * Why the chosen candidate won; shown in `X-Lb-Decision`. The last four are the other policies'
 * (picker/policy.ts): least-connections gives only the first four.
 */
export type PickReason =
  | 'only-candidate'
  | 'least-loaded'
  | 'tie-rotation'
  | 'tie-random'
  | 'round-robin'
  | 'random'
  | 'two-choices'
  | 'peak-ewma';

export interface PickOptions {
  readonly tieBreak: TieBreak;
  /** A uniform random number in [0, 1); used when tieBreak is 'random'. */
  readonly random: () => number;
  /** A counter the caller increments on every pick; used when tieBreak is 'rotation'. */
  readonly turn: number;
}

export interface Pick<T extends Candidate> {
  readonly chosen: T;
  readonly reason: PickReason;
}

/** Compares a.inFlight/a.weight with b.inFlight/b.weight without division (exact for integers). */
function compareLoad(a: Candidate, b: Candidate): number {
  return a.inFlight * b.weight - b.inFlight * a.weight;
}

/** Picks the least-loaded candidate, or undefined when there is none. */
export function pickLeastConnections<T extends Candidate>(
  candidates: readonly T[],
  options: PickOptions,
): Pick<T> | undefined {
  const first = candidates[0];
  if (first === undefined) return undefined;
  if (candidates.length === 1) return { chosen: first, reason: 'only-candidate' };

  // One pass: the least-loaded candidates and the sum of their weights.
  let tied: T[] = [];
  let tiedWeight = 0;
  let best: T = first;
  for (const c of candidates) {
    const cmp = tied.length === 0 ? -1 : compareLoad(c, best);
    if (cmp < 0) {
      best = c;
      tied = [c];
      tiedWeight = c.weight;
    } else if (cmp === 0) {
      tied.push(c);
      tiedWeight += c.weight;
    }
  }
  if (tied.length === 1) return { chosen: best, reason: 'least-loaded' };

  // Weighted position among the tied: rotation walks it, random samples it.
  const position =
    options.tieBreak === 'rotation'
      ? (Math.abs(Math.trunc(options.turn)) % tiedWeight)
      : options.random() * tiedWeight;
  let acc = 0;
  for (const c of tied) {
    acc += c.weight;
    if (position < acc) {
      return { chosen: c, reason: options.tieBreak === 'rotation' ? 'tie-rotation' : 'tie-random' };
    }
  }
  // Only reachable through floating-point rounding at the upper edge.
  return { chosen: tied.at(-1) ?? best, reason: options.tieBreak === 'rotation' ? 'tie-rotation' : 'tie-random' };
}
