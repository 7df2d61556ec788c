/**
 * What the data port accepts from clients, checked before anything reaches an upstream.
 *
 * Node's HTTP parser (llhttp, strict) already refuses request smuggling material: Content-Length
 * together with Transfer-Encoding, repeated Content-Length, bad chunk sizes, CR or LF or NUL inside
 * a header value, obs-fold. It reports those through the server's 'clientError' event, which this
 * module answers with the balancer's JSON error. What the parser lets through but a proxy must not
 * forward (RFC 9112 §3.2: a missing, repeated or malformed Host; absolute-form targets; too many
 * header lines) is checked per request by `admitRequest`, which is cheap: one pass over rawHeaders.
 */
import type { IncomingMessage, RequestListener, Server, ServerOptions, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { errorBody, statusOf } from '../errors.js';
import type { LbErrorCode, RejectReason } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { STATUS_CODES } from '../node-http.js';

/** More header lines than this are refused with 431 (HAProxy's tune.http.maxhdr is 101). */
export const MAX_REQUEST_HEADERS = 100;

/** Methods named in the `Allow` answer to `OPTIONS *`: the data port proxies these (and any other). */
export const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/** How long a refused client may take to read our answer before its socket is destroyed. */
const LINGER_MS = 1000;

/** The codes (of errors.ts's one table) that refused client input answers with. */
export type ClientErrorCode = Extract<LbErrorCode, 'LB_BAD_REQUEST' | 'LB_CLIENT_TIMEOUT' | 'LB_HEADERS_TOO_LARGE' | 'LB_METHOD_NOT_ALLOWED'>;

/** A refused request: what the client is told and what the metric counts. */
export interface Rejection {
  readonly status: number;
  readonly code: ClientErrorCode;
  readonly reason: RejectReason;
  readonly message: string;
}

/** RFC 3986 host (IP-literal, IPv4 or reg-name) with an optional port; nothing else, no spaces. */
const HOST_RE = /^(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+)(?::[0-9]{0,5})?$/;
/** absolute-form (RFC 9112 §3.2.2): scheme, authority, then path and query (no fragment is sent). */
const ABSOLUTE_RE = /^https?:\/\/([^/?#]*)([^#]*)$/i;

/** A refusal whose status is its code's, from the one table. */
const refusal = (code: ClientErrorCode, reason: RejectReason, message: string): Rejection => ({ status: statusOf[code], code, reason, message });
const bad = (reason: RejectReason, message: string): Rejection => refusal('LB_BAD_REQUEST', reason, message);

/**
 * Checks one request head and normalises its target. Returns why it is refused, or undefined.
 * An absolute-form target (`GET http://x/y`) is rewritten to origin-form (`/y`) with the target's
 * authority as Host, as RFC 9112 §3.2.2 asks of a server and as nginx does. `OPTIONS *` passes
 * (the caller answers it); any other asterisk-form or authority-form target is refused.
 */
export function admitRequest(req: IncomingMessage): Rejection | undefined {
  const raw = req.rawHeaders;
  if (raw.length > MAX_REQUEST_HEADERS * 2) {
    return refusal('LB_HEADERS_TOO_LARGE', 'too_many_headers', `more than ${MAX_REQUEST_HEADERS} header lines`);
  }
  let hostAt = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] ?? '';
    // Four-letter names only: the common case skips the lower-casing.
    if (name.length === 4 && name.toLowerCase() === 'host') {
      if (hostAt !== -1) return bad('bad_host', 'more than one Host header');
      hostAt = i + 1;
    }
  }
  if (hostAt === -1) {
    if (req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) return bad('bad_host', 'HTTP/1.1 request without a Host header');
  } else if (!HOST_RE.test(raw[hostAt] ?? '')) {
    return bad('bad_host', 'malformed Host header');
  }

  const url = req.url ?? '';
  if (url.startsWith('/')) return undefined;
  if (url === '*') return req.method === 'OPTIONS' ? undefined : bad('bad_target', 'the asterisk target is only valid for OPTIONS');
  const absolute = ABSOLUTE_RE.exec(url);
  if (absolute === null) return bad('bad_target', 'request target must be a path or an absolute http(s) URL');
  const authority = absolute[1] ?? '';
  // userinfo in an http(s) URI is deprecated and a known phishing vector (RFC 9110 §4.2.4).
  if (authority.includes('@') || !HOST_RE.test(authority)) return bad('bad_target', 'malformed authority in the request target');
  const rest = absolute[2] ?? '';
  req.url = rest === '' ? '/' : rest.startsWith('/') ? rest : `/${rest}`;
  if (hostAt === -1) raw.push('Host', authority);
  else raw[hostAt] = authority;
  req.headers.host = authority;
  return undefined;
}

/**
 * An upgrade to cleartext HTTP/2 (`Upgrade: h2c`, or its `HTTP2-Settings`). Tunnelled, it would
 * hand the client a raw HTTP/2 connection to the upstream, past every rule this proxy applies
 * per request (h2c smuggling); it is refused. WebSocket and other upgrades are not affected.
 */
export function isH2cUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  if (upgrade?.split(',').some((t) => /^h2c?$/i.test(t.trim())) === true) return true;
  return req.headers['http2-settings'] !== undefined;
}

/** Maps an error Node reports through 'clientError' (parser errors, header timeout) to our answer. */
export function rejectionOf(err: { code?: string; reason?: string; message: string }): Rejection {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return refusal('LB_HEADERS_TOO_LARGE', 'headers_too_large', 'request head larger than the limit');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return refusal('LB_CLIENT_TIMEOUT', 'header_timeout', 'request headers not received in time');
    default:
      // llhttp's reason is fixed text ("Invalid character in chunk size"), never the client's bytes.
      return bad('malformed', `malformed request: ${err.reason ?? err.message} (${err.code ?? 'unknown'})`);
  }
}

/** The status line, headers and JSON body of a refusal, ready for a raw socket. */
export function rawErrorResponse(status: number, code: LbErrorCode, message: string, extra = ''): string {
  const body = errorBody(code, message);
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n${extra}\r\n${body}`
  );
}

/**
 * Writes a raw answer and closes the socket. It is ended, not destroyed at once: destroying it with
 * unread client bytes pending would send a reset that can discard our answer at the client. A client
 * that does not close its side within LINGER_MS is cut (nginx's lingering close, shorter).
 */
export function answerAndClose(socket: Duplex, payload: string): void {
  if (socket.destroyed || socket.writableEnded) return;
  const linger = setTimeout(() => {
    socket.destroy();
  }, LINGER_MS);
  linger.unref();
  socket.once('close', () => {
    clearTimeout(linger);
  });
  socket.end(payload);
}

export interface ClientGuardDeps {
  /** The part of the config the guard reads. */
  readonly config: Pick<Config, 'clientHeaderTimeoutMs' | 'clientKeepAliveTimeoutMs' | 'maxHeaderBytes'>;
  /** Where refusals are counted (lb_client_errors_total). */
  readonly metrics: Pick<Metrics, 'recordClientRejection'>;
  readonly logger: Logger;
}

/** Everything the data port does about untrusted client input. */
export interface ClientGuard {
  /** createServer options for the data port: head size, header timeout, keep-alive, no whole-request timeout. */
  readonly serverOptions: ServerOptions;
  /** Installs the header-count cap and the 'clientError' handler on the data server. */
  attach(server: Server): void;
  /** Wraps the proxy: refuses bad heads with JSON, answers `OPTIONS *`, passes everything else. */
  wrap(handler: RequestListener): RequestListener;
  /** For an upgrade request: false when it was refused (the answer is already on the socket). */
  admitUpgrade(req: IncomingMessage, socket: Duplex): boolean;
  /** Counts and logs a refusal made elsewhere on a raw socket. */
  count(rejection: Rejection): void;
}

/** Creates the guard; nothing happens until attach() and wrap() are used by the server. */
export function createClientGuard(deps: ClientGuardDeps): ClientGuard {
  const { config, logger } = deps;
  const count = (rejection: Rejection, remote?: string): void => {
    deps.metrics.recordClientRejection(rejection.reason);
    logger.debug({ remote, status: rejection.status, reason: rejection.reason, message: rejection.message }, 'client request refused');
  };

  // A parser error in the middle of a response that has started (a bad chunk in an upload the
  // upstream already answered, garbage pipelined behind a request) must not get a second status
  // line written into that response, only a cut connection. Node keeps the response being
  // written on its socket as `_httpMessage` (undocumented, stable since Node 0.x); reading it
  // costs nothing per request, unlike tracking every response ourselves.
  const responseStarted = (socket: Duplex): boolean => {
    const current = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    return current !== undefined && current !== null && current.headersSent && !current.writableFinished;
  };

  const refuse = (res: ServerResponse, rejection: Rejection): void => {
    count(rejection, res.socket?.remoteAddress);
    const body = errorBody(rejection.code, rejection.message);
    res.writeHead(rejection.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  };

  // Node checks headersTimeout on this interval; a coarse one would let a slow client hold its
  // socket up to one interval longer than the limit.
  const checkingInterval = Math.min(1000, Math.max(10, Math.floor(config.clientHeaderTimeoutMs / 5)));

  return {
    serverOptions: {
      maxHeaderSize: config.maxHeaderBytes,
      headersTimeout: config.clientHeaderTimeoutMs,
      // 0: no deadline on the whole request. Bodies stream to the upstream, so a large upload may
      // legitimately take long; the upstream side has its own timeouts.
      requestTimeout: 0,
      keepAliveTimeout: config.clientKeepAliveTimeoutMs,
      connectionsCheckingInterval: checkingInterval,
      // Checked in admitRequest instead, so the answer is our JSON like every other refusal.
      requireHostHeader: false,
    },
    attach(server) {
      // Node would keep 2000 and silently drop the rest; one more than the limit is enough to refuse.
      server.maxHeadersCount = MAX_REQUEST_HEADERS + 1;
      server.on('clientError', (err: Error & { code?: string; reason?: string }, socket: Duplex) => {
        // Without this listener Node answers by itself; with it every path below must end the socket.
        if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable || socket.writableEnded || responseStarted(socket)) {
          socket.destroy();
          return;
        }
        const rejection = rejectionOf(err);
        count(rejection, (socket as { remoteAddress?: string }).remoteAddress);
        answerAndClose(socket, rawErrorResponse(rejection.status, rejection.code, rejection.message));
      });
      // CONNECT asks for a tunnel to any host: a forward proxy's job, never a reverse proxy's.
      // Without a listener Node would drop the connection without a word.
      server.on('connect', (req: IncomingMessage, socket: Duplex) => {
        socket.on('error', () => {
          socket.destroy();
        });
        const rejection = refusal('LB_METHOD_NOT_ALLOWED', 'connect_method', 'CONNECT is not supported: this is a reverse proxy');
        count(rejection, req.socket.remoteAddress);
        answerAndClose(socket, rawErrorResponse(rejection.status, rejection.code, rejection.message, `allow: ${ALLOW}\r\n`));
      });
    },
    wrap(handler) {
      return (req, res) => {
        const rejection = admitRequest(req);
        if (rejection !== undefined) {
          refuse(res, rejection);
          return;
        }
        if (req.url === '*') {
          // OPTIONS * asks about the server as a whole, which is the balancer (Apache answers it the
          // same way; nginx refuses it, HAProxy forwards it). undici cannot send asterisk-form anyway.
          res.writeHead(200, { allow: ALLOW, 'content-length': 0 });
          res.end();
          return;
        }
        handler(req, res);
      };
    },
    admitUpgrade(req, socket) {
      const rejection =
        admitRequest(req) ??
        (req.url === '*' ? bad('bad_target', 'an upgrade needs a path') : undefined) ??
        (isH2cUpgrade(req) ? bad('h2c_upgrade', 'h2c upgrades are not proxied; send the request without Upgrade: h2c') : undefined);
      if (rejection === undefined) return true;
      count(rejection, req.socket.remoteAddress);
      answerAndClose(socket, rawErrorResponse(rejection.status, rejection.code, rejection.message));
      return false;
    },
    count,
  };
}
