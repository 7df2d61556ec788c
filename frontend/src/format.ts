/** Number and time formatting for the page, kept in one place so every figure reads the same way. */

const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** 1234567 → "1,234,567". */
export function formatInt(n: number): string {
  return intFmt.format(Math.round(n));
}

/** Requests per second: one decimal below 10 so a trickle is not shown as 0, none above. */
export function formatRate(n: number): string {
  if (!Number.isFinite(n) || n <= 0) return '0';
  if (n < 10) return n.toFixed(1);
  return formatInt(n);
}

/** The imbalance ratio (max ÷ mean in-flight), e.g. "1.33×". */
export function formatRatio(n: number): string {
  return Number.isFinite(n) ? `${n.toFixed(2)}×` : '–';
}

/** A duration: "850 ms", "3.2 s", "1 min 5 s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** Wall-clock time with milliseconds, local time: "14:03:07.250". */
export function formatClock(epochMs: number): string {
  const d = new Date(epochMs);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Percentage of a whole, "0%" when the whole is 0. */
export function formatShare(part: number, whole: number): string {
  if (whole <= 0) return '0%';
  const p = (part * 100) / whole;
  return p > 0 && p < 1 ? '<1%' : `${Math.round(p)}%`;
}

/**
 * Upper end of a scale of counts: at least `min`, rounded up to 1, 2, 4, 5 or 8 × 10^k so that the
 * bars do not rescale on every change of the busiest upstream and integer ticks stay possible.
 */
export function niceCeil(value: number, min = 4): number {
  const v = Math.max(value, min);
  const exp = Math.floor(Math.log10(v));
  const base = 10 ** exp;
  for (const m of [1, 2, 4, 5, 8, 10]) if (m * base >= v) return m * base;
  return 10 * base;
}
