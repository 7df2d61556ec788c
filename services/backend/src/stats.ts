/** Counts of the work a backend does, shared by `/info` and the in-flight gauge. */
export interface Stats {
  /** Image requests being served now. */
  readonly inFlight: number;
  /** Images answered with 200 since start. */
  readonly served: number;
  /** Seconds since the stats were created (the app's start). */
  uptimeSeconds(): number;
  /** Counts one request in; call the returned function exactly once when it ends (later calls do nothing). */
  begin(): () => void;
  /** Counts one image served. */
  countServed(): void;
  /** Resolves once nothing is in flight (at once when idle): graceful shutdown waits on it. */
  whenIdle(): Promise<void>;
}

/** Creates zeroed stats; `now` is injectable (milliseconds) so uptime can be tested. */
export function createStats(now: () => number = () => performance.now()): Stats {
  const startedAt = now();
  let inFlight = 0;
  let served = 0;
  let idleWaiters: (() => void)[] = [];
  return {
    get inFlight() {
      return inFlight;
    },
    get served() {
      return served;
    },
    uptimeSeconds: () => (now() - startedAt) / 1000,
    begin() {
      inFlight += 1;
      let ended = false;
      // The idempotent release is what keeps the count from ever going below zero.
      return () => {
        if (ended) return;
        ended = true;
        inFlight -= 1;
        if (inFlight === 0) {
          const waiters = idleWaiters;
          idleWaiters = [];
          for (const wake of waiters) wake();
        }
      };
    },
    countServed() {
      served += 1;
    },
    whenIdle() {
      if (inFlight === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
  };
}
