/**
 * Least-connections selection, as a pure function.
 *
 * "Connections" here means in-flight *requests* (accepted by the balancer and not yet finished),
 * not TCP sockets: keep-alive pools hold idle sockets that carry no load, so counting sockets
 * would mislead the choice. The load of a candidate is inFlight / weight. Among the least-loaded,
 * ties are broken in proportion to weight, by rotation (`turn`) or at random: never "first wins",
 * which would send all sequential traffic to one upstream.
 *
 * The 'latency' tie-break (the default) first leaves out of the tie every candidate answering much
 * slower lately than the fastest tied one, then rotates among the rest. Why: counting in-flight
 * requests cannot see a replica that stalls again and again (a GC pause, a starved CPU) while it
 * happens to be idle between stalls; it is tied with the healthy ones at 0 and keeps getting its
 * share, each of which may wait out the next stall. Load still decides first, so a slow replica
 * takes traffic as soon as the others are busier, and a never-measured one (a newcomer) is fast.
 */

/** What the picker needs to know about an upstream. */
export interface Candidate {
  readonly id: string;
  readonly inFlight: number;
  /** Effective weight, > 0. */
  readonly weight: number;
}

export type TieBreak = 'rotation' | 'random' | 'latency';

/**
 * 'latency' tie-break: a tied candidate stays in the tie while its recent latency is at most
 * twice the fastest tied one's plus this slack. The slack keeps replicas a few milliseconds apart
 * (noise, a slightly slower image) rotating evenly; the factor scales it to slow paths.
 */
export const LATENCY_TIE_SLACK_MS = 20;
export const LATENCY_TIE_FACTOR = 2;

/**
 * Why the chosen candidate won; shown in `X-Lb-Decision`. The last four are the other policies'
 * (picker/policy.ts): least-connections gives only the first four.
 */
export type PickReason =
  | 'only-candidate'
  | 'least-loaded'
  | 'tie-rotation'
  | 'tie-random'
  | 'tie-latency'
  | 'round-robin'
  | 'random'
  | 'two-choices'
  | 'peak-ewma';

export interface PickOptions {
  /** 'latency' without a `latencyMs` source behaves as 'rotation'. */
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
  options: PickOptions & { readonly latencyMs?: (candidate: T) => number },
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

  let reason: PickReason = options.tieBreak === 'random' ? 'tie-random' : 'tie-rotation';
  if (options.tieBreak === 'latency' && options.latencyMs !== undefined) {
    const fast = fastestOf(tied, options.latencyMs);
    if (fast.length < tied.length) {
      tied = fast;
      tiedWeight = fast.reduce((sum, c) => sum + c.weight, 0);
      reason = 'tie-latency';
    }
    if (fast.length === 1) return { chosen: fast[0] ?? best, reason };
  }

  // Weighted position among the tied: rotation walks it, random samples it.
  const position =
    options.tieBreak === 'random'
      ? options.random() * tiedWeight
      : (Math.abs(Math.trunc(options.turn)) % tiedWeight);
  let acc = 0;
  for (const c of tied) {
    acc += c.weight;
    if (position < acc) return { chosen: c, reason };
  }
  // Only reachable through floating-point rounding at the upper edge.
  return { chosen: tied.at(-1) ?? best, reason };
}

/** The tied candidates not much slower lately than the fastest of them (never empty). */
function fastestOf<T extends Candidate>(tied: readonly T[], latencyMs: (candidate: T) => number): T[] {
  const latencies = tied.map(latencyMs);
  const limit = Math.min(...latencies) * LATENCY_TIE_FACTOR + LATENCY_TIE_SLACK_MS;
  return tied.filter((_, i) => (latencies[i] ?? 0) <= limit);
}
