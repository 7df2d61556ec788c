import type { Middleware } from 'koa';

/** Stable error codes of the backend's JSON error bodies; clients match on these, not on text. */
export type ErrorCode =
  | 'BAD_IMAGE_ID'
  | 'IMAGE_NOT_FOUND'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'NOT_IMPLEMENTED'
  | 'BAD_REQUEST'
  | 'BODY_TOO_LARGE'
  | 'INTERNAL'
  /** Scenario routes: writes disabled (no BACKEND_ADMIN_TOKEN), or a missing / wrong token. */
  | 'ADMIN_DISABLED'
  | 'UNAUTHORIZED'
  /** A 500 the error-rate scenario chose to send. */
  | 'INJECTED_ERROR';

/** An error that becomes `{ "error": code, "message": message }` with `status`. */
export class BackendError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, status: number, message: string) {
    super(message);
    this.name = 'BackendError';
    this.code = code;
    this.status = status;
  }
}

/** The JSON body of every error response. */
export interface ErrorBody {
  readonly error: ErrorCode;
  readonly message: string;
}

// Codes for responses that Koa or the router produce without a body (or throw with a status).
const BY_STATUS: Readonly<Partial<Record<number, ErrorCode>>> = {
  400: 'BAD_REQUEST',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  501: 'NOT_IMPLEMENTED',
};

function statusOf(err: unknown): number {
  if (typeof err !== 'object' || err === null) return 500;
  const status = (err as { status?: unknown }).status;
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
}

/**
 * Maps every error to a JSON body at one boundary, and gives bodiless 4xx/5xx answers (unknown
 * route, wrong method) the same shape. Errors never reach Koa's default handler, which would
 * also strip the headers set earlier (X-Backend-Id, CORS). 5xx errors are re-emitted on the app
 * so its 'error' listener logs them.
 */
export function errorMiddleware(): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      const status = ctx.status;
      if (status >= 400 && ctx.body == null) {
        const code = BY_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'BAD_REQUEST');
        ctx.body = { error: code, message: `${ctx.method} ${ctx.path}: ${ctx.message}` } satisfies ErrorBody;
        // Koa turns an implicit 404 into 200 when a body is set.
        ctx.status = status;
      }
    } catch (err) {
      if (err instanceof BackendError) {
        ctx.status = err.status;
        ctx.body = { error: err.code, message: err.message } satisfies ErrorBody;
        return;
      }
      const status = statusOf(err);
      ctx.status = status;
      const code = BY_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'BAD_REQUEST');
      // Internal messages stay in the log, not in the response.
      const message = status >= 500 ? 'internal error' : err instanceof Error ? err.message : String(err);
      ctx.body = { error: code, message } satisfies ErrorBody;
      if (status >= 500) ctx.app.emit('error', err, ctx);
    }
  };
}
