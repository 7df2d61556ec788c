import type RouterClass from '@koa/router';
import Koa from 'koa';
import { createRequire } from 'node:module';
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
export type AdminRoutes = (router: RouterClass) => void;

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

// @koa/router's ES build imports node:http, which costs what node-http.ts says; its CommonJS build requires it.
const Router = createRequire(import.meta.url)('@koa/router') as typeof RouterClass;

/** A body Koa would send as JSON: a plain object or an array. */
const isJsonBody = (value: unknown): value is object =>
  typeof value === 'object' && value !== null && (Array.isArray(value) || [Object.prototype, null].includes(Object.getPrototypeOf(value) as object | null));

/**
 * JSON bodies are handed to Koa already serialised, as it would send them (JSON.stringify,
 * application/json unless a type was set). Given an object, Koa's body setter first asks whether
 * it is a web ReadableStream or a fetch Response, and reading those globals loads Node's bundled
 * undici and web streams (see node-http.ts) for nothing. Only this app's responses change.
 */
function serialiseJsonBodies(app: Koa): void {
  // Koa's own accessor, one prototype up, called with this response as the receiver.
  const koaResponse = Object.getPrototypeOf(app.response) as object;
  Object.defineProperty(app.response, 'body', {
    configurable: true,
    get(this: Koa.BaseResponse): unknown {
      return Reflect.get(koaResponse, 'body', this);
    },
    set(this: Koa.BaseResponse, value: unknown) {
      if (isJsonBody(value)) {
        if (this.type === '') this.type = 'json';
        Reflect.set(koaResponse, 'body', JSON.stringify(value), this);
      } else {
        Reflect.set(koaResponse, 'body', value, this);
      }
    },
  });
}

/** Client-gone errors that Koa would otherwise print for every closed SSE stream. */
const QUIET = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'EPIPE']);

/** The admin API (Koa): health, readiness, Prometheus metrics, JSON snapshot, the SSE stream, given `writes` the write API, and any `routes`. */
export function createAdminApp(deps: AdminDeps): Koa {
  const app = new Koa();
  serialiseJsonBodies(app);
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
