/**
 * Errors with stable codes, mapped to an HTTP status at one boundary (the proxy).
 * Callers match on `code`, never on the class or the message.
 */
export type LbErrorCode =
  | 'LB_NO_UPSTREAM'
  | 'LB_UPSTREAM_CONNECT'
  | 'LB_UPSTREAM_TIMEOUT'
  | 'LB_UPSTREAM_RESET'
  | 'LB_UPSTREAM_STATUS'
  | 'LB_BAD_REQUEST'
  | 'LB_QUEUE_FULL'
  | 'LB_QUEUE_TIMEOUT'
  | 'LB_SHUTTING_DOWN';

/** The status each code answers with when no response header has been sent yet. */
export const statusOf: Readonly<Record<LbErrorCode, number>> = Object.freeze({
  LB_NO_UPSTREAM: 503,
  LB_UPSTREAM_CONNECT: 502,
  LB_UPSTREAM_TIMEOUT: 504,
  LB_UPSTREAM_RESET: 502,
  /** Default only: carries the status the upstream answered (a retry that found no other upstream). */
  LB_UPSTREAM_STATUS: 502,
  LB_BAD_REQUEST: 400,
  LB_QUEUE_FULL: 503,
  LB_QUEUE_TIMEOUT: 503,
  LB_SHUTTING_DOWN: 503,
});

/** A balancer error: a stable code, its status, and a message for humans. */
export class LbError extends Error {
  readonly code: LbErrorCode;
  readonly status: number;
  constructor(code: LbErrorCode, message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options);
    this.name = 'LbError';
    this.code = code;
    this.status = options?.status ?? statusOf[code];
  }
}

/**
 * Why an attempt on an upstream failed, as counted in metrics and used for the retry decision.
 * `ejected`: the upstream was taken out (failed probes, outlier ejection) while this attempt
 * still waited for its response headers, and the request was moved.
 */
export type FailureReason = 'connect' | 'timeout' | 'reset' | 'aborted' | 'ejected';

/** Codes undici and node:net use for a connection that never reached the upstream. */
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const ABORT_CODES = new Set(['UND_ERR_ABORTED', 'ABORT_ERR', 'ERR_STREAM_PREMATURE_CLOSE']);

function codeOf(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') {
    return err.code;
  }
  return '';
}

/** Classifies an undici or socket error by its `code`. */
export function failureReasonOf(err: unknown): FailureReason {
  const code = codeOf(err);
  if (CONNECT_CODES.has(code)) return 'connect';
  if (TIMEOUT_CODES.has(code)) return 'timeout';
  if (ABORT_CODES.has(code) || (err instanceof Error && err.name === 'AbortError')) return 'aborted';
  return 'reset';
}

/** Turns an attempt's failure into the error the client sees. */
export function toLbError(reason: FailureReason, upstreamId: string, err: unknown): LbError {
  const detail = codeOf(err) || (err instanceof Error ? err.message : String(err));
  switch (reason) {
    case 'connect':
      return new LbError('LB_UPSTREAM_CONNECT', `cannot connect to upstream ${upstreamId} (${detail})`, { cause: err });
    case 'ejected':
      return new LbError('LB_UPSTREAM_TIMEOUT', `upstream ${upstreamId} was taken out of rotation before it answered`, { cause: err });
    case 'timeout':
      return new LbError('LB_UPSTREAM_TIMEOUT', `upstream ${upstreamId} did not answer in time (${detail})`, { cause: err });
    case 'reset':
    case 'aborted':
      return new LbError('LB_UPSTREAM_RESET', `upstream ${upstreamId} closed the connection (${detail})`, { cause: err });
  }
}
