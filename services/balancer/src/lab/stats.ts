/** The numbers a lab run reports, computed from raw samples. Pure. */

/** The q-quantile (0..1) of ascending `sorted`, nearest-rank; 0 for none. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? 0;
}

/**
 * Jain's fairness index of `xs`: (Σx)² ÷ (n·Σx²). 1 when all are equal, 1/n when one has all;
 * 1 for an empty or all-zero list (nothing is unfair).
 */
export function jainIndex(xs: readonly number[]): number {
  let sum = 0;
  let squares = 0;
  for (const x of xs) {
    sum += x;
    squares += x * x;
  }
  return squares === 0 ? 1 : (sum * sum) / (xs.length * squares);
}

/** Rounds to 0.01 (milliseconds and shares in reports). */
export const round2 = (x: number): number => Math.round(x * 100) / 100;
