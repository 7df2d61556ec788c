import Router from '@koa/router';
import Koa from 'koa';
import type { Logger } from 'pino';
import { statusOf } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { Snapshot } from '../snapshot.js';
import type { EventHub } from './event-hub.js';
import { registerWriteRoutes } from './write-api.js';
import type { WriteApiDeps } from './write-api.js';

/**
 * Routes that an optional part of the balancer (the lab) adds to the admin port. The composition
 * root hands them over, so this app needs to know nothing of that part.
 */
export type AdminRoutes = (router: Router) => void;

export interface AdminDeps {
  readonly metrics: Metrics;
  /** The Prometheus text, when it is more than `metrics` (data-path threads' metrics summed in). */
  readonly scrape?: () => Promise<string>;
  readonly snapshot: () => Snapshot;
  readonly events: EventHub;
  /** True while the balancer accepts traffic (false before start and while shutting down). */
  readonly ready: () => boolean;
  readonly logger: Logger;
  /** The write API (drain, weight, max in-flight); without it the admin port is read-only. */
  readonly writes?: Pick<WriteApiDeps, 'registry' | 'token' | 'policy' | 'relay'>;
  /** More routes, registered after the write API's, in order. */
  readonly routes?: readonly AdminRoutes[];
}

/** Client-gone errors that Koa would otherwise print for every closed SSE stream. */
const QUIET = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'EPIPE']);

/** The admin API (Koa): health, readiness, Prometheus metrics, JSON snapshot, the SSE stream, given `writes` the write API, and any `routes`. */
export function createAdminApp(deps: AdminDeps): Koa {
  const app = new Koa();
  const router = new Router();

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', (ctx) => {
    const ready = deps.ready();
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'not ready' };
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await (deps.scrape?.() ?? deps.metrics.registry.metrics());
  });
  router.get('/api/upstreams', (ctx) => {
    ctx.set('cache-control', 'no-store');
    ctx.body = deps.snapshot();
  });
  router.get('/api/events', (ctx) => {
    ctx.respond = false; // raw stream: the hub writes the response itself
    deps.events.attach(ctx.res);
  });
  if (deps.writes !== undefined) registerWriteRoutes(router, { ...deps.writes, snapshot: deps.snapshot, logger: deps.logger });
  for (const register of deps.routes ?? []) register(router);

  app.on('error', (err: unknown) => {
    const code = (err as { code?: string }).code;
    if (code !== undefined && QUIET.has(code)) return;
    deps.logger.error({ err }, 'admin request failed');
  });
  app.use(async (ctx, next) => {
    await next();
    if (ctx.status === 404 && ctx.body === undefined) {
      ctx.status = statusOf.LB_NOT_FOUND;
      ctx.body = { error: 'LB_NOT_FOUND', message: `no admin route ${ctx.method} ${ctx.path}` };
    }
  });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
