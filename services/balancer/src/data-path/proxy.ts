import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { Cancellation } from './cancellation.js';
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
import type { ResponseExtras } from './upstream-attempt.js';
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

/** One client request across its attempts. */
interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  readonly method: string;
  readonly headers: string[];
  readonly hasBody: boolean;
  /** Safe to send again elsewhere (see isReplaySafe). */
  readonly replaySafe: boolean;
  /** Records who pulled the plug (and wakes a queued wait). */
  readonly cancel: Cancellation;
  /** The attempt to abort when the client leaves or the deadline passes, if one is running. */
  current: UpstreamAttempt | undefined;
  /** Upstreams already tried, once there was a failed attempt. */
  tried: Set<Upstream> | undefined;
  /** Attempts that counted (a failover after a refused connect does not). */
  attempt: number;
}

/** How one attempt ended, its accounting (counts, metrics, passive health) already done. */
type AttemptResult =
  | { readonly kind: 'answered' }
  | { readonly kind: 'client-gone' }
  /** A --retry-on-status answer dropped before it reached the client: the retry is decided already. */
  | { readonly kind: 'status'; readonly error: LbError; readonly status: number }
  | { readonly kind: 'failed'; readonly error: LbError; readonly reason: FailureReason };

/**
 * The data path: pick → acquire → dispatch on the upstream's undici pool → release.
 * Bodies stream both ways with backpressure (see UpstreamAttempt and lazyBody).
 */
export function createProxyHandler(deps: ProxyDeps): ProxyHandler {
  const { config, registry, outliers, retryBudget, queue, metrics, logger, routing } = deps;
  const retryStatuses = new Set(config.retryOnStatus);
  /** Attempts that may still be moved if their upstream stops answering: those without response headers yet. */
  const rescuable = new Map<Upstream, Set<() => void>>();

  const sendError = (res: ServerResponse, err: LbError, requestId: string, upstream: string | undefined): void => {
    sendErrorResponse(res, err, requestId, config.exposeUpstream ? upstream : undefined);
  };

  const clientGone = (x: Exchange): boolean => x.cancel.reason === 'client-gone';
  const timedOut = (x: Exchange): boolean => x.cancel.reason === 'deadline';

  /** The retry decision for this attempt's ending (see retry-policy.ts). */
  const decide = (x: Exchange, reason: FailureReason | 'status'): RetryDecision =>
    decideRetry({
      method: x.method,
      hasBody: x.hasBody,
      bodyRead: x.req.readableDidRead,
      reason,
      headersSent: x.res.headersSent,
      deadlinePassed: timedOut(x),
      attempt: x.attempt,
      retries: config.retries,
      budgetLeft: retryBudget.available(),
    });

  /**
   * Whether an answer with `status` from `upstream` goes to another upstream instead of the
   * client: a --retry-on-status code, an attempt left, another upstream that can take it now,
   * and the retry budget. Otherwise the client gets this answer as it is.
   */
  const retryOnStatus = (x: Exchange, status: number, upstream: Upstream): boolean => {
    if (!retryStatuses.has(status)) return false;
    const decision = decide(x, 'status');
    if (decision.action === 'give-up' && !decision.budgetRefused) return false;
    if (!routing.candidates(x.tried).some((u) => u !== upstream)) return false;
    if (decision.action === 'give-up' || !retryBudget.tryAcquire()) {
      metrics.recordRetryRefused();
      return false;
    }
    return true;
  };

  /**
   * One attempt on `upstream`, acquired by the caller: dispatches, waits for the upstream to be
   * done, and accounts for how it went. Exactly one release, whatever the ending.
   */
  const attemptOn = async (x: Exchange, upstream: Upstream, decision: string | undefined): Promise<AttemptResult> => {
    // Exactly one release per acquire: as soon as the upstream is done (the attempt calls it
    // before it forwards the last bytes, so a client's next request, which may reach another
    // thread, never sees this one still counted), or in `finally` for any other ending.
    let released = false;
    const sent = performance.now();
    const release = (): void => {
      if (released) return;
      released = true;
      routing.release(upstream, sent);
    };
    // Why this attempt was cut short by us, if it was: moved off an unresponsive upstream, or out of time.
    let cutShort: 'ejected' | 'timeout' | undefined;
    let rescue: (() => void) | undefined;
    let tryTimer: NodeJS.Timeout | undefined;
    try {
      const extras: ResponseExtras = {
        upstream: config.exposeUpstream ? upstream.id : undefined,
        requestId: x.requestId,
        decision,
        retryOnStatus: x.replaySafe && retryStatuses.size > 0 ? (status) => retryOnStatus(x, status, upstream) : undefined,
      };
      const body = x.hasBody ? lazyBody(x.req) : null;
      let settle: (err?: Error) => void = () => undefined;
      const attemptDone = new Promise<void>((resolve, reject) => {
        settle = (err) => {
          if (err === undefined) resolve();
          else reject(err);
        };
      });
      const running = new UpstreamAttempt(x.res, extras, release, settle);
      x.current = running;
      const cut = (why: 'ejected' | 'timeout', err: Error): void => {
        if (running.answered || cutShort !== undefined) return;
        cutShort = why;
        running.abort(err);
      };
      if (x.replaySafe && config.retries > 0) {
        rescue = () => {
          cut('ejected', EJECTED_ERROR);
        };
        let set = rescuable.get(upstream);
        if (set === undefined) rescuable.set(upstream, (set = new Set()));
        set.add(rescue);
      }
      if (config.tryTimeoutMs > 0) {
        tryTimer = setTimeout(() => {
          cut('timeout', TRY_TIMEOUT_ERROR);
        }, config.tryTimeoutMs);
      }
      upstream.pool.dispatch({ path: x.req.url ?? '/', method: x.method, headers: x.headers, body }, running);
      await attemptDone;
      if (x.res.statusCode >= 500) {
        upstream.countError();
        if (config.passive5xx) outliers.recordFailure(upstream, 'status');
      } else {
        outliers.recordSuccess(upstream);
      }
      return { kind: 'answered' };
    } catch (err) {
      if (clientGone(x)) return { kind: 'client-gone' }; // undici already cancelled the upstream request
      upstream.countError();
      if (err instanceof RetryableStatus) {
        metrics.recordFailure(upstream.id, 'status');
        if (config.passive5xx) outliers.recordFailure(upstream, 'status');
        return { kind: 'status', status: err.status, error: new LbError('LB_UPSTREAM_STATUS', `upstream ${upstream.id} answered ${err.status}`, { status: err.status }) };
      }
      const reason = timedOut(x) ? 'timeout' : (cutShort ?? failureReasonOf(err));
      metrics.recordFailure(upstream.id, reason);
      // An ejected upstream is out already; a failure would only count against its return.
      if (reason !== 'ejected') outliers.recordFailure(upstream, reason);
      const error = timedOut(x)
        ? new LbError('LB_UPSTREAM_TIMEOUT', `upstream ${upstream.id} did not finish within ${config.requestTimeoutMs} ms`)
        : toLbError(reason, upstream.id, err);
      return { kind: 'failed', reason, error };
    } finally {
      if (tryTimer !== undefined) clearTimeout(tryTimer);
      if (rescue !== undefined) {
        const set = rescuable.get(upstream);
        set?.delete(rescue);
        if (set?.size === 0) rescuable.delete(upstream);
      }
      x.current = undefined;
      release();
    }
  };

  /** Whether the request goes on to another upstream after a failed attempt (and its bookkeeping). */
  const retryAfter = (x: Exchange, upstream: Upstream, result: Extract<AttemptResult, { kind: 'status' | 'failed' }>): boolean => {
    if (result.kind === 'status') {
      // The decision (another upstream exists, attempts and budget left) was made in retryOnStatus.
      (x.tried ??= new Set()).add(upstream);
      metrics.recordRetry();
      logger.debug({ upstream: upstream.id, status: result.status, requestId: x.requestId }, 'retrying on another upstream');
      return true;
    }
    const decision = decide(x, result.reason);
    switch (decision.action) {
      case 'failover':
        // Never reached the upstream: costs no attempt (and no budget).
        (x.tried ??= new Set()).add(upstream);
        x.attempt--;
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
        (x.tried ??= new Set()).add(upstream);
        metrics.recordRetry();
        logger.debug({ upstream: upstream.id, reason: result.reason, requestId: x.requestId }, 'retrying on another upstream');
        return true;
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    const requestId = routing.requestIdOf(req);
    const method = req.method ?? 'GET';
    const hasBody = hasRequestBody(req.headers);
    const x: Exchange = {
      req,
      res,
      requestId,
      method,
      headers: routing.headersFor(req, requestId),
      hasBody,
      replaySafe: isReplaySafe(method, hasBody),
      cancel: new Cancellation(),
      current: undefined,
      tried: undefined,
      attempt: 0,
    };
    const onClose = (): void => {
      if (res.writableFinished) return;
      x.cancel.cancel('client-gone');
      x.current?.abort(CLIENT_GONE_ERROR);
    };
    res.once('close', onClose);
    const deadline =
      config.requestTimeoutMs > 0
        ? setTimeout(() => {
            x.cancel.cancel('deadline');
            x.current?.abort(DEADLINE_ERROR);
          }, config.requestTimeoutMs)
        : undefined;
    retryBudget.recordRequest();

    let panicCounted = false;
    let lastUpstream: string | undefined;
    let lastError: LbError | undefined;
    try {
      while (x.attempt <= config.retries) {
        const candidates = routing.candidates(x.tried);
        const pick = routing.choose(candidates);
        if (pick === undefined) {
          // Every available upstream is at its cap: wait in line. None available at all: fail now.
          if (registry.available().length === 0 || x.tried !== undefined || config.queueLength === 0) break;
          try {
            await queue.wait(x.cancel);
          } catch (err) {
            if (clientGone(x)) return;
            lastError = err instanceof LbError ? err : new LbError('LB_INTERNAL', 'internal error in the balancer', { cause: err });
            break;
          }
          continue;
        }
        const upstream = pick.chosen;
        if (!panicCounted && registry.panicking()) {
          panicCounted = true;
          metrics.recordPanicRequest();
        }
        // The counts as the picker saw them, before this request adds to one.
        const explanation = config.explain ? explainDecision(pick, candidates) : undefined;
        // Another thread may have taken its last place since the pick: pick again (it is full now).
        if (!routing.acquire(pick)) continue;
        x.attempt++;
        lastUpstream = upstream.id;
        const result = await attemptOn(x, upstream, explanation);
        if (result.kind === 'answered' || result.kind === 'client-gone') return;
        lastError = result.error;
        if (!retryAfter(x, upstream, result)) break;
      }
      sendError(res, lastError ?? new LbError('LB_NO_UPSTREAM', 'no upstream is available'), requestId, lastUpstream);
    } finally {
      if (deadline !== undefined) clearTimeout(deadline);
      res.off('close', onClose);
      const status = clientGone(x) ? CLIENT_CLOSED : res.statusCode;
      const seconds = (performance.now() - started) / 1000;
      metrics.recordRequest(lastUpstream ?? NO_UPSTREAM, status, seconds);
      registry.counters.countRequest(status);
      if (logger.isLevelEnabled('debug')) {
        logger.debug({ method, url: req.url, status, upstream: lastUpstream, ms: Math.round(seconds * 1000), requestId }, 'request');
      }
    }
  };

  return {
    handle: (req, res) => {
      handle(req, res).catch((err: unknown) => {
        // Our own bug (every upstream failure is mapped above): say so, not blame an upstream, and
        // never let it take the process down.
        logger.error({ err, method: req.method, url: req.url }, 'proxy handler failed');
        if (!res.headersSent) sendError(res, new LbError('LB_INTERNAL', 'internal error in the balancer'), '', undefined);
        else res.destroy();
      });
    },
    rescueFromUnresponsive() {
      // In panic mode down upstreams are all there is: moving requests between them helps nobody.
      if (rescuable.size === 0 || registry.panicking()) return;
      for (const [upstream, set] of rescuable) {
        // Moving a request off an upstream that is serving it is what lost requests when replicas
        // left one after another (issue 22): each move restarts it, and the third ran out of retries.
        if (upstream.state !== 'down' || !upstream.unresponsive) continue;
        for (const rescue of [...set]) rescue();
      }
    },
  };
}
