/**
 * Fault scenarios a lab or an operator can switch on in one replica at runtime (the algorithm
 * lab's "one replica 50 ms slower"): extra latency, an error rate, hanging, a reset in the middle
 * of the body, a CPU stall that blocks the event loop, and exiting (Compose restarts it).
 *
 * The routes are token-protected (BACKEND_ADMIN_TOKEN); without a token every write is refused,
 * so a replica reachable by mistake cannot be told to fail.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { BackendError } from './errors.js';

/** What one replica does to its image responses now. All zero / false = healthy. */
export interface Scenario {
  /** Added to every image's delay. */
  readonly extraLatencyMs: number;
  /** Share of image requests answered 500 INJECTED_ERROR, 0 to 1. */
  readonly errorRate: number;
  /** Image requests never answer (until the client gives up or the backend stops). */
  readonly hang: boolean;
  /** Image responses send their headers and half the body, then the connection is cut. */
  readonly resetMidBody: boolean;
  /** Each image request blocks the event loop this long (a GC pause, a hot loop). */
  readonly cpuStallMs: number;
}

export const HEALTHY: Scenario = Object.freeze({ extraLatencyMs: 0, errorRate: 0, hang: false, resetMidBody: false, cpuStallMs: 0 });

/** The replica's current scenario; one per app. */
export interface ScenarioState {
  readonly current: Scenario;
  set(scenario: Scenario): void;
  clear(): void;
}

export function createScenarioState(): ScenarioState {
  let current = HEALTHY;
  return {
    get current() {
      return current;
    },
    set(scenario) {
      current = Object.freeze({ ...scenario });
    },
    clear() {
      current = HEALTHY;
    },
  };
}

/** A PUT body: any subset of the fields; the ones left out are healthy. */
const ScenarioBody = z.strictObject({
  extraLatencyMs: z.number().int().min(0).max(60_000).optional(),
  errorRate: z.number().min(0).max(1).optional(),
  hang: z.boolean().optional(),
  resetMidBody: z.boolean().optional(),
  cpuStallMs: z.number().int().min(0).max(5000).optional(),
});

/** Largest scenario body accepted; the real ones are a few dozen bytes. */
const MAX_BODY_BYTES = 4096;

/** Blocks the event loop for `ms` on purpose: what a CPU stall looks like from outside. */
export function stallCpu(ms: number, now: () => number = () => performance.now()): void {
  const end = now() + ms;
  while (now() < end) {
    // Busy on purpose: nothing else on this replica runs meanwhile.
  }
}

const sha = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

async function jsonBody(ctx: Context): Promise<unknown> {
  let size = 0;
  const parts: Buffer[] = [];
  // Read to the end even when too large (keeping nothing past the limit): leaving the loop early
  // would destroy the request, and with it the socket the answer must go out on.
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) parts.push(chunk);
  }
  if (size > MAX_BODY_BYTES) throw new BackendError('BODY_TOO_LARGE', 413, `body larger than ${MAX_BODY_BYTES} bytes`);
  const text = Buffer.concat(parts).toString('utf8').trim();
  if (text === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new BackendError('BAD_REQUEST', 400, 'body is not valid JSON');
  }
}

export interface ScenarioRouteDeps {
  readonly state: ScenarioState;
  /** BACKEND_ADMIN_TOKEN; empty = every write refused with 403. */
  readonly token: string;
  /** Ends the process (after the answer is sent); the supervisor restarts it. */
  readonly exit: () => void;
  /** Told of every change, for the log. */
  readonly onChange: (action: string, scenario: Scenario) => void;
}

/** `GET|PUT|DELETE /admin/scenario` and `POST /admin/exit`. */
export function createScenarioRouter(deps: ScenarioRouteDeps): Router {
  const router = new Router();
  const authorize = (ctx: Context): void => {
    if (deps.token === '') throw new BackendError('ADMIN_DISABLED', 403, 'scenario writes are disabled: set BACKEND_ADMIN_TOKEN to enable them');
    const presented = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(ctx.get('authorization'))?.[1];
    if (presented === undefined || !timingSafeEqual(sha(presented), sha(deps.token))) {
      ctx.set('WWW-Authenticate', 'Bearer realm="backend admin"');
      throw new BackendError('UNAUTHORIZED', 401, 'a valid "Authorization: Bearer <token>" header is required');
    }
  };
  const answer = (ctx: Context): void => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = deps.state.current;
  };

  router.get('/admin/scenario', answer);
  router.put('/admin/scenario', async (ctx) => {
    authorize(ctx);
    const parsed = ScenarioBody.safeParse(await jsonBody(ctx));
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : 'body'}: ${i.message}`);
      throw new BackendError('BAD_REQUEST', 400, problems.join('; '));
    }
    deps.state.set({ ...HEALTHY, ...parsed.data });
    deps.onChange('set', deps.state.current);
    answer(ctx);
  });
  router.delete('/admin/scenario', (ctx) => {
    authorize(ctx);
    deps.state.clear();
    deps.onChange('clear', deps.state.current);
    answer(ctx);
  });
  router.post('/admin/exit', (ctx) => {
    authorize(ctx);
    deps.onChange('exit', deps.state.current);
    ctx.status = 202;
    ctx.body = { status: 'exiting' };
    // After the answer has left: the caller learns it was accepted, then the replica is gone.
    ctx.res.once('finish', () => {
      setImmediate(deps.exit);
    });
  });
  return router;
}
