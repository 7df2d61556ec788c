// The floor a Node balancer should stand on (issue 24): a plain node:http server with one undici
// Pool per backend, `pool.stream` writing into the client response, least in-flight with a
// rotating tie-break. Nothing else: no health checks, retries, metrics, request ids or
// X-Forwarded-*. It strips the hop-by-hop headers (both ways) so that it is a correct proxy,
// not a faster wrong one.
//
// Run: node bench/plain-proxy.mjs --port N host:port [host:port ...]
// Prints `listening <port>` on stdout when ready.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values, positionals } = parseArgs({ options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } }, allowPositionals: true });
if (positionals.length === 0) {
  console.error('plain proxy: give at least one upstream host:port');
  process.exit(2);
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect']);

const upstreams = positionals.map((address) => ({
  pool: new Pool(`http://${address}`, { pipelining: 1, keepAliveTimeout: 60_000 }),
  inFlight: 0,
}));
let turn = 0;

/** Least in-flight; ties rotate so that sequential requests do not all go to the first one. */
function pick() {
  let best;
  const n = upstreams.length;
  const start = turn++ % n;
  for (let i = 0; i < n; i++) {
    const u = upstreams[(start + i) % n];
    if (best === undefined || u.inFlight < best.inFlight) best = u;
  }
  return best;
}

function requestHeaders(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i].toLowerCase())) out.push(raw[i], raw[i + 1]);
  }
  return out;
}

/** `raw`: undici's [name, value, ...] strings (responseHeaders: 'raw'). */
function responseHeaders(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i].toLowerCase())) out.push(raw[i], raw[i + 1]);
  }
  return out;
}

const BUSY = Number(process.env.PLAIN_BUSY_US ?? 0) / 1000;
const server = createServer((req, res) => {
  if (BUSY > 0) { const end = performance.now() + BUSY; while (performance.now() < end); }
  const upstream = pick();
  upstream.inFlight++;
  let done = false;
  const release = () => {
    if (!done) {
      done = true;
      upstream.inFlight--;
    }
  };
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  upstream.pool.stream(
    { path: req.url, method: req.method, headers: requestHeaders(req.rawHeaders), body: hasBody ? req : null, opaque: res, responseHeaders: 'raw' },
    ({ statusCode, headers, opaque }) => {
      opaque.writeHead(statusCode, responseHeaders(headers));
      return opaque;
    },
    (err) => {
      release();
      if (err === null) return;
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain', 'content-length': 12 });
        res.end('bad gateway\n');
      } else {
        res.destroy(err);
      }
    },
  );
  res.once('close', release);
});
// Long idle client connections, as the balancer targets get in connections.mjs when it asks.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;

server.listen(Number(values.port), values.host, () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.once('SIGTERM', () => {
  process.exit(0);
});
