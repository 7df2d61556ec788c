import type { Middleware } from 'koa';

/** Methods a browser may use across origins. */
export const CORS_METHODS = 'GET, HEAD, OPTIONS';

const HEADER_LIST = /^[-!#$%&'*+.^_`|~\w]+(\s*,\s*[-!#$%&'*+.^_`|~\w]+)*$/;

/**
 * Opens every route to every origin, as the original did, and exposes X-Backend-Id so the page
 * can show which backend answered. Answers any preflight (OPTIONS) itself with 204: the router
 * would answer 200 with only an Allow header, and unknown paths with 404.
 */
export function corsMiddleware(): Middleware {
  return async (ctx, next) => {
    ctx.set('Access-Control-Allow-Origin', '*');
    ctx.set('Access-Control-Expose-Headers', 'X-Backend-Id');
    if (ctx.method !== 'OPTIONS') {
      await next();
      return;
    }
    ctx.set('Access-Control-Allow-Methods', CORS_METHODS);
    const requested = ctx.get('Access-Control-Request-Headers').trim();
    // Echoing the requested headers allows them all ('*' would not cover Authorization); only a
    // well-formed list of header names is echoed.
    ctx.set('Access-Control-Allow-Headers', HEADER_LIST.test(requested) ? requested : 'Content-Type');
    ctx.vary('Access-Control-Request-Headers');
    ctx.set('Access-Control-Max-Age', '86400');
    ctx.status = 204;
  };
}
