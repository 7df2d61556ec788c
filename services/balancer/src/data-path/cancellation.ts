import { EventEmitter } from 'node:events';

/** Why a request was cancelled: the client left, or the whole-request deadline passed. */
export type CancelReason = 'client-gone' | 'deadline';

/**
 * Who ended a request early, told once to whoever waits on its behalf. The wait queue listens
 * for 'abort' to drop a queued request; the proxy reads `reason` to tell a client that left from a
 * deadline, and cancels a running upstream attempt itself (`UpstreamAttempt.abort`): undici never
 * sees this object. A plain emitter rather than an AbortController, whose EventTarget per request
 * showed up in the proxy's CPU profile.
 */
export class Cancellation extends EventEmitter {
  reason: CancelReason | undefined;

  /** Records the first reason and emits 'abort'; later calls change nothing. */
  cancel(reason: CancelReason): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.emit('abort');
  }
}
