/** See poll.mjs. */
export function pollUntil<T>(
  what: string,
  probe: () => T | false | undefined | Promise<T | false | undefined>,
  timeoutMs?: number,
  options?: { intervalMs?: number; retryErrors?: boolean },
): Promise<Exclude<T, false | undefined>>;
