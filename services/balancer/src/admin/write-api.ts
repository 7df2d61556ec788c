/**
 * The admin write API: drain, undrain, weight and max in-flight of one upstream at runtime, and
 * the selection policy of the whole balancer.
 *
 * Every write needs `Authorization: Bearer <LB_ADMIN_TOKEN>`; without a configured token every
 * write is refused, so an admin port exposed by mistake cannot be used to take upstreams out. The
 * refusal names the knob that would enable writes, as this balancer was configured.
 * Changes go through the registry (the one owner of upstream state) and are logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Router, RouterContext } from '@koa/router';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AdminTokenSource } from '../config.js';
import { LbError } from '../errors.js';
import type { LbErrorCode } from '../errors.js';
import { POLICIES } from '../picker/policy.js';
import type { PolicySetting } from '../picker/policy.js';
import type { Snapshot, UpstreamView } from '../snapshot.js';
import type { Registry } from '../upstreams/registry.js';
import type { Upstream } from '../upstreams/upstream.js';

/** Largest request body accepted by a write route; the bodies are a few dozen bytes. */
export const MAX_BODY_BYTES = 4096;

/** Drain deadline when the body names none (shown as a countdown in the snapshot). */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

/** A refused write: the code (of errors.ts's one table) is the body's `error`, the status comes from it. */
export class WriteError extends LbError {
  constructor(code: LbErrorCode, message: string) {
    super(code, message);
    this.name = 'WriteError';
  }
}

/** The admin bearer token, and how it was given. */
export interface AdminToken {
  /** Empty = every write refused with 403. */
  readonly value: string;
  /** Unknown (a test's token) = the refusal names no knob. */
  readonly source?: AdminTokenSource;
}

/** What the write routes need from the balancer. */
export interface WriteApiDeps {
  readonly registry: Registry;
  readonly token: AdminToken;
  /** The selection policy, switched by `PUT /api/policy`. */
  readonly policy: PolicySetting;
  readonly snapshot: () => Snapshot;
  readonly logger: Logger;
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Compares a presented token with the configured one in constant time. Hashing both first gives
 * equal-length inputs to timingSafeEqual, so not even the token's length leaks through timing.
 */
export function tokenMatches(presented: string, expected: string): boolean {
  return expected !== '' && timingSafeEqual(digest(presented), digest(expected));
}

const BEARER_RE = /^Bearer[ \t]+(\S+)[ \t]*$/i;

const drainBody = z.strictObject({ timeoutMs: z.number().int().min(0).max(86_400_000).optional() });
const emptyBody = z.strictObject({});
const weightBody = z.strictObject({ weight: z.number().int().min(1).max(1000) });
const maxInFlightBody = z.strictObject({ maxInFlight: z.number().int().min(0).max(1_000_000) });
const policyBody = z.strictObject({ policy: z.enum(POLICIES) });

/** Reads at most MAX_BODY_BYTES without buffering more; excess is discarded, not read into memory. */
function readBody(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > MAX_BODY_BYTES) {
    req.resume(); // discard it; the answer says why
    return Promise.reject(new WriteError('LB_BODY_TOO_LARGE', `body larger than ${MAX_BODY_BYTES} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const detach = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        detach();
        req.resume(); // keeps flowing into nothing until the client stops
        reject(new WriteError('LB_BODY_TOO_LARGE', `body larger than ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      detach();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (err: Error): void => {
      detach();
      reject(err);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/** Parses the JSON body against `schema`; an empty body is `{}`. Problems become 400s that say what is wrong. */
export async function parseBody<T>(ctx: RouterContext, schema: z.ZodType<T>): Promise<T> {
  const text = await readBody(ctx.req);
  let value: unknown = {};
  if (text.trim() !== '') {
    try {
      value = JSON.parse(text);
    } catch {
      throw new WriteError('LB_BAD_REQUEST', 'body is not valid JSON');
    }
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : 'body'}: ${i.message}`);
    throw new WriteError('LB_BAD_REQUEST', problems.join('; '));
  }
  return result.data;
}

/** Why writes are refused without a token, and what would enable them where this balancer was configured. */
export function writesDisabledMessage(source: AdminTokenSource | undefined): string {
  const disabled = 'admin writes are disabled';
  switch (source?.kind) {
    case undefined:
      return `${disabled}: no admin token is configured`;
    case 'unset':
      return `${disabled}: no admin token is configured; give one with ${source.token} or ${source.file} (a file holding it) to enable them`;
    case 'token':
      return `${disabled}: ${source.knob} is empty; give it a token to enable them`;
    case 'file':
      // Compose mounts the file named by the host's LB_ADMIN_TOKEN_FILE as a Docker secret, by
      // default an empty one (secrets/no-admin-token): the usual way to land here.
      return (
        `${disabled}: the admin token file ${source.path} (${source.knob}) is empty; put a token in it to enable them. ` +
        'In Compose: write a token to ./secrets/admin-token and start with `LB_ADMIN_TOKEN_FILE=./secrets/admin-token docker compose up -d` ' +
        '(or `make up` with the same variable)'
      );
  }
}

/**
 * Wraps an admin write: refuses it without the bearer token (403 when none is configured), and
 * turns a WriteError thrown by `run` into its status and `{ error, message }` body. Other admin
 * write routes (the lab) use it too, so every write is authorised the same way.
 */
export function guardedWrite(token: AdminToken, run: (ctx: RouterContext) => Promise<void>): (ctx: RouterContext) => Promise<void> {
  const refusal = writesDisabledMessage(token.source);
  return async (ctx) => {
    try {
      if (token.value === '') throw new WriteError('LB_ADMIN_WRITES_DISABLED', refusal);
      const presented = BEARER_RE.exec(ctx.get('authorization'))?.[1];
      if (presented === undefined || !tokenMatches(presented, token.value)) {
        ctx.set('www-authenticate', 'Bearer realm="balancer admin"');
        throw new WriteError('LB_UNAUTHORIZED', 'a valid "Authorization: Bearer <token>" header is required');
      }
      ctx.set('cache-control', 'no-store');
      await run(ctx);
    } catch (err) {
      if (!(err instanceof WriteError)) throw err;
      ctx.status = err.status;
      ctx.body = { error: err.code, message: err.message };
    }
  };
}

/** Adds the write routes to the admin router. */
export function registerWriteRoutes(router: Router, deps: WriteApiDeps): void {
  const { registry, token, logger } = deps;

  const viewOf = (u: Upstream): UpstreamView | undefined => deps.snapshot().upstreams.find((v) => v.id === u.id);

  /** Authorises, finds the upstream, runs the change, answers with the upstream as the snapshot shows it. */
  const write = (change: (ctx: RouterContext, u: Upstream) => Promise<Record<string, unknown>>) =>
    guardedWrite(token, async (ctx) => {
      const id = String(ctx.params.id);
      const upstream = registry.get(id);
      if (upstream === undefined) throw new WriteError('LB_UNKNOWN_UPSTREAM', `no upstream ${id}`);
      const logged = await change(ctx, upstream);
      logger.info({ upstream: upstream.id, ...logged, remote: ctx.ip }, 'admin change');
      ctx.body = viewOf(upstream) ?? { id: upstream.id };
    });

  router.get('/api/policy', (ctx) => {
    ctx.set('cache-control', 'no-store');
    ctx.body = { policy: deps.policy.current, policies: POLICIES };
  });
  router.put(
    '/api/policy',
    guardedWrite(token, async (ctx) => {
      const { policy } = await parseBody(ctx, policyBody);
      const from = deps.policy.current;
      deps.policy.set(policy);
      logger.info({ action: 'policy', from, to: policy, remote: ctx.ip }, 'admin change');
      ctx.body = { policy, policies: POLICIES };
    }),
  );

  const notRemoved = (u: Upstream, action: string): void => {
    // A removed upstream (gone from discovery) is already draining for good; only discovery brings it back.
    if (u.removed) throw new WriteError('LB_UPSTREAM_REMOVED', `upstream ${u.id} was removed by discovery and cannot be ${action}`);
  };

  router.post(
    '/api/upstreams/:id/drain',
    write(async (ctx, u) => {
      const { timeoutMs = DEFAULT_DRAIN_TIMEOUT_MS } = await parseBody(ctx, drainBody);
      notRemoved(u, 'drained');
      registry.drain(u, timeoutMs);
      return { action: 'drain', timeoutMs, inFlight: u.inFlight };
    }),
  );
  router.post(
    '/api/upstreams/:id/undrain',
    write(async (ctx, u) => {
      await parseBody(ctx, emptyBody);
      notRemoved(u, 'undrained');
      registry.undrain(u);
      return { action: 'undrain', state: u.state };
    }),
  );
  /** `PUT /api/upstreams/:id/<action>` of one number of an upstream, logged as from → to. */
  const putNumber = <K extends string>(action: string, body: z.ZodType<Record<K, number>>, key: K, current: (u: Upstream) => number, apply: (u: Upstream, value: number) => void): void => {
    router.put(
      `/api/upstreams/:id/${action}`,
      write(async (ctx, u) => {
        const to = (await parseBody(ctx, body))[key];
        const from = current(u);
        apply(u, to);
        return { action, from, to };
      }),
    );
  };
  putNumber('weight', weightBody, 'weight', (u) => u.configuredWeight, (u, weight) => {
    registry.setWeight(u, weight);
  });
  putNumber('max-in-flight', maxInFlightBody, 'maxInFlight', (u) => u.maxInFlight, (u, maxInFlight) => {
    registry.setMaxInFlight(u, maxInFlight);
  });
}
