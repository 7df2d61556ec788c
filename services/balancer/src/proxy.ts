import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { DecisionLog } from './decision-log.js';
import { Cancellation } from './cancellation.js';
import { LbError, failureReasonOf, toLbError } from './errors.js';
import { hasRequestBody, upstreamRequestHeaders } from './forward-headers.js';
import type { OutcomeSink } from './health/outlier-detector.js';
import type { Metrics } from './metrics.js';
import { NO_UPSTREAM } from './metrics.js';
import { pickLeastConnections } from './picker/least-connections.js';
import type { Pick } from './picker/least-connections.js';
import { lazyBody } from './request-body.js';
import type { RetryBudget } from './retry-budget.js';
import type { UpstreamTable } from './upstreams/registry.js';
import type { Upstream } from './upstreams/upstream.js';
import { UpstreamAttempt } from './upstream-attempt.js';
import type { ResponseExtras } from './upstream-attempt.js';
import type { WaitQueue } from './wait-queue.js';

/** Methods whose effect is the same however often they are sent (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Status logged for a request whose client went away before its response ended (nginx's 499). */
const CLIENT_CLOSED = 499;

// Abort reasons handed to undici; built once (an Error per request would capture a stack each time).
const CLIENT_GONE_ERROR = Object.assign(new Error('the client went away'), { code: 'UND_ERR_ABORTED' });
const DEADLINE_ERROR = Object.assign(new Error('the request deadline passed'), { code: 'UND_ERR_ABORTED' });

export interface ProxyDeps {
  readonly config: Config;
  readonly registry: UpstreamTable;
  /** Told how every attempt went (passive health); possibly on another thread. */
  readonly outliers: OutcomeSink;
  readonly retryBudget: RetryBudget;
  readonly queue: WaitQueue;
  readonly metrics: Metrics;
  readonly decisions: DecisionLog;
  readonly logger: Logger;
  readonly random: () => number;
}

/** `X-Lb-Decision`: the candidates as seen at decision time and why the chosen one won. */
export function explainDecision(pick: Pick<Upstream>, candidates: readonly Upstream[]): string {
  const list = candidates.map((c) => `${c.id}/${c.inFlight}/${c.weight}`).join(',');
  return `chosen=${pick.chosen.id}; reason=${pick.reason}; candidates=${list}`;
}

/**
 * The data path: pick → acquire → dispatch on the upstream's undici pool → release.
 * Bodies stream both ways with backpressure (see UpstreamAttempt and lazyBody).
 */
export function createProxyHandler(deps: ProxyDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { config, registry, outliers, retryBudget, queue, metrics, decisions, logger, random } = deps;

  const sendError = (res: ServerResponse, err: LbError, requestId: string, upstream: string | undefined): void => {
    if (res.headersSent) {
      // The status line is gone; the only honest signal left is a cut connection.
      res.destroy(err);
      return;
    }
    const body = JSON.stringify({ error: err.code, message: err.message });
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-request-id': requestId,
    };
    if (upstream !== undefined) headers['x-upstream'] = upstream;
    res.writeHead(err.status, headers);
    res.end(body);
  };

  /** Upstreams that may take one more request now: available and under their cap. */
  const candidatesFor = (tried: Set<Upstream> | undefined): readonly Upstream[] => {
    const all = registry.available();
    let full = false;
    for (const u of all) {
      if (u.maxInFlight > 0 && u.inFlight >= u.maxInFlight) {
        full = true;
        break;
      }
    }
    // The common case (no caps reached, first attempt) allocates nothing.
    if (!full && tried === undefined) return all;
    return all.filter((u) => !(tried?.has(u) ?? false) && (u.maxInFlight === 0 || u.inFlight < u.maxInFlight));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    const incomingId = req.headers['x-request-id'];
    const requestId = typeof incomingId === 'string' && incomingId !== '' ? incomingId : randomUUID();
    const method = req.method ?? 'GET';
    const replayable = !hasRequestBody(req.headers);
    const headers = upstreamRequestHeaders(req.rawHeaders, {
      remoteAddress: req.socket.remoteAddress,
      proto: 'http',
      requestId,
    });
    // One signal records who pulled the plug (and wakes a queued wait); `current` is the attempt
    // to cancel, if one is running.
    const cancel = new Cancellation();
    let current: UpstreamAttempt | undefined;
    const clientGone = (): boolean => cancel.reason === 'client-gone';
    const timedOut = (): boolean => cancel.reason === 'deadline';
    const onClose = (): void => {
      if (res.writableFinished) return;
      cancel.cancel('client-gone');
      current?.abort(CLIENT_GONE_ERROR);
    };
    res.once('close', onClose);
    const deadline =
      config.requestTimeoutMs > 0
        ? setTimeout(() => {
            cancel.cancel('deadline');
            current?.abort(DEADLINE_ERROR);
          }, config.requestTimeoutMs)
        : undefined;
    retryBudget.recordRequest();

    let tried: Set<Upstream> | undefined;
    let lastUpstream: string | undefined;
    let lastError: LbError | undefined;
    try {
      for (let attempt = 0; attempt <= config.retries; ) {
        const candidates = candidatesFor(tried);
        const pick = pickLeastConnections(candidates, { tieBreak: config.tieBreak, random, turn: registry.counters.nextTurn() });
        if (pick === undefined) {
          // Every available upstream is at its cap: wait in line. None available at all: fail now.
          if (registry.available().length === 0 || tried !== undefined || config.queueLength === 0) break;
          try {
            await queue.wait(cancel);
          } catch (err) {
            if (clientGone()) return;
            lastError = err instanceof LbError ? err : new LbError('LB_QUEUE_TIMEOUT', String(err));
            break;
          }
          continue;
        }
        const upstream = pick.chosen;
        // The counts as the picker saw them, before this request adds to one.
        const explanation = config.explain ? explainDecision(pick, candidates) : undefined;
        // Another thread may have taken its last place since the pick: pick again (it is full now).
        if (!registry.acquire(upstream)) continue;
        attempt++;
        lastUpstream = upstream.id;
        decisions.record(upstream.id, pick.reason);
        // Exactly one release per acquire: as soon as the upstream is done (the attempt calls it
        // before it forwards the last bytes, so a client's next request, which may reach another
        // thread, never sees this one still counted), or in `finally` for any other ending.
        let released = false;
        const release = (): void => {
          if (released) return;
          released = true;
          registry.release(upstream);
          if (queue.length > 0) queue.wakeOne();
        };
        try {
          const extras: ResponseExtras = { upstream: upstream.id, requestId, decision: explanation };
          const body = replayable ? null : lazyBody(req);
          await new Promise<void>((resolve, reject) => {
            current = new UpstreamAttempt(res, extras, release, (err) => {
              if (err === undefined) resolve();
              else reject(err);
            });
            upstream.pool.dispatch({ path: req.url ?? '/', method, headers, body }, current);
          });
          if (res.statusCode >= 500) {
            upstream.countError();
            if (config.passive5xx) outliers.recordFailure(upstream, 'status');
          } else {
            outliers.recordSuccess(upstream);
          }
          return;
        } catch (err) {
          if (clientGone()) return; // undici already cancelled the upstream request
          const reason = timedOut() ? 'timeout' : failureReasonOf(err);
          upstream.countError();
          metrics.recordFailure(upstream.id, reason);
          outliers.recordFailure(upstream, reason);
          lastError = timedOut()
            ? new LbError('LB_UPSTREAM_TIMEOUT', `upstream ${upstream.id} did not finish within ${config.requestTimeoutMs} ms`)
            : toLbError(reason, upstream.id, err);
          if (res.headersSent) break;
          // A connection that failed never reached the upstream: try the next one, whatever the
          // method, without spending a retry or the budget (it adds no load anywhere). This is
          // what keeps a scale-down clean while stopping replicas refuse connections.
          if (reason === 'connect' && !req.readableDidRead) {
            (tried ??= new Set()).add(upstream);
            attempt--;
            metrics.recordRetry();
            continue;
          }
          // Otherwise only a body-less idempotent request is replayed (after a reset or a header
          // timeout, like HAProxy's retry-on), never after the whole-request deadline, within
          // `retries` and the retry budget.
          const replaySafe = replayable && IDEMPOTENT.has(method) && !timedOut();
          if (!replaySafe || attempt > config.retries) break;
          if (!retryBudget.tryAcquire()) {
            metrics.recordRetryRefused();
            break;
          }
          (tried ??= new Set()).add(upstream);
          metrics.recordRetry();
          logger.debug({ upstream: upstream.id, reason, requestId }, 'retrying on another upstream');
        } finally {
          current = undefined;
          release();
        }
      }
      sendError(res, lastError ?? new LbError('LB_NO_UPSTREAM', 'no upstream is available'), requestId, lastUpstream);
    } finally {
      if (deadline !== undefined) clearTimeout(deadline);
      res.off('close', onClose);
      const status = clientGone() ? CLIENT_CLOSED : res.statusCode;
      const seconds = (performance.now() - started) / 1000;
      metrics.recordRequest(lastUpstream ?? NO_UPSTREAM, status, seconds);
      if (logger.isLevelEnabled('debug')) {
        logger.debug({ method, url: req.url, status, upstream: lastUpstream, ms: Math.round(seconds * 1000), requestId }, 'request');
      }
    }
  };

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      // Unreachable by design (every failure is mapped above); never let it take the process down.
      logger.error({ err }, 'proxy handler failed');
      if (!res.headersSent) sendError(res, new LbError('LB_UPSTREAM_RESET', 'internal proxy error'), '', undefined);
      else res.destroy();
    });
  };
}
