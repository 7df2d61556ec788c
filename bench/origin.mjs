// A deliberately tiny keep-alive origin for the benchmark, one process per backend.
//
// It is not services/backend: that one is a Koa app with metrics and logging, and the bench must
// measure the proxies, not the cost of the thing behind them. This one does as little as possible.
//
// Run: node bench/origin.mjs [--slow-ms N]
// It listens on 127.0.0.1, port 0, and prints one line `listening <port>` on stdout when ready.
//
//   GET /tiny     200, a few bytes
//   GET /16k      200, 16 KiB
//   GET /slow     200, a few bytes; after --slow-ms (only this backend's delay, 0 by default), so
//                 one backend started with --slow-ms 50 is "the slow one" in the slow scenario while
//                 the others answer the same path at once
//   GET /healthz  200 (for the balancer's probes; not counted)
//   GET /__stats  {"served": n, "inFlight": n} (not counted)
//   POST /__reset served = 0 (not counted)
//
// `served` counts bench requests on arrival, so the harness can tell how a proxy spread the load.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { 'slow-ms': { type: 'string', default: '0' } } });
const slowMs = Number(values['slow-ms']);
if (!Number.isInteger(slowMs) || slowMs < 0) {
  console.error(`bench origin: --slow-ms must be a non-negative integer, got ${values['slow-ms']}`);
  process.exit(2);
}

const TINY = Buffer.from('ok\n');
const LARGE = Buffer.alloc(16 * 1024, 'x');
const TEXT = { 'content-type': 'text/plain' };

let served = 0;
let inFlight = 0;

/** Sends a fixed body with an explicit length, so every proxy can keep the connection alive. */
function send(res, status, body, headers = TEXT) {
  res.writeHead(status, { ...headers, 'content-length': body.length });
  res.end(body);
}

const server = createServer((req, res) => {
  const path = req.url ?? '/';
  if (path === '/tiny' || path === '/16k' || path === '/slow') {
    served += 1;
    inFlight += 1;
    // 'close' fires once per response whether it finished or the client went away.
    res.once('close', () => { inFlight -= 1; });
    if (path === '/16k') send(res, 200, LARGE);
    else if (path === '/slow' && slowMs > 0) setTimeout(() => { send(res, 200, TINY); }, slowMs);
    else send(res, 200, TINY);
    return;
  }
  if (path === '/healthz') return send(res, 200, Buffer.from('{"status":"ok"}'), { 'content-type': 'application/json' });
  if (path === '/__stats') {
    return send(res, 200, Buffer.from(JSON.stringify({ served, inFlight })), { 'content-type': 'application/json' });
  }
  if (path === '/__reset' && req.method === 'POST') {
    served = 0;
    return send(res, 204, Buffer.alloc(0));
  }
  send(res, 404, Buffer.from('not found\n'));
});

// Proxies keep idle upstream connections in a pool for the whole run; Node's default 5 s idle timeout
// would close them under the proxies' feet and show up as spurious 502s, which is not what we measure.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('bench origin: no TCP address');
  process.stdout.write(`listening ${address.port}\n`);
});

// The harness stops us with SIGTERM; exit at once, in-flight bench requests do not matter then.
// Say so on stderr (the harness's log of this process): if anything else sends it mid-run, the
// harness reports the death with this line, and the cause is not a mystery.
process.once('SIGTERM', () => {
  process.stderr.write(`bench origin: SIGTERM received, exiting (served ${served}, in flight ${inFlight})\n`);
  process.exit(0);
});
process.once('exit', (code) => { process.stderr.write(`bench origin: exit ${code}\n`); });
