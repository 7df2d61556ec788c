import type { ServerResponse } from 'node:http';
import Router from '@koa/router';
import { IMAGE_COUNT } from './config.js';
import type { Delays } from './delays.js';
import { BackendError } from './errors.js';
import type { Metrics } from './metrics.js';
import { stallCpu } from './scenario.js';
import type { ScenarioState } from './scenario.js';
import type { Stats } from './stats.js';

/** What the routes need from the app that owns them. */
export interface RouteDeps {
  readonly id: string;
  /** PNG bytes; index 0 is image 1. */
  readonly images: readonly Buffer[];
  /** The scaled delay in milliseconds for an image id (1-based). */
  readonly delayMs: (imageId: number) => number;
  readonly delays: Delays;
  readonly stats: Stats;
  readonly metrics: Metrics;
  /** True once shutdown began: /healthz then fails so balancers stop sending. */
  readonly stopping: () => boolean;
  /** Faults switched on for this replica (the lab's scenarios). */
  readonly scenario: ScenarioState;
  /** Uniform in [0, 1): decides which requests the error rate hits. */
  readonly random: () => number;
}

/** Longest a hanging request is held (setTimeout's limit); the client or a stop ends it sooner. */
const HANG_MS = 2_147_483_647;

/** The body of `GET /info`. */
export interface InfoBody {
  readonly id: string;
  readonly inFlight: number;
  readonly served: number;
  readonly uptimeSeconds: number;
}

/**
 * Reads the `:id` of `/images/:id`: digits only, so `abc`, `1.5`, `-1` and `` are malformed
 * (400) while `7` is a well-formed id that does not exist (404).
 */
export function parseImageId(raw: string, count: number = IMAGE_COUNT): number {
  if (!/^\d+$/.test(raw)) {
    throw new BackendError('BAD_IMAGE_ID', 400, `image id must be an integer from 1 to ${count}, got "${raw.slice(0, 40)}"`);
  }
  const id = Number(raw);
  if (id < 1 || id > count) throw new BackendError('IMAGE_NOT_FOUND', 404, `no image ${id}: ids are 1 to ${count}`);
  return id;
}

/**
 * Reads `?delayScale=`: a number from 0 to 1 that shortens this request's delay (the algorithm
 * lab's millisecond images on a cluster whose images take seconds); absent = 1. Never above 1, so
 * no client can hold a backend longer than its configured delay.
 */
export function parseDelayScale(raw: unknown): number {
  if (raw === undefined) return 1;
  // Repeated (an array) or not a plain decimal: refused, like a malformed image id.
  const text = typeof raw === 'string' ? raw : JSON.stringify(raw);
  const scale = typeof raw === 'string' && /^(\d+(\.\d*)?|\.\d+)$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(scale >= 0 && scale <= 1)) throw new BackendError('BAD_REQUEST', 400, `delayScale must be a number from 0 to 1, got "${text.slice(0, 40)}"`);
  return scale;
}

// Koa writes the body after the handlers return, so a request stays in flight until its
// response is written (or its connection is gone): graceful shutdown waits for exactly that.
function releaseWhenDone(res: ServerResponse, release: () => void): void {
  if (res.writableFinished || res.destroyed) release();
  else res.once('close', release);
}

/** Creates the router of `/images/:id`, `/healthz`, `/info` and `/metrics`. */
export function createRouter(deps: RouteDeps): Router {
  const { images, delays, stats, metrics } = deps;
  const router = new Router();

  // GET also answers HEAD (the router adds it): same delay, headers only.
  router.get('/images/:id', async (ctx) => {
    const release = stats.begin();
    try {
      const id = parseImageId(ctx.params.id ?? '', images.length);
      const scale = parseDelayScale(ctx.query.delayScale);
      const fault = deps.scenario.current;
      if (fault.cpuStallMs > 0) stallCpu(fault.cpuStallMs);
      const outcome = await delays.wait(fault.hang ? HANG_MS : deps.delayMs(id) * scale + fault.extraLatencyMs, ctx.res);
      if (outcome !== 'elapsed') {
        // Nobody to answer: the client left, or the app is stopping and drops what is left.
        if (outcome === 'stopped') ctx.req.socket.destroy();
        ctx.respond = false;
        return;
      }
      if (fault.errorRate > 0 && deps.random() < fault.errorRate) {
        throw new BackendError('INJECTED_ERROR', 500, `scenario: error rate ${fault.errorRate}`);
      }
      const png = images[id - 1] ?? Buffer.alloc(0);
      if (fault.resetMidBody) {
        // Headers promise the whole image; half of it arrives, then the connection is cut.
        ctx.respond = false;
        ctx.res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length, 'x-backend-id': deps.id });
        ctx.res.write(png.subarray(0, png.length >> 1), () => ctx.req.socket.destroy());
        return;
      }
      ctx.type = 'image/png';
      ctx.set('Cache-Control', 'no-store');
      ctx.body = png;
      if (ctx.method === 'GET') stats.countServed();
    } finally {
      releaseWhenDone(ctx.res, release);
    }
  });

  router.get('/healthz', (ctx) => {
    // While shutting down, fail the probe but keep serving: balancers stop sending first.
    if (deps.stopping()) {
      ctx.status = 503;
      ctx.body = { status: 'stopping' };
      return;
    }
    ctx.body = { status: 'ok' };
  });

  router.get('/info', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      id: deps.id,
      inFlight: stats.inFlight,
      served: stats.served,
      uptimeSeconds: Math.round(stats.uptimeSeconds() * 1000) / 1000,
    } satisfies InfoBody;
  });

  router.get('/metrics', async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });

  return router;
}
