import type { Cancellation } from './cancellation.js';
import { LbError } from '../errors.js';

/**
 * The bounded FIFO where requests wait when every available upstream is at its in-flight cap
 * (HAProxy's queue): served in arrival order as capacity frees, refused when full or too slow.
 */
export interface WaitQueue {
  /** Resolves when the caller may try to pick again; rejects with LB_QUEUE_FULL / LB_QUEUE_TIMEOUT. */
  wait(cancel: Cancellation): Promise<void>;
  /** Lets the oldest waiter try again (call whenever an upstream finishes a request). */
  wakeOne(): void;
  readonly length: number;
  /** Rejects every waiter (shutdown). */
  stop(): void;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

/** Creates a queue of at most `maxLength` waiters, each waiting at most `timeoutMs`. */
export function createWaitQueue(maxLength: number, timeoutMs: number): WaitQueue {
  const waiters: Waiter[] = [];

  const remove = (w: Waiter): void => {
    const at = waiters.indexOf(w);
    if (at !== -1) waiters.splice(at, 1);
  };

  return {
    wait(cancel) {
      if (waiters.length >= maxLength) {
        return Promise.reject(new LbError('LB_QUEUE_FULL', `every upstream is at capacity and ${maxLength} requests already wait`));
      }
      return new Promise<void>((resolve, reject) => {
        const done = (): void => {
          clearTimeout(timer);
          cancel.off('abort', onAbort);
        };
        const waiter: Waiter = {
          resolve: () => {
            done();
            resolve();
          },
          reject: (err) => {
            done();
            reject(err);
          },
        };
        const timer = setTimeout(() => {
          remove(waiter);
          waiter.reject(new LbError('LB_QUEUE_TIMEOUT', `no upstream had capacity within ${timeoutMs} ms`));
        }, timeoutMs);
        const onAbort = (): void => {
          remove(waiter);
          // The request's own deadline (--request-timeout-ms) may end the wait before the queue's:
          // that request is still there to be told, and what it must hear is that time ran out.
          waiter.reject(
            cancel.reason === 'deadline'
              ? new LbError('LB_QUEUE_TIMEOUT', 'the request deadline passed while it waited for an upstream with capacity')
              : new LbError('LB_CLIENT_CLOSED', 'the client went away while queued'),
          );
        };
        cancel.once('abort', onAbort);
        waiters.push(waiter);
      });
    },
    wakeOne() {
      waiters.shift()?.resolve();
    },
    get length() {
      return waiters.length;
    },
    stop() {
      for (const w of waiters.splice(0)) w.reject(new LbError('LB_SHUTTING_DOWN', 'the balancer is shutting down'));
    },
  };
}
