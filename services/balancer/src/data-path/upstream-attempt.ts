import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { clientResponseHeaders } from '../forward-headers.js';
import type { Upstream } from '../upstreams/upstream.js';

/** Who runs an attempt: the client request it belongs to, told how the attempt goes. */
export interface AttemptOwner {
  readonly requestId: string;
  readonly res: ServerResponse;
  /**
   * Called once, early: the last bytes of the upstream's response are in hand (with a
   * Content-Length, before the chunk that completes it goes to the client; else before the end),
   * or the attempt failed. The upstream is done with the request then, which is what
   * least-connections counts.
   */
  upstreamDone(attempt: UpstreamAttempt): void;
  /** Called exactly once: with nothing when the whole response went to the client, or with the error that ended the attempt. */
  settled(attempt: UpstreamAttempt, err: Error | undefined): void;
  /**
   * Asked once, with the status, before anything is written to the client (only when the attempt
   * checks statuses): true means "this answer is not for the client, another upstream will be
   * tried" (--retry-on-status).
   */
  retryStatus(attempt: UpstreamAttempt, status: number): boolean;
  /** Cuts an attempt short (see the proxy's rescue and per-try timeout). */
  cut(attempt: UpstreamAttempt, why: 'ejected' | 'timeout', err: Error): void;
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
 * The owner hears `upstreamDone` once, as early as the upstream is done (so that the in-flight
 * count is down before the client can see the response end and send its next request, which may
 * reach another thread), and `settled` exactly once, when the attempt is over.
 */
export class UpstreamAttempt implements Dispatcher.DispatchHandler {
  readonly owner: AttemptOwner;
  readonly upstream: Upstream;
  private readonly res: ServerResponse;
  /** X-Upstream, only with --expose-upstream (it names an internal address). */
  private readonly upstreamHeader: string | undefined;
  /** X-Lb-Decision, only with --explain. */
  private readonly decision: string | undefined;
  /** Ask the owner about the status before answering (--retry-on-status, replayable requests). */
  private readonly checkStatus: boolean;
  /** Body bytes still to come when the upstream sent a Content-Length; -1 when it did not. */
  private remaining = -1;
  private abortUpstream: ((err?: Error) => void) | undefined;
  private pendingAbort: Error | undefined;
  private resumeUpstream: (() => void) | undefined;
  private settledOnce = false;
  /** Set when the answer is being retried elsewhere: its body is read and dropped, never forwarded. */
  private discarding: RetryableStatus | undefined;
  private discarded = 0;
  /** Response headers arrived (from then on the client has, or is about to have, bytes). */
  answered = false;
  /** performance.now() when dispatched: the latency estimates measure from here. */
  sentAt = 0;
  /** The owner's bookkeeping: its place was released, why it was cut short, its per-try timer. */
  released = false;
  cutShort: 'ejected' | 'timeout' | undefined;
  tryTimer: NodeJS.Timeout | undefined;
  /** Resumes the upstream read once the client took what was written; made on the first full write only. */
  private onDrain: (() => void) | undefined;

  constructor(owner: AttemptOwner, upstream: Upstream, upstreamHeader: string | undefined, decision: string | undefined, checkStatus: boolean) {
    this.owner = owner;
    this.upstream = upstream;
    this.res = owner.res;
    this.upstreamHeader = upstreamHeader;
    this.decision = decision;
    this.checkStatus = checkStatus;
  }

  /** Cancels the upstream request (client gone, deadline); safe before the connection exists. */
  abort(err: Error): void {
    if (this.settledOnce) return;
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
    if (this.checkStatus && this.owner.retryStatus(this, statusCode)) {
      // Read the (usually tiny) error body to keep the keep-alive connection; none of it reaches the client.
      this.discarding = new RetryableStatus(statusCode);
      return true;
    }
    const headers = clientResponseHeaders(rawHeaders);
    const length = contentLengthOf(headers);
    // A body-less answer (HEAD, 204, 304) ends in onComplete, which releases there.
    if (length !== undefined && length > 0) this.remaining = length;
    if (this.upstreamHeader !== undefined) headers.push('x-upstream', this.upstreamHeader);
    headers.push('x-request-id', this.owner.requestId);
    if (this.decision !== undefined) headers.push('x-lb-decision', this.decision);
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
      if (this.remaining <= 0) this.owner.upstreamDone(this);
    }
    if (this.res.write(chunk)) return true;
    this.onDrain ??= (): void => {
      this.resumeUpstream?.();
    };
    this.res.once('drain', this.onDrain);
    return false;
  }

  onComplete(): void {
    this.owner.upstreamDone(this);
    if (this.discarding !== undefined) {
      this.finish(this.discarding);
      return;
    }
    this.res.end();
    this.finish(undefined);
  }

  onError(err: Error): void {
    this.owner.upstreamDone(this);
    // An answer already judged retryable stays that, however its discarded body ended.
    this.finish(this.discarding ?? err);
  }

  private finish(err: Error | undefined): void {
    if (this.settledOnce) return;
    this.settledOnce = true;
    if (this.onDrain !== undefined) this.res.off('drain', this.onDrain);
    this.owner.settled(this, err);
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
