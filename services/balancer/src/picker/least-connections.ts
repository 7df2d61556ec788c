/**
 * Least-connections selection, as a pure function.
 *
 * "Connections" here means in-flight *requests* (accepted by the balancer and not yet finished),
 * not TCP sockets: keep-alive pools hold idle sockets that carry no load, so counting sockets
 * would mislead the choice. The load of a candidate is its in-flight (across the balancers that
 * share counts: see load.ts) / weight. Among the least-loaded,
 * ties are broken in proportion to weight, by rotation (`turn`) or at random: never "first wins",
 * which would send all sequential traffic to one upstream.
 *
 * The 'latency' tie-break (the default) first leaves out of the tie every candidate answering much
 * slower lately than the typical tied one, then rotates among the rest. Why: counting in-flight
 * requests cannot see a replica that stalls again and again (a GC pause, a starved CPU) while it
 * happens to be idle between stalls; it is tied with the healthy ones at 0 and keeps getting its
 * share, each of which may wait out the next stall. Load still decides first, so a slow replica
 * takes traffic as soon as the others are busier, and a never-measured one (a newcomer) is fast.
 */

import { inFlightOf } from './load.js';
import type { Candidate, Pick, PickOptions, PickReason } from './types.js';
import { indexAtWeight, totalWeight } from './weighted.js';

/**
 * 'latency' tie-break: a tied candidate stays in the tie while its recent latency is at most
 * twice the typical tied one's (the lower median) plus this slack. The median, not the fastest:
 * the lowest of six noisy estimates is a lucky one, and measured against it healthy replicas with
 * an ordinary hiccup were left out of a third of their ties (in Compose, where CPU quotas make
 * such hiccups common). The slack keeps replicas a few milliseconds apart rotating evenly; the
 * factor scales it to slow paths.
 */
export const LATENCY_TIE_SLACK_MS = 20;
export const LATENCY_TIE_FACTOR = 2;

/**
 * Each candidate's load (see load.ts) as read once by the current pick: reading it twice could see
 * another thread's change in between. Reused by every pick (picks are synchronous, one at a time).
 */
let loads = new Float64Array(16);

/** Picks the least-loaded candidate, or undefined when there is none. */
export function pickLeastConnections<T extends Candidate>(
  candidates: readonly T[],
  options: PickOptions & { readonly latencyMs?: (candidate: T) => number },
): Pick<T> | undefined {
  const first = candidates[0];
  if (first === undefined) return undefined;
  const n = candidates.length;
  if (n === 1) return { chosen: first, reason: 'only-candidate' };

  // One pass: the least loaded (load/weight compared without division: exact for integers), how
  // many are tied with it and their weight. The tied list itself is built only when there is a tie.
  if (loads.length < n) loads = new Float64Array(n * 2);
  let best: T = first;
  let bestLoad = inFlightOf(first);
  loads[0] = bestLoad;
  let ties = 1;
  let tiedWeight = first.weight;
  for (let i = 1; i < n; i++) {
    const c = candidates[i];
    if (c === undefined) continue;
    const load = inFlightOf(c);
    loads[i] = load;
    const cmp = load * best.weight - bestLoad * c.weight;
    if (cmp < 0) {
      best = c;
      bestLoad = load;
      ties = 1;
      tiedWeight = c.weight;
    } else if (cmp === 0) {
      ties++;
      tiedWeight += c.weight;
    }
  }
  if (ties === 1) return { chosen: best, reason: 'least-loaded' };
  let tied: T[] = [];
  for (let i = 0; i < n; i++) {
    const c = candidates[i];
    if (c !== undefined && (loads[i] ?? 0) * best.weight === bestLoad * c.weight) tied.push(c);
  }

  let reason: PickReason = options.tieBreak === 'random' ? 'tie-random' : 'tie-rotation';
  if (options.tieBreak === 'latency' && options.latencyMs !== undefined) {
    const fast = notMuchSlower(tied, options.latencyMs);
    if (fast.length < tied.length) {
      tied = fast;
      tiedWeight = fast.reduce((sum, c) => sum + c.weight, 0);
      reason = 'tie-latency';
    }
    if (fast.length === 1) return { chosen: fast[0] ?? best, reason };
  }

  if (options.tieBreak === 'random') {
    // Rounding at the upper edge yields the last one.
    return { chosen: tied[indexAtWeight(tied, options.random() * tiedWeight)] ?? best, reason };
  }
  return { chosen: rotate(candidates, tied, tiedWeight, options.turn, best), reason };
}

/**
 * Rotation: the turn walks the weighted positions of every candidate, tied or not. A tied one at
 * the turn's position wins it; the position of one left out of the tie (busy, or slower lately)
 * goes to the tied ones in turn, one per lap of the walk.
 *
 * Why not simply `turn mod (weight of the tied ones)`: under load the tied set changes with every
 * pick, and which ones are busy depends on the turns that just passed, so that modulus keeps
 * landing on some of them more than others (simulated, 6 replicas at 200 req/s: one got 60 % of
 * the others' share; measured in Compose: two of six got 20-35 %).
 */
function rotate<T extends Candidate>(candidates: readonly T[], tied: readonly T[], tiedWeight: number, turn: number, fallback: T): T {
  const total = totalWeight(candidates);
  const t = Math.abs(Math.trunc(turn));
  const atTurn = candidates[indexAtWeight(candidates, t % total)];
  if (atTurn !== undefined && tied.includes(atTurn)) return atTurn;
  // indexAtWeight yields the last one past the end: only through a weight sum that does not match
  // the tied list (never, with integers).
  return tied[indexAtWeight(tied, Math.trunc(t / total) % tiedWeight)] ?? fallback;
}

/** The tied candidates not much slower lately than the typical one of them (never empty). */
function notMuchSlower<T extends Candidate>(tied: T[], latencyMs: (candidate: T) => number): T[] {
  const latencies = tied.map(latencyMs);
  const sorted = [...latencies].sort((a, b) => a - b);
  const typical = sorted[(sorted.length - 1) >> 1] ?? 0;
  const limit = typical * LATENCY_TIE_FACTOR + LATENCY_TIE_SLACK_MS;
  // The usual case on the request path: nobody is slow, so no third array.
  if ((sorted.at(-1) ?? 0) <= limit) return tied;
  return tied.filter((_, i) => (latencies[i] ?? 0) <= limit);
}
