import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { Cancellation } from './cancellation.js';
import type { CancelReason } from './cancellation.js';
import { LbError, failureReasonOf, statusOf, toLbError } from '../errors.js';
import type { FailureReason } from '../errors.js';
import { hasRequestBody } from '../forward-headers.js';
import type { OutcomeSink } from '../health/outlier-detector.js';
import type { Metrics } from '../metrics.js';
import { NO_UPSTREAM } from '../metrics.js';
import type { Pick } from '../picker/types.js';
import { sendErrorResponse } from './error-response.js';
import { lazyBody } from './request-body.js';
import type { RetryBudget } from './retry-budget.js';
import { decideRetry, isReplaySafe } from './retry-policy.js';
import type { RetryDecision } from './retry-policy.js';
import type { Routing } from './routing.js';
import type { UpstreamTable } from '../upstreams/registry.js';
import type { Upstream } from '../upstreams/upstream.js';
import { RetryableStatus, UpstreamAttempt } from './upstream-attempt.js';
import type { AttemptOwner } from './upstream-attempt.js';
import type { WaitQueue } from './wait-queue.js';

/** Status logged for a request whose client went away before its response ended (nginx's 499). */
const CLIENT_CLOSED = statusOf.LB_CLIENT_CLOSED;

// Abort reasons handed to undici; built once (an Error per request would capture a stack each time).
const CLIENT_GONE_ERROR = Object.assign(new Error('the client went away'), { code: 'UND_ERR_ABORTED' });
const DEADLINE_ERROR = Object.assign(new Error('the request deadline passed'), { code: 'UND_ERR_ABORTED' });
const TRY_TIMEOUT_ERROR = Object.assign(new Error('no response headers within the per-try timeout'), { code: 'UND_ERR_ABORTED' });
const EJECTED_ERROR = Object.assign(new Error('the upstream was taken out of rotation'), { code: 'UND_ERR_ABORTED' });

/** The data path's request handler, and what the rest of the data plane may ask of it. */
export interface ProxyHandler {
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * Upstreams changed state: requests still waiting for response headers from one that is now
   * down *and* stopped answering (its probes or the failures that ejected it timed out) and that
   * may be replayed are cancelled there and sent to another upstream at once, rather than wait
   * out a hung upstream's header timeout. A down upstream that still answers (a replica draining
   * before it stops: /healthz 503) or refuses new connections keeps its requests: it finishes
   * them, or closes their connections itself and they fail over then.
   */
  rescueFromUnresponsive(): void;
}

type ProxyConfigKey = 'explain' | 'exposeUpstream' | 'passive5xx' | 'queueLength' | 'requestTimeoutMs' | 'retries' | 'retryOnStatus' | 'tryTimeoutMs';

export interface ProxyDeps {
  /** The part of the config the proxy reads (`Pick` here is the picker's). */
  readonly config: { readonly [K in ProxyConfigKey]: Config[K] };
  readonly registry: UpstreamTable;
  /** Told how every attempt went (passive health); possibly on another thread. */
  readonly outliers: OutcomeSink;
  readonly retryBudget: RetryBudget;
  readonly queue: WaitQueue;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Candidates, choice, acquire / release, request id and headers: shared with upgrades. */
  readonly routing: Routing;
}

/**
 * `X-Lb-Decision`: the candidates as seen at decision time and why the chosen one won. The
 * in-flight shown is the one compared: across the balancers when peers share counts.
 */
export function explainDecision(pick: Pick<Upstream>, candidates: readonly Upstream[]): string {
  const list = candidates.map((c) => `${c.id}/${c.inFlightCluster}/${c.weight}`).join(',');
  return `chosen=${pick.chosen.id}; reason=${pick.reason}; candidates=${list}`;
}

/** What every exchange of one proxy reads: built once, so a request carries one reference, not a set of closures. */
interface ProxyContext extends ProxyDeps {
  readonly retryStatuses: ReadonlySet<number>;
  /** Attempts that may still be moved if their upstream stops answering: those without response headers yet. */
  readonly rescuable: Map<Upstream, Set<UpstreamAttempt>>;
}

/** How a failed attempt ended, its accounting (counts, metrics, passive health) already done. */
type Failure =
  /** A --retry-on-status answer dropped before it reached the client: the retry is decided already. */
  | { readonly kind: 'status'; readonly error: LbError; readonly status: number }
  | { readonly kind: 'failed'; readonly error: LbError; readonly reason: FailureReason };

/**
 * One client request across its attempts: pick → acquire → dispatch on the upstream's undici pool
 * → release, then another upstream when the retry rules allow. Written as callbacks on one object
 * rather than async functions: a request that is answered at the first attempt allocates this
 * object, its attempt and the upstream headers, and goes through no promise.
 */
class Exchange implements AttemptOwner {
  readonly requestId: string;
  readonly method: string;
  readonly headers: string[];
  readonly hasBody: boolean;
  /** Safe to send again elsewhere (see isReplaySafe). */
  readonly replaySafe: boolean;
  private readonly started = performance.now();
  /** Who pulled the plug, if anyone: the client left, or the deadline passed. */
  private cancelled: CancelReason | undefined;
  /** Made only when the request waits in the queue (which listens for 'abort'). */
  private cancellation: Cancellation | undefined;
  private deadline: NodeJS.Timeout | undefined;
  /** The attempt to abort when the client leaves or the deadline passes, if one is running. */
  private current: UpstreamAttempt | undefined;
  /** Upstreams already tried, once there was a failed attempt. */
  private tried: Set<Upstream> | undefined;
  /** Attempts that counted (a failover after a refused connect does not). */
  private attempt = 0;
  private panicCounted = false;
  private lastUpstream: string | undefined;
  private lastError: LbError | undefined;
  private finished = false;
  private readonly ctx: ProxyContext;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** A client that left before its response ended. */
  private readonly onClose = (): void => {
    if (!this.res.writableFinished) this.cancelWith('client-gone', CLIENT_GONE_ERROR);
  };

  constructor(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse) {
    this.ctx = ctx;
    this.req = req;
    this.res = res;
    this.requestId = ctx.routing.requestIdOf(req);
    this.method = req.method ?? 'GET';
    this.hasBody = hasRequestBody(req.headers);
    this.headers = ctx.routing.headersFor(req, this.requestId);
    this.replaySafe = isReplaySafe(this.method, this.hasBody);
  }

  start(): void {
    const { config } = this.ctx;
    this.res.once('close', this.onClose);
    if (config.requestTimeoutMs > 0) {
      this.deadline = setTimeout(() => {
        this.cancelWith('deadline', DEADLINE_ERROR);
      }, config.requestTimeoutMs);
    }
    this.ctx.retryBudget.recordRequest();
    this.next();
  }

  /** Records the first reason to stop, wakes a queued wait and aborts the running attempt. */
  cancelWith(reason: CancelReason, err: Error): void {
    if (this.cancelled !== undefined) return;
    this.cancelled = reason;
    this.cancellation?.cancel(reason);
    this.current?.abort(err);
  }

  /** Picks and starts the next attempt; or waits in the queue; or answers with the last error. */
  private next(): void {
    const { config, registry, routing, metrics, queue } = this.ctx;
    while (this.attempt <= config.retries) {
      const candidates = routing.candidates(this.tried);
      const pick = routing.choose(candidates);
      if (pick === undefined) {
        // Every available upstream is at its cap: wait in line. None available at all: fail now.
        if (registry.available().length === 0 || this.tried !== undefined || config.queueLength === 0) break;
        if (this.cancellation === undefined) {
          this.cancellation = new Cancellation();
          if (this.cancelled !== undefined) this.cancellation.cancel(this.cancelled);
        }
        queue.wait(this.cancellation).then(
          () => {
            this.guarded(() => {
              this.next();
            });
          },
          (err: unknown) => {
            this.guarded(() => {
              this.queueFailed(err);
            });
          },
        );
        return;
      }
      const upstream = pick.chosen;
      if (!this.panicCounted && registry.panicking()) {
        this.panicCounted = true;
        metrics.recordPanicRequest();
      }
      // The counts as the picker saw them, before this request adds to one.
      const explanation = config.explain ? explainDecision(pick, candidates) : undefined;
      // Another thread may have taken its last place since the pick: pick again (it is full now).
      if (!routing.acquire(pick)) continue;
      this.attempt++;
      this.lastUpstream = upstream.id;
      this.dispatch(upstream, explanation);
      return;
    }
    this.answerWithError();
  }

  private queueFailed(err: unknown): void {
    if (this.cancelled === 'client-gone') {
      this.finish();
      return;
    }
    this.lastError = err instanceof LbError ? err : new LbError('LB_INTERNAL', 'internal error in the balancer', { cause: err });
    this.answerWithError();
  }

  /** One attempt on `upstream`, acquired by the caller; it ends in attemptAnswered or attemptFailed. */
  private dispatch(upstream: Upstream, decision: string | undefined): void {
    const { config, rescuable, retryStatuses } = this.ctx;
    const running = new UpstreamAttempt(this, upstream, config.exposeUpstream ? upstream.id : undefined, decision, this.replaySafe && retryStatuses.size > 0);
    this.current = running;
    if (this.replaySafe && config.retries > 0) {
      let set = rescuable.get(upstream);
      if (set === undefined) rescuable.set(upstream, (set = new Set()));
      set.add(running);
    }
    if (config.tryTimeoutMs > 0) {
      running.tryTimer = setTimeout(() => {
        this.cut(running, 'timeout', TRY_TIMEOUT_ERROR);
      }, config.tryTimeoutMs);
    }
    const body = this.hasBody ? lazyBody(this.req) : null;
    running.sentAt = performance.now();
    upstream.pool.dispatch({ path: this.req.url ?? '/', method: this.method, headers: this.headers, body }, running);
  }

  /** Cuts an attempt short on our side (moved off an unresponsive upstream, or out of time): once, never after headers. */
  cut(attempt: UpstreamAttempt, why: 'ejected' | 'timeout', err: Error): void {
    if (attempt.answered || attempt.cutShort !== undefined) return;
    attempt.cutShort = why;
    attempt.abort(err);
  }

  /**
   * The upstream is done with the attempt (its whole response is in hand, or it failed): the one
   * release of its acquire, before the client can see the response end and send its next request
   * (which may reach another thread).
   */
  upstreamDone(attempt: UpstreamAttempt): void {
    if (attempt.released) return;
    attempt.released = true;
    this.ctx.routing.release(attempt.upstream, attempt.sentAt);
  }

  /** How the attempt ended: undefined when the whole response went to the client. */
  settled(attempt: UpstreamAttempt, err: Error | undefined): void {
    this.endAttempt(attempt);
    if (err === undefined) {
      this.guarded(() => {
        this.attemptAnswered(attempt.upstream);
      });
      return;
    }
    // Off undici's call stack (it may be inside its own error handling), as an awaited promise was.
    queueMicrotask(() => {
      this.guarded(() => {
        this.attemptFailed(attempt, err);
      });
    });
  }

  /** Whether an answer with `status` goes to another upstream instead of the client (asked before anything is written). */
  retryStatus(attempt: UpstreamAttempt, status: number): boolean {
    const { retryStatuses, routing, retryBudget, metrics } = this.ctx;
    if (!retryStatuses.has(status)) return false;
    const decision = this.decide('status');
    if (decision.action === 'give-up' && !decision.budgetRefused) return false;
    if (!routing.candidates(this.tried).some((u) => u !== attempt.upstream)) return false;
    if (decision.action === 'give-up' || !retryBudget.tryAcquire()) {
      metrics.recordRetryRefused();
      return false;
    }
    return true;
  }

  /** Whatever the ending: the attempt's timer and rescue entry go, and its place is released. */
  private endAttempt(attempt: UpstreamAttempt): void {
    if (attempt.tryTimer !== undefined) clearTimeout(attempt.tryTimer);
    const { rescuable } = this.ctx;
    const set = rescuable.get(attempt.upstream);
    if (set?.delete(attempt) === true && set.size === 0) rescuable.delete(attempt.upstream);
    if (this.current === attempt) this.current = undefined;
    this.upstreamDone(attempt);
  }

  private attemptAnswered(upstream: Upstream): void {
    const { config, outliers } = this.ctx;
    if (this.res.statusCode >= 500) {
      upstream.countError();
      if (config.passive5xx) outliers.recordFailure(upstream, 'status');
    } else {
      outliers.recordSuccess(upstream);
    }
    this.finish();
  }

  private attemptFailed(attempt: UpstreamAttempt, err: Error): void {
    const { config, outliers, metrics } = this.ctx;
    const { upstream } = attempt;
    // undici already cancelled the upstream request.
    if (this.cancelled === 'client-gone') {
      this.finish();
      return;
    }
    upstream.countError();
    let failure: Failure;
    if (err instanceof RetryableStatus) {
      metrics.recordFailure(upstream.id, 'status');
      if (config.passive5xx) outliers.recordFailure(upstream, 'status');
      failure = { kind: 'status', status: err.status, error: new LbError('LB_UPSTREAM_STATUS', `upstream ${upstream.id} answered ${err.status}`, { status: err.status }) };
    } else {
      const timedOut = this.cancelled === 'deadline';
      const reason = timedOut ? 'timeout' : (attempt.cutShort ?? failureReasonOf(err));
      metrics.recordFailure(upstream.id, reason);
      // An ejected upstream is out already; a failure would only count against its return.
      if (reason !== 'ejected') outliers.recordFailure(upstream, reason);
      const error = timedOut
        ? new LbError('LB_UPSTREAM_TIMEOUT', `upstream ${upstream.id} did not finish within ${config.requestTimeoutMs} ms`)
        : toLbError(reason, upstream.id, err);
      failure = { kind: 'failed', reason, error };
    }
    this.lastError = failure.error;
    if (this.retryAfter(upstream, failure)) this.next();
    else this.answerWithError();
  }

  /** The retry decision for this attempt's ending (see retry-policy.ts). */
  private decide(reason: FailureReason | 'status'): RetryDecision {
    const { config, retryBudget } = this.ctx;
    return decideRetry({
      method: this.method,
      hasBody: this.hasBody,
      bodyRead: this.req.readableDidRead,
      reason,
      headersSent: this.res.headersSent,
      deadlinePassed: this.cancelled === 'deadline',
      attempt: this.attempt,
      retries: config.retries,
      budgetLeft: retryBudget.available(),
    });
  }

  /** Whether the request goes on to another upstream after a failed attempt (and its bookkeeping). */
  private retryAfter(upstream: Upstream, failure: Failure): boolean {
    const { metrics, logger, retryBudget } = this.ctx;
    if (failure.kind === 'status') {
      // The decision (another upstream exists, attempts and budget left) was made in retryStatus.
      (this.tried ??= new Set()).add(upstream);
      metrics.recordRetry();
      logger.debug({ upstream: upstream.id, status: failure.status, requestId: this.requestId }, 'retrying on another upstream');
      return true;
    }
    const decision = this.decide(failure.reason);
    switch (decision.action) {
      case 'failover':
        // Never reached the upstream: costs no attempt (and no budget).
        (this.tried ??= new Set()).add(upstream);
        this.attempt--;
        metrics.recordRetry();
        return true;
      case 'give-up':
        if (decision.budgetRefused) metrics.recordRetryRefused();
        return false;
      case 'retry':
        if (decision.spendsBudget && !retryBudget.tryAcquire()) {
          metrics.recordRetryRefused();
          return false;
        }
        (this.tried ??= new Set()).add(upstream);
        metrics.recordRetry();
        logger.debug({ upstream: upstream.id, reason: failure.reason, requestId: this.requestId }, 'retrying on another upstream');
        return true;
    }
  }

  private answerWithError(): void {
    this.sendError(this.lastError ?? new LbError('LB_NO_UPSTREAM', 'no upstream is available'), this.requestId, this.lastUpstream);
    this.finish();
  }

  private sendError(err: LbError, requestId: string, upstream: string | undefined): void {
    sendErrorResponse(this.res, err, requestId, this.ctx.config.exposeUpstream ? upstream : undefined);
  }

  /** The request is over for the proxy (answered, failed or abandoned): timers, listener, metrics, once. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    const { metrics, registry, logger } = this.ctx;
    if (this.deadline !== undefined) clearTimeout(this.deadline);
    this.res.off('close', this.onClose);
    const status = this.cancelled === 'client-gone' ? CLIENT_CLOSED : this.res.statusCode;
    const seconds = (performance.now() - this.started) / 1000;
    metrics.recordRequest(this.lastUpstream ?? NO_UPSTREAM, status, seconds);
    registry.counters.countRequest(status);
    if (logger.isLevelEnabled('debug')) {
      logger.debug({ method: this.method, url: this.req.url, status, upstream: this.lastUpstream, ms: Math.round(seconds * 1000), requestId: this.requestId }, 'request');
    }
  }

  /**
   * Runs a step of the exchange; an exception there is our own bug (every upstream failure is
   * mapped above): it is said so, not blamed on an upstream, and never takes the process down.
   */
  guarded(step: () => void): void {
    try {
      step();
    } catch (err) {
      this.internalError(err);
    }
  }

  private internalError(err: unknown): void {
    this.ctx.logger.error({ err, method: this.req.method, url: this.req.url }, 'proxy handler failed');
    this.current?.abort(CLIENT_GONE_ERROR);
    if (!this.res.headersSent) this.sendError(new LbError('LB_INTERNAL', 'internal error in the balancer'), '', undefined);
    else this.res.destroy();
    this.finish();
  }
}

/**
 * The data path: one Exchange per client request (see Exchange). Bodies stream both ways with
 * backpressure (see UpstreamAttempt and lazyBody).
 */
export function createProxyHandler(deps: ProxyDeps): ProxyHandler {
  const ctx: ProxyContext = { ...deps, retryStatuses: new Set(deps.config.retryOnStatus), rescuable: new Map() };
  const { registry, rescuable } = ctx;
  return {
    handle: (req, res) => {
      let exchange: Exchange;
      try {
        exchange = new Exchange(ctx, req, res);
      } catch (err) {
        ctx.logger.error({ err, method: req.method, url: req.url }, 'proxy handler failed');
        sendErrorResponse(res, new LbError('LB_INTERNAL', 'internal error in the balancer'), '', undefined);
        return;
      }
      exchange.guarded(() => {
        exchange.start();
      });
    },
    rescueFromUnresponsive() {
      // In panic mode down upstreams are all there is: moving requests between them helps nobody.
      if (rescuable.size === 0 || registry.panicking()) return;
      for (const [upstream, set] of rescuable) {
        // Moving a request off an upstream that is serving it is what lost requests when replicas
        // left one after another (issue 22): each move restarts it, and the third ran out of retries.
        if (upstream.state !== 'down' || !upstream.unresponsive) continue;
        for (const attempt of [...set]) attempt.owner.cut(attempt, 'ejected', EJECTED_ERROR);
      }
    },
  };
}
