/**
 * Every error the balancer answers with, in one table: code → HTTP status → meaning. The data
 * path (proxy, upgrades), the client guard and the admin API all answer `{ error: code, message }`
 * with a code from here, and take the status from here, so a code means the same thing wherever a
 * client meets it. Callers match on `code`, never on the class or the message.
 */
export const ERROR_CODES = {
  // The data path: the upstreams could not serve the request.
  LB_NO_UPSTREAM: { status: 503, meaning: 'no upstream is available (or, for an upgrade, every one is at its in-flight cap)' },
  LB_UPSTREAM_CONNECT: { status: 502, meaning: 'no connection could be made to the upstream' },
  LB_UPSTREAM_TIMEOUT: { status: 504, meaning: 'the upstream did not answer in time, or was taken out of rotation before it answered' },
  LB_UPSTREAM_RESET: { status: 502, meaning: 'the upstream closed the connection before its response was complete' },
  /** Default only: the error carries the status the upstream answered (a retry that found no other upstream). */
  LB_UPSTREAM_STATUS: { status: 502, meaning: 'the upstream answered with a --retry-on-status code and no other try was possible' },
  LB_QUEUE_FULL: { status: 503, meaning: 'every upstream is at its in-flight cap and the wait queue is full' },
  LB_QUEUE_TIMEOUT: { status: 503, meaning: 'no upstream had capacity within the queue timeout or the request deadline' },
  LB_SHUTTING_DOWN: { status: 503, meaning: 'the balancer is shutting down' },
  // The client's request.
  LB_BAD_REQUEST: { status: 400, meaning: 'the request (or an admin request body) is malformed or out of bounds' },
  LB_CLIENT_TIMEOUT: { status: 408, meaning: 'the client did not send its request headers in time' },
  LB_HEADERS_TOO_LARGE: { status: 431, meaning: 'the request head is over --max-header-bytes or has too many lines' },
  LB_METHOD_NOT_ALLOWED: { status: 405, meaning: 'CONNECT: this is a reverse proxy, not a forward one' },
  /** Never sent (nobody is left to read it): the status that access logs and metrics record, as nginx does. */
  LB_CLIENT_CLOSED: { status: 499, meaning: 'the client went away before its response ended' },
  // The admin API.
  LB_NOT_FOUND: { status: 404, meaning: 'no admin route for this method and path' },
  LB_UNAUTHORIZED: { status: 401, meaning: 'an admin write without a valid bearer token' },
  LB_ADMIN_WRITES_DISABLED: { status: 403, meaning: 'no admin token is configured: every admin write is refused' },
  LB_SCENARIOS_DISABLED: { status: 403, meaning: 'no backend admin token is configured: fault scenarios are refused' },
  LB_UNKNOWN_UPSTREAM: { status: 404, meaning: 'no upstream with this id' },
  LB_UPSTREAM_REMOVED: { status: 409, meaning: 'the upstream was removed by discovery; only discovery brings it back' },
  LB_LAB_DISABLED: { status: 404, meaning: 'the algorithm lab is off on this balancer (start it with --lab or LB_LAB=1): its runs and fault scenarios are not there' },
  LB_LAB_BUSY: { status: 409, meaning: 'a lab run is in progress' },
  LB_NO_PEERS: { status: 409, meaning: 'this balancer has no peers (--peer / --peers-dns): count sharing cannot be switched' },
  LB_LAB_NO_PEER: { status: 409, meaning: 'a two-balancer lab run needs a live peer that says where its data and admin ports are' },
  LB_LAB_PEER_POLICY: { status: 409, meaning: 'a two-balancer lab run needs the peer to pick with the same policy as this balancer' },
  LB_LAB_OVER_CAPACITY: { status: 422, meaning: 'the lab run would hold more requests open than its cap (rate × probed latency): it would measure the cap, not the policies' },
  LB_BODY_TOO_LARGE: { status: 413, meaning: 'an admin request body is over 4096 bytes' },
  LB_BACKEND_UNREACHABLE: { status: 502, meaning: 'the backend could not be reached to relay a scenario' },
  LB_PEER_WRITE_FAILED: { status: 502, meaning: 'an admin write was applied on this balancer but not on every live peer (the answer lists each)' },
  // Ours.
  LB_INTERNAL: { status: 500, meaning: 'a bug in the balancer: an exception in its own code; logged' },
} as const satisfies Record<`LB_${string}`, { readonly status: number; readonly meaning: string }>;

/** A stable error code: a key of ERROR_CODES. */
export type LbErrorCode = keyof typeof ERROR_CODES;

/** The status each code answers with when no response header has been sent yet. */
export const statusOf: Readonly<Record<LbErrorCode, number>> = Object.freeze(
  Object.fromEntries(Object.entries(ERROR_CODES).map(([code, { status }]) => [code, status])) as Record<LbErrorCode, number>,
);

/** Whether `text` is one of our codes (for tests and for checking what a body names). */
export function isLbErrorCode(text: string): text is LbErrorCode {
  return Object.hasOwn(ERROR_CODES, text);
}

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

/** The JSON body of every error answer: `{ "error": code, "message": ... }`. */
export function errorBody(code: LbErrorCode, message: string): string {
  return JSON.stringify({ error: code, message });
}

/** Why a request was refused: the `reason` label of `lb_client_errors_total`. */
export type RejectReason = 'malformed' | 'header_timeout' | 'headers_too_large' | 'too_many_headers' | 'bad_host' | 'bad_target' | 'connect_method' | 'h2c_upgrade';

/**
 * Why an attempt on an upstream failed, as counted in metrics and used for the retry decision.
 * `ejected`: the upstream stopped answering and was taken out (timed-out probes, or an outlier
 * ejection on timeouts) while this attempt still waited for its response headers, and the
 * request was moved.
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
