// @ts-check
// The page server of `npm start`: what nginx/default.conf.template does in Docker, in node:http.
// Serves frontend/dist, streams /images/* to the balancer's data port and GET/HEAD /api/* to its
// admin port, byte for byte and without buffering (the SSE stream must arrive event by event).
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream';
// The balancer's source, run as it is by Node's type stripping (and by tsx in the tests): the
// page server needs no build of the balancer to start.
import { HOP_BY_HOP, connectionTokens } from '../services/balancer/src/hop-by-hop.ts';

/** @type {Record<string, string>} */
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

/** Stream errors after the headers went out need no handling beyond the teardown pipeline does. */
const ignore = () => undefined;

/** Same policy as nginx: hashed assets forever, everything else revalidated. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

/** The page's Content-Security-Policy (nginx sends the same): only same-origin code and data. */
export const CSP =
  "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; " +
  "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/**
 * Drops hop-by-hop headers, by the balancer's own rules (its hop-by-hop.ts): the fixed list and the
 * names the Connection header lists.
 * @param {http.IncomingHttpHeaders} headers
 * @returns {http.OutgoingHttpHeaders}
 */
function stripHopByHop(headers) {
  const named = connectionTokens(headers.connection);
  /** @type {http.OutgoingHttpHeaders} */
  const out = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined && !HOP_BY_HOP.has(k) && !named?.has(k)) out[k] = v;
  }
  return out;
}

/**
 * @param {http.ServerResponse} res
 * @param {number} status
 * @param {string} code
 * @param {string} message
 * @param {Record<string, string>} [extra]
 */
function sendJsonError(res, status, code, message, extra = {}) {
  const body = JSON.stringify({ error: code, message });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/**
 * @typedef {object} Target
 * @property {string} host
 * @property {number} port
 */

/**
 * @typedef {object} UiServerOptions
 * @property {string} root directory with index.html (frontend/dist)
 * @property {Target} balancer data port: /images/*
 * @property {Target} admin admin port: /api/*
 * @property {number} [connectTimeoutMs] give up connecting to the balancer after this long (default 2000)
 */

/**
 * @typedef {object} UiServer
 * @property {http.Server} server
 * @property {(port: number, host?: string) => Promise<number>} listen resolves with the bound port
 * @property {() => Promise<void>} close idempotent; ends open streams (SSE) too
 */

/**
 * Creates the page server. Nothing listens until `listen()`.
 * @param {UiServerOptions} opts
 * @returns {UiServer}
 */
export function createUiServer(opts) {
  const root = resolve(opts.root);
  const { balancer, admin } = opts;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 2000;
  // Keep-alive to the balancer, as nginx would with an upstream block; SSE streams hold one each.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  /** @type {Promise<void> | undefined} */
  let closing;

  /**
   * @param {http.IncomingMessage} req
   * @param {http.ServerResponse} res
   * @param {Target} target
   */
  function proxy(req, res, target) {
    const headers = stripHopByHop(req.headers);
    const remote = req.socket.remoteAddress ?? '';
    const prior = req.headers['x-forwarded-for'];
    headers['x-forwarded-for'] = prior ? `${String(prior)}, ${remote}` : remote;
    headers['x-forwarded-proto'] = 'http';
    headers['x-forwarded-host'] = req.headers.host ?? '';
    const upstreamReq = http.request({
      host: target.host,
      port: target.port,
      method: req.method,
      path: req.url,
      headers,
      agent,
      timeout: connectTimeoutMs,
    });
    let connected = false;
    upstreamReq.on('socket', (socket) => {
      if (!socket.connecting) connected = true;
      else socket.once('connect', () => (connected = true));
    });
    upstreamReq.on('timeout', () => {
      // Only the connect is bounded: an image may take 10 s and SSE never ends.
      if (!connected) upstreamReq.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }));
    });
    upstreamReq.on('response', (upstreamRes) => {
      upstreamReq.setTimeout(0);
      const out = stripHopByHop(upstreamRes.headers);
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, out);
      // Send the headers now: an SSE stream would otherwise wait for its first event.
      res.flushHeaders();
      // Errors end both streams; the client sees a cut response, which is all that can be done now.
      pipeline(upstreamRes, res, ignore);
    });
    upstreamReq.on('error', (err) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const code = /** @type {NodeJS.ErrnoException} */ (err).code;
      if (code === 'ETIMEDOUT') sendJsonError(res, 504, 'BALANCER_TIMEOUT', 'the balancer did not accept the connection in time');
      else sendJsonError(res, 502, 'BALANCER_UNAVAILABLE', `the balancer is not reachable (${code ?? err.message})`);
    });
    // The client went away (tab closed, fetch aborted): cancel the upstream request too, so the
    // balancer's in-flight count drops now rather than when the image would have finished.
    res.on('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    req.pipe(upstreamReq);
  }

  /**
   * @param {http.IncomingMessage} req
   * @param {http.ServerResponse} res
   * @param {string} pathname
   */
  async function serveFile(req, res, pathname) {
    let decoded;
    try {
      decoded = decodeURIComponent(pathname);
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('bad path\n');
      return;
    }
    const rel = decoded === '/' ? 'index.html' : decoded.replace(/^\/+/, '');
    const file = resolve(join(root, rel));
    if (decoded.includes('\0') || (file !== root && !file.startsWith(root + sep))) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    let info;
    try {
      info = await stat(file);
    } catch {
      info = undefined;
    }
    if (!info?.isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain', 'cache-control': REVALIDATE }).end('not found\n');
      return;
    }
    const etag = `W/"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
    const isHtml = extname(file) === '.html';
    /** @type {http.OutgoingHttpHeaders} */
    const headers = {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'cache-control': rel.startsWith('assets/') ? IMMUTABLE : REVALIDATE,
      etag,
      'last-modified': info.mtime.toUTCString(),
      'x-content-type-options': 'nosniff',
    };
    if (isHtml) {
      headers['content-security-policy'] = CSP;
      headers['referrer-policy'] = 'no-referrer';
    }
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers).end();
      return;
    }
    headers['content-length'] = info.size;
    res.writeHead(200, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    pipeline(createReadStream(file), res, ignore);
  }

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const pathname = url.split('?', 1)[0] ?? '/';
    if (pathname.startsWith('/images/')) {
      proxy(req, res, balancer);
      return;
    }
    if (pathname.startsWith('/api/')) {
      // The admin API is read-only from the page's origin unless a request carries a bearer token
      // (the operator controls and the lab): the balancer checks the token itself. nginx answers the same.
      const bearer = /^Bearer\s/i.test(req.headers.authorization ?? '');
      if (req.method !== 'GET' && req.method !== 'HEAD' && !bearer) {
        sendJsonError(res, 405, 'METHOD_NOT_ALLOWED', 'only GET and HEAD are allowed on /api/ without a bearer token', { allow: 'GET, HEAD' });
        req.resume();
        return;
      }
      proxy(req, res, admin);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      req.resume();
      return;
    }
    serveFile(req, res, pathname).catch((/** @type {unknown} */ err) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n');
      else res.destroy(err instanceof Error ? err : undefined);
    });
  });

  return {
    server,
    listen(port, host = '127.0.0.1') {
      return new Promise((ok, ko) => {
        server.once('error', ko);
        server.listen(port, host, () => {
          server.off('error', ko);
          const addr = server.address();
          ok(typeof addr === 'object' && addr ? addr.port : port);
        });
      });
    },
    close() {
      closing ??= new Promise((ok) => {
        if (!server.listening) {
          agent.destroy();
          ok();
          return;
        }
        server.close(() => {
          agent.destroy();
          ok();
        });
        // SSE responses never end by themselves.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
