import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { clientResponseHeaders } from '../forward-headers.js';

/** What an attempt adds to the client response besides the upstream's own headers. */
export interface ResponseExtras {
  /** X-Upstream, only with --expose-upstream (it names an internal address). */
  readonly upstream: string | undefined;
  readonly requestId: string;
  readonly decision: string | undefined;
  /**
   * Asked once, with the status, before anything is written to the client: true means "this
   * answer is not for the client, another upstream will be tried" (--retry-on-status).
   */
  readonly retryOnStatus: ((status: number) => boolean) | undefined;
}

/** Longest body of an answer that is being retried elsewhere that is read (to keep the connection) rather than cut. */
const DISCARD_LIMIT_BYTES = 64 * 1024;

/** How an attempt ends when its answer had a --retry-on-status code and the proxy chose to retry. */
export class RetryableStatus extends Error {
  readonly status: number;
  constructor(status: number) {
    super(`upstream answered ${status}`);
    this.name = 'RetryableStatus';
    this.status = status;
  }
}

/**
 * One request on one upstream, as an undici dispatch handler writing straight into the client
 * response. This is `pool.stream()` without its per-request AsyncResource, end-of-stream
 * listeners and promise wrapping, which showed in the profile; backpressure is the same:
 * onData returns false while `res` is full, and 'drain' resumes the upstream read.
 * `settle` is called exactly once: with nothing when the upstream response has fully arrived
 * (the upstream is done with this request, which is what least-connections counts), or with
 * the error that ended the attempt. `upstreamDone` is called once too, earlier: when the last
 * bytes of the upstream's response are in hand and before they go to the client (with a
 * Content-Length, before the chunk that completes it; else before the end), so that the
 * in-flight count is down before the client can see the response end and send its next request.
 */
export class UpstreamAttempt implements Dispatcher.DispatchHandler {
  private readonly res: ServerResponse;
  private readonly extras: ResponseExtras;
  private readonly settle: (err?: Error) => void;
  private readonly upstreamDone: () => void;
  /** Body bytes still to come when the upstream sent a Content-Length; -1 when it did not. */
  private remaining = -1;
  private abortUpstream: ((err?: Error) => void) | undefined;
  private pendingAbort: Error | undefined;
  private resumeUpstream: (() => void) | undefined;
  private settled = false;
  /** Set when the answer is being retried elsewhere: its body is read and dropped, never forwarded. */
  private discarding: RetryableStatus | undefined;
  private discarded = 0;
  /** Response headers arrived (from then on the client has, or is about to have, bytes). */
  answered = false;
  private readonly onDrain = (): void => {
    this.resumeUpstream?.();
  };

  constructor(res: ServerResponse, extras: ResponseExtras, upstreamDone: () => void, settle: (err?: Error) => void) {
    this.res = res;
    this.extras = extras;
    this.upstreamDone = upstreamDone;
    this.settle = settle;
  }

  /** Cancels the upstream request (client gone, deadline); safe before the connection exists. */
  abort(err: Error): void {
    if (this.settled) return;
    if (this.abortUpstream === undefined) this.pendingAbort = err;
    else this.abortUpstream(err);
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.pendingAbort !== undefined) abort(this.pendingAbort);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx informational responses (undici already handled 100-continue) are not forwarded.
    if (statusCode < 200) return true;
    this.answered = true;
    if (this.extras.retryOnStatus?.(statusCode) === true) {
      // Read the (usually tiny) error body to keep the keep-alive connection; none of it reaches the client.
      this.discarding = new RetryableStatus(statusCode);
      return true;
    }
    const headers = clientResponseHeaders(rawHeaders);
    const length = contentLengthOf(headers);
    // A body-less answer (HEAD, 204, 304) ends in onComplete, which releases there.
    if (length !== undefined && length > 0) this.remaining = length;
    if (this.extras.upstream !== undefined) headers.push('x-upstream', this.extras.upstream);
    headers.push('x-request-id', this.extras.requestId);
    if (this.extras.decision !== undefined) headers.push('x-lb-decision', this.extras.decision);
    this.resumeUpstream = resume;
    if (statusText === '') this.res.writeHead(statusCode, headers);
    else this.res.writeHead(statusCode, statusText, headers);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.discarding !== undefined) {
      this.discarded += chunk.length;
      if (this.discarded > DISCARD_LIMIT_BYTES) this.abortUpstream?.(this.discarding);
      return true;
    }
    if (this.remaining > 0) {
      this.remaining -= chunk.length;
      if (this.remaining <= 0) this.upstreamDone();
    }
    if (this.res.write(chunk)) return true;
    this.res.once('drain', this.onDrain);
    return false;
  }

  onComplete(): void {
    this.upstreamDone();
    if (this.discarding !== undefined) {
      this.finish(this.discarding);
      return;
    }
    this.res.end();
    this.finish(undefined);
  }

  onError(err: Error): void {
    this.upstreamDone();
    // An answer already judged retryable stays that, however its discarded body ended.
    this.finish(this.discarding ?? err);
  }

  private finish(err: Error | undefined): void {
    if (this.settled) return;
    this.settled = true;
    this.res.off('drain', this.onDrain);
    this.settle(err);
  }
}

/** The Content-Length of a flat [name, value, ...] header list with lower-case names, if valid. */
function contentLengthOf(headers: readonly string[]): number | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i] !== 'content-length') continue;
    const n = Number(headers[i + 1]);
    return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
  }
  return undefined;
}
