import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { DecisionLog } from './decision-log.js';
import { LbError, failureReasonOf, toLbError } from './errors.js';
import { clientResponseHeaders, hasRequestBody, upstreamRequestHeaders } from './forward-headers.js';
import type { HealthChecker } from './health/checker.js';
import type { Metrics } from './metrics.js';
import { NO_UPSTREAM } from './metrics.js';
import { lazyBody } from './request-body.js';
import { pickLeastConnections } from './picker/least-connections.js';
import type { Pick } from './picker/least-connections.js';
import type { Registry } from './upstreams/registry.js';
import type { Upstream } from './upstreams/upstream.js';

/** Methods whose effect is the same however often they are sent (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Status logged for a request whose client went away before its response ended (nginx's 499). */
const CLIENT_CLOSED = 499;

export interface ProxyDeps {
  readonly config: Config;
  readonly registry: Registry;
  readonly health: HealthChecker;
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
 * The data path: pick → acquire → stream through the upstream's undici pool → release.
 * Bodies stream both ways with backpressure (undici writes into `res` and waits for drain).
 */
export function createProxyHandler(deps: ProxyDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { config, registry, health, metrics, decisions, logger, random } = deps;
  let turn = 0;

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
    const abort = new AbortController();
    const onClose = (): void => {
      if (!res.writableFinished) abort.abort();
    };
    res.once('close', onClose);

    let tried: Set<Upstream> | undefined;
    let lastUpstream: string | undefined;
    let lastError: LbError | undefined;
    try {
      for (let attempt = 0; attempt <= config.retries; attempt++) {
        const all = registry.available();
        const candidates = tried === undefined ? all : all.filter((u) => !tried?.has(u));
        const pick = pickLeastConnections(candidates, { tieBreak: config.tieBreak, random, turn: turn++ });
        if (pick === undefined) break;
        const upstream = pick.chosen;
        lastUpstream = upstream.id;
        decisions.record(upstream.id, pick.reason);
        const explanation = config.explain ? explainDecision(pick, candidates) : undefined;

        registry.acquire(upstream);
        try {
          await upstream.pool.stream(
            { path: req.url ?? '/', method, headers, body: replayable ? null : lazyBody(req), signal: abort.signal },
            ({ statusCode, headers: upstreamHeaders }) => {
              const out = clientResponseHeaders(upstreamHeaders);
              out['x-upstream'] = upstream.id;
              out['x-request-id'] = requestId;
              if (explanation !== undefined) out['x-lb-decision'] = explanation;
              res.writeHead(statusCode, out);
              return res;
            },
          );
          if (res.statusCode >= 500) upstream.errors++;
          return;
        } catch (err) {
          if (abort.signal.aborted) return; // the client left; undici cancelled the upstream request
          const reason = failureReasonOf(err);
          upstream.errors++;
          metrics.recordFailure(upstream.id, reason);
          if (reason === 'connect') health.reportConnectFailure(upstream);
          lastError = toLbError(reason, upstream.id, err);
          // Retry only what provably never reached the upstream, or a body-less idempotent request.
          const neverSent = reason === 'connect' && !req.readableDidRead;
          const replaySafe = replayable && IDEMPOTENT.has(method) && reason !== 'timeout';
          if (res.headersSent || !(neverSent || replaySafe) || attempt === config.retries) break;
          (tried ??= new Set()).add(upstream);
          metrics.recordRetry();
          logger.debug({ upstream: upstream.id, reason, requestId }, 'retrying on another upstream');
        } finally {
          registry.release(upstream);
        }
      }
      sendError(res, lastError ?? new LbError('LB_NO_UPSTREAM', 'no upstream is available'), requestId, lastUpstream);
    } finally {
      res.off('close', onClose);
      const status = abort.signal.aborted ? CLIENT_CLOSED : res.statusCode;
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
