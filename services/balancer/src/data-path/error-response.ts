import type { ServerResponse } from 'node:http';
import { errorBody } from '../errors.js';
import type { LbError } from '../errors.js';

/**
 * Answers a request the balancer could not serve, at the one boundary where errors become
 * responses: before the status line, a small JSON `{ error, message }` with the error's status;
 * after it, a cut connection (the only honest signal left).
 */
export function sendErrorResponse(res: ServerResponse, err: LbError, requestId: string, upstream: string | undefined): void {
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  const body = errorBody(err.code, err.message);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestId,
  };
  // Set only with --expose-upstream (it names an internal address).
  if (upstream !== undefined) headers['x-upstream'] = upstream;
  res.writeHead(err.status, headers);
  res.end(body);
}
