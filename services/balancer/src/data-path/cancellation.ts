import { EventEmitter } from 'node:events';

/** Why a request was cancelled: the client left, or the whole-request deadline passed. */
export type CancelReason = 'client-gone' | 'deadline';

/**
 * A per-request cancel signal that undici accepts in place of an AbortSignal (it listens for
 * 'abort' on any EventEmitter). AbortController builds an EventTarget per request, which showed
 * up in the proxy's CPU profile; this is a plain emitter with a reason.
 */
export class Cancellation extends EventEmitter {
  reason: CancelReason | undefined;

  /** Read by undici before it starts a request. */
  get aborted(): boolean {
    return this.reason !== undefined;
  }

  cancel(reason: CancelReason): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.emit('abort');
  }
}
