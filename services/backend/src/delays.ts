import type { ServerResponse } from 'node:http';

/** How a delay ended: its time passed, the client went away, or the app stopped. */
export type DelayOutcome = 'elapsed' | 'client-gone' | 'stopped';

/** Timers that hold image responses back without blocking anything else. */
export interface Delays {
  /** Number of delays running now (a test proves none is left behind). */
  readonly pending: number;
  /**
   * Waits `ms` on a timer. Ends early, clearing the timer, when `res` closes (the client went
   * away) or when {@link Delays.stop} is called.
   */
  wait(ms: number, res: ServerResponse): Promise<DelayOutcome>;
  /** Ends every running delay with 'stopped' and refuses new ones. Idempotent. */
  stop(): void;
}

/** Creates an empty set of delays. */
export function createDelays(): Delays {
  const running = new Set<(outcome: DelayOutcome) => void>();
  let stopped = false;
  return {
    get pending() {
      return running.size;
    },
    wait(ms, res) {
      if (stopped) return Promise.resolve('stopped');
      // 'close' has already fired for a client that left before we got here.
      if (res.destroyed || res.socket?.destroyed === true) return Promise.resolve('client-gone');
      return new Promise<DelayOutcome>((resolve) => {
        const finish = (outcome: DelayOutcome): void => {
          clearTimeout(timer);
          res.off('close', onClose);
          running.delete(finish);
          resolve(outcome);
        };
        const onClose = (): void => {
          finish('client-gone');
        };
        const timer = setTimeout(finish, ms, 'elapsed');
        res.once('close', onClose);
        running.add(finish);
      });
    },
    stop() {
      stopped = true;
      for (const finish of [...running]) finish('stopped');
    },
  };
}
