/**
 * A retry budget (Envoy, Finagle): retries may be at most `percent` of the requests of the last
 * `windowMs`, plus a small floor, so that retries can never multiply the load on a failing
 * cluster. Counted in one-second buckets so the cost per request is an increment.
 */
export interface RetryBudget {
  recordRequest(): void;
  /** Whether a retry is left, without taking it (for a decision made before the retry is sure). */
  available(): boolean;
  /** Takes one retry from the budget, or returns false when it is spent. */
  tryAcquire(): boolean;
}

/** Creates a budget over a sliding window of whole seconds. */
export function createRetryBudget(percent: number, minRetries: number, windowMs = 10_000, now: () => number = Date.now): RetryBudget {
  const slots = Math.max(1, Math.round(windowMs / 1000));
  const requests = new Float64Array(slots);
  const retries = new Float64Array(slots);
  let currentSecond = Math.floor(now() / 1000);

  const advance = (): number => {
    const second = Math.floor(now() / 1000);
    if (second !== currentSecond) {
      // Clear every bucket skipped since the last call (at most the whole window).
      for (let s = Math.max(currentSecond + 1, second - slots + 1); s <= second; s++) {
        requests[s % slots] = 0;
        retries[s % slots] = 0;
      }
      currentSecond = second;
    }
    return second % slots;
  };

  const sum = (a: Float64Array): number => {
    let n = 0;
    for (const v of a) n += v;
    return n;
  };

  return {
    recordRequest() {
      const slot = advance();
      requests[slot] = (requests[slot] ?? 0) + 1;
    },
    available() {
      advance();
      return sum(retries) + 1 <= Math.max(minRetries, (sum(requests) * percent) / 100);
    },
    tryAcquire() {
      const slot = advance();
      if (!this.available()) return false;
      retries[slot] = (retries[slot] ?? 0) + 1;
      return true;
    },
  };
}
