import { pollUntil } from '../../scripts/poll.mjs';

export interface WaitOptions {
  /** What is awaited, for the error message. */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
}

/**
 * Polls `probe` until it returns a value other than `undefined`, or fails after the deadline with
 * the last probe error or result. Bounded: the loop ends at the deadline whatever happens.
 */
export function waitFor<T>(probe: () => Promise<T | undefined>, options: WaitOptions): Promise<T> {
  return pollUntil(options.what, probe, options.timeoutMs, { intervalMs: options.intervalMs ?? 250, retryErrors: true });
}

/**
 * An error that ends a `waitFor` at once instead of counting as "not yet": for a probe that sees
 * the awaited thing can no longer happen (a run that failed), so the test fails with that reason
 * now, not with a timeout minutes later.
 */
export function fatalError(message: string): Error & { readonly fatal: true } {
  return Object.assign(new Error(message), { fatal: true as const });
}
