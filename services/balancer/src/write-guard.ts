/**
 * The guard of every admin write (the admin write API and the lab's runs): the bearer token, the
 * bounded JSON body (read by body-limit.ts) and the refusal's `{ error, message }` answer. Its own
 * module, used by admin/write-api.ts and lab/routes.ts alike, so neither folder imports from the other.
 *
 * Every write needs `Authorization: Bearer <LB_ADMIN_TOKEN>`; without a configured token every
 * write is refused, so an admin port exposed by mistake cannot be used to take upstreams out. The
 * refusal names the knob that would enable writes, as this balancer was configured.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RouterContext } from '@koa/router';
import type { z } from 'zod';
import { readBodyWithLimit } from './body-limit.js';
import type { AdminTokenSource } from './config.js';
import { LbError } from './errors.js';
import type { LbErrorCode } from './errors.js';

/** Largest request body accepted by a write route; the bodies are a few dozen bytes. */
export const MAX_BODY_BYTES = 4096;

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

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Compares a presented token with the configured one in constant time. Hashing both first gives
 * equal-length inputs to timingSafeEqual, so not even the token's length leaks through timing.
 */
export function tokenMatches(presented: string, expected: string): boolean {
  return expected !== '' && timingSafeEqual(digest(presented), digest(expected));
}

const BEARER_RE = /^Bearer[ \t]+(\S+)[ \t]*$/i;

const tooLarge = (): WriteError => new WriteError('LB_BODY_TOO_LARGE', `body larger than ${MAX_BODY_BYTES} bytes`);

/** Parses the JSON body against `schema`; an empty body is `{}`. Problems become 400s that say what is wrong. */
export async function parseBody<T>(ctx: RouterContext, schema: z.ZodType<T>): Promise<T> {
  const text = (await readBodyWithLimit(ctx.req, MAX_BODY_BYTES, tooLarge)).toString('utf8');
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
