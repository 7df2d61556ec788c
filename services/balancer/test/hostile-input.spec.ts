import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { request } from 'undici';
import { ALLOW, MAX_REQUEST_HEADERS, createClientGuard } from '../src/data-path/client-guard.js';
import { createMetrics } from '../src/metrics.js';
import { silentLogger, startBalancer, startOrigin, testConfig, testRegistry, waitFor } from './helpers.js';
import type { Origin, Running } from './helpers.js';

const HEADER_TIMEOUT_MS = 500;
const MAX_HEADER_BYTES = 4096;

/** What a raw client received before the server closed the connection. */
interface RawReply {
  readonly text: string;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly closed: boolean;
  /** ms from connect to close. */
  readonly ms: number;
}

function parseReply(text: string, closed: boolean, ms: number): RawReply {
  const end = text.indexOf('\r\n\r\n');
  const lines = (end === -1 ? text : text.slice(0, end)).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
  return { text, status: Number(lines[0]?.split(' ')[1] ?? 0), headers, body: end === -1 ? '' : text.slice(end + 4), closed, ms };
}

/** Sends raw bytes (in one write unless given several parts) and collects the answer until the server closes. */
function raw(port: number, parts: string | (string | Buffer)[], timeoutMs = 3000): Promise<RawReply> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', () => undefined);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(parseReply(text, false, Date.now() - started));
    }, timeoutMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseReply(text, true, Date.now() - started));
    });
    for (const p of typeof parts === 'string' ? [parts] : parts) socket.write(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
  });
}

/** The JSON error of a reply. */
function errorOf(r: RawReply): { error: string; message: string } {
  assert.equal(r.headers['content-type'], 'application/json', r.text);
  return JSON.parse(r.body) as { error: string; message: string };
}

describe('hostile client input on the data port', function () {
  this.timeout(20_000);
  let origin: Origin;
  let lb: Running;
  /** Every request head the origin received, and how many bodies it received completely. */
  const seen: { method: string; url: string; rawHeaders: string[]; headers: IncomingMessage['headers'] }[] = [];
  let completed = 0;
  /** Responses the origin holds open (the response-started test). */
  const heldOpen = new Set<() => void>();

  before(async () => {
    origin = await startOrigin((req, res) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, headers: req.headers });
      if (req.url === '/stream-early') {
        // Answers at once and keeps the response open while the upload goes on.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
        req.resume();
        heldOpen.add(() => res.end());
        return;
      }
      let size = 0;
      req.on('data', (chunk: Buffer) => (size += chunk.length));
      req.on('end', () => {
        completed++;
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`ok ${size}`);
      });
    });
    lb = await startBalancer(
      testConfig([origin.port], {
        clientHeaderTimeoutMs: HEADER_TIMEOUT_MS,
        clientKeepAliveTimeoutMs: 300,
        maxHeaderBytes: MAX_HEADER_BYTES,
      }),
    );
  });
  after(async () => {
    for (const end of heldOpen) end();
    await lb.balancer.stop();
    await origin.close();
  });

  /** lb_client_errors_total by reason, as /metrics shows it now. */
  async function clientErrors(): Promise<Map<string, number>> {
    const text = await (await request(`${lb.adminUrl}/metrics`)).body.text();
    const out = new Map<string, number>();
    for (const m of text.matchAll(/^lb_client_errors_total\{reason="([^"]+)"\} (\d+)$/gm)) out.set(m[1] ?? '', Number(m[2]));
    return out;
  }

  /** The counts before the current test: each test asserts only what it caused itself. */
  let baseline = new Map<string, number>();
  beforeEach(async () => {
    baseline = await clientErrors();
  });

  /**
   * Asserts that this test, and nothing else, raised lb_client_errors_total by exactly
   * `expected` (reasons left out: by 0). Polls briefly: a cut connection is counted as it closes.
   */
  async function expectRefusals(expected: Readonly<Record<string, number>>): Promise<void> {
    let got: Record<string, number> = {};
    const matches = async (): Promise<boolean> => {
      const now = await clientErrors();
      got = {};
      for (const [reason, n] of now) if (n - (baseline.get(reason) ?? 0) !== 0) got[reason] = n - (baseline.get(reason) ?? 0);
      return JSON.stringify(Object.entries(got).sort()) === JSON.stringify(Object.entries(expected).filter(([, n]) => n !== 0).sort());
    };
    await waitFor(matches, 2000, 'lb_client_errors_total to move by the expected reasons').catch(() => undefined);
    assert.deepEqual(got, Object.fromEntries(Object.entries(expected).filter(([, n]) => n !== 0)), 'lb_client_errors_total deltas of this test');
  }

  /** Runs `attempt` and proves the origin saw no request head meanwhile. */
  async function neverForwarded(attempt: () => Promise<RawReply>): Promise<RawReply> {
    const before = seen.length;
    const reply = await attempt();
    // A plain request afterwards: once it reached the origin, anything sent earlier would have too.
    const check = await request(`${lb.url}/after`);
    assert.equal(check.statusCode, 200);
    await check.body.text();
    assert.deepEqual(seen.slice(before).map((s) => s.url), ['/after'], 'the rejected request must never reach the upstream');
    return reply;
  }

  describe('request smuggling material (refused by the parser, answered by our clientError handler)', () => {
    it('400 for Content-Length together with Transfer-Encoding', async () => {
      const r = await neverForwarded(() =>
        raw(lb.addresses.data.port, 'POST /smuggle HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n'),
      );
      assert.equal(r.status, 400);
      assert.equal(r.closed, true);
      assert.equal(r.headers.connection, 'close');
      const e = errorOf(r);
      assert.equal(e.error, 'LB_BAD_REQUEST');
      assert.match(e.message, /Transfer-Encoding/);
      await expectRefusals({ malformed: 1 });
    });

    it('400 for two differing Content-Length headers', async () => {
      const r = await neverForwarded(() => raw(lb.addresses.data.port, 'POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 10\r\n\r\nabcGET / HTTP/1.1\r\n\r\n'));
      assert.equal(r.status, 400);
      assert.match(errorOf(r).message, /Content-Length/);
      await expectRefusals({ malformed: 1 });
    });

    it('400 for an invalid chunk size; the upstream never gets a complete request', async () => {
      const before = completed;
      const r = await raw(lb.addresses.data.port, [
        'POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n',
        'zz\r\nabc\r\n0\r\n\r\n',
      ]);
      assert.equal(r.status, 400);
      assert.match(errorOf(r).message, /chunk size/);
      const check = await request(`${lb.url}/after-chunk`);
      await check.body.text();
      // The body streams (no buffering), so its head may have left; its end never does.
      assert.equal(completed, before + 1, 'only the check request completed at the upstream');
      await waitFor(() => lb.balancer.registry.inFlight() === 0, 2000, 'count released');
      await expectRefusals({ malformed: 1 });
    });

    it('a parse error after the response started only cuts the connection (no second status line)', async () => {
      const socket = connect(lb.addresses.data.port, '127.0.0.1');
      let text = '';
      let closed = false;
      socket.setEncoding('latin1');
      socket.on('data', (c: string) => (text += c));
      socket.on('error', () => undefined);
      socket.on('close', () => (closed = true));
      socket.write('POST /stream-early HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
      await waitFor(() => text.includes('partial'), 2000, 'the response has started');
      socket.write('zz\r\n');
      await waitFor(() => closed, 2000, 'connection cut');
      assert.equal(text.match(/HTTP\/1\.1 /g)?.length, 1, text);
      assert.doesNotMatch(text, /LB_BAD_REQUEST/);
      await waitFor(() => lb.balancer.registry.inFlight() === 0, 2000, 'count released');
      await expectRefusals({ malformed: 0 });
    });
  });

  describe('size limits', () => {
    it(`431 LB_HEADERS_TOO_LARGE for a head over maxHeaderBytes (${MAX_HEADER_BYTES})`, async () => {
      const r = await neverForwarded(() => raw(lb.addresses.data.port, `GET /big HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(MAX_HEADER_BYTES)}\r\n\r\n`));
      assert.equal(r.status, 431);
      assert.equal(errorOf(r).error, 'LB_HEADERS_TOO_LARGE');
      await expectRefusals({ headers_too_large: 1 });
    });

    it(`431 for more than ${MAX_REQUEST_HEADERS} header lines; exactly ${MAX_REQUEST_HEADERS} pass`, async () => {
      const lines = (n: number) => Array.from({ length: n }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
      const r = await neverForwarded(() => raw(lb.addresses.data.port, `GET /many HTTP/1.1\r\nHost: a\r\n${lines(MAX_REQUEST_HEADERS)}\r\n`));
      assert.equal(r.status, 431);
      const e = errorOf(r);
      assert.equal(e.error, 'LB_HEADERS_TOO_LARGE');
      assert.match(e.message, /header lines/);
      const ok = await raw(lb.addresses.data.port, `GET /many HTTP/1.1\r\nHost: a\r\nConnection: close\r\n${lines(MAX_REQUEST_HEADERS - 2)}\r\n`);
      assert.equal(ok.status, 200);
      await expectRefusals({ too_many_headers: 1 });
    });
  });

  describe('Host and the request target (RFC 9112 §3.2)', () => {
    it('400 for HTTP/1.1 without Host; HTTP/1.0 without Host is served', async () => {
      const r = await neverForwarded(() => raw(lb.addresses.data.port, 'GET /nohost HTTP/1.1\r\n\r\n'));
      assert.equal(r.status, 400);
      assert.equal(r.closed, true);
      assert.match(errorOf(r).message, /without a Host/);
      const old = await raw(lb.addresses.data.port, 'GET /old HTTP/1.0\r\n\r\n');
      assert.equal(old.status, 200);
      assert.equal(old.body, 'ok 0');
      await expectRefusals({ bad_host: 1 });
    });

    for (const [what, head] of [
      ['two Host headers', 'Host: a\r\nHost: b\r\n'],
      ['a space in Host', 'Host: a b\r\n'],
      ['userinfo in Host', 'Host: user@a\r\n'],
      ['an empty Host', 'Host: \r\n'],
      ['a path in Host', 'Host: a/b\r\n'],
    ] as const) {
      it(`400 for ${what}`, async () => {
        const r = await neverForwarded(() => raw(lb.addresses.data.port, `GET /host HTTP/1.1\r\n${head}\r\n`));
        assert.equal(r.status, 400);
        assert.match(errorOf(r).message, /Host/);
        await expectRefusals({ bad_host: 1 });
      });
    }

    it('accepts host:port, IPv4 and IPv6 literals', async () => {
      for (const host of ['site.test:8080', '10.0.0.1', '[::1]:8001', 'xn--bcher-kva.test']) {
        const r = await raw(lb.addresses.data.port, `GET /h HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
        assert.equal(r.status, 200, host);
      }
      await expectRefusals({});
    });

    it('absolute-form is forwarded in origin-form, with the Host taken from the target', async () => {
      const before = seen.length;
      const r = await raw(lb.addresses.data.port, 'GET http://abs.test:8080/y?q=1 HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n');
      assert.equal(r.status, 200);
      const got = seen[before];
      assert.equal(got?.url, '/y?q=1');
      assert.equal(got.headers.host, 'abs.test:8080');
      assert.equal(got.headers['x-forwarded-host'], 'abs.test:8080');
      const bare = await raw(lb.addresses.data.port, 'GET HTTP://abs.test HTTP/1.1\r\nHost: abs.test\r\nConnection: close\r\n\r\n');
      assert.equal(bare.status, 200);
      assert.equal(seen.at(-1)?.url, '/');
      await expectRefusals({});
    });

    it('400 for absolute-form with userinfo, and for an authority-form or asterisk target on GET', async () => {
      for (const line of ['GET http://user:pw@abs.test/ HTTP/1.1', 'GET * HTTP/1.1', 'GET ftp://abs.test/ HTTP/1.1']) {
        const r = await neverForwarded(() => raw(lb.addresses.data.port, `${line}\r\nHost: abs.test\r\n\r\n`));
        assert.equal(r.status, 400, line);
        assert.equal(errorOf(r).error, 'LB_BAD_REQUEST');
      }
      await expectRefusals({ bad_target: 3 });
    });

    it('405 LB_METHOD_NOT_ALLOWED for CONNECT (no tunnels to arbitrary hosts)', async () => {
      const r = await neverForwarded(() => raw(lb.addresses.data.port, 'CONNECT internal.test:22 HTTP/1.1\r\nHost: internal.test:22\r\n\r\n'));
      assert.equal(r.status, 405);
      assert.equal(r.headers.allow, ALLOW);
      assert.equal(errorOf(r).error, 'LB_METHOD_NOT_ALLOWED');
      await expectRefusals({ connect_method: 1 });
    });

    it('OPTIONS * is answered by the balancer itself: 200 with Allow', async () => {
      const r = await neverForwarded(() => raw(lb.addresses.data.port, 'OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
      assert.equal(r.status, 200);
      assert.equal(r.headers.allow, ALLOW);
      assert.equal(r.headers['content-length'], '0');
      await expectRefusals({});
    });
  });

  describe('header injection', () => {
    for (const [what, value] of [
      ['a bare CR', 'abc\rX-Injected: 1'],
      ['a bare LF', 'abc\nX-Injected: 1'],
      ['a NUL', 'abc\0def'],
      ['an obs-fold continuation line', 'abc\r\n X-Injected: 1'],
    ] as const) {
      it(`refuses an X-Request-Id with ${what} (400, never forwarded)`, async () => {
        const r = await neverForwarded(() => raw(lb.addresses.data.port, `GET /inject HTTP/1.1\r\nHost: a\r\nX-Request-Id: ${value}\r\n\r\n`));
        assert.equal(r.status, 400);
        assert.equal(errorOf(r).error, 'LB_BAD_REQUEST');
        await expectRefusals({ malformed: 1 });
      });
    }

    it('what the balancer adds or echoes never carries CR or LF, upstream or back to the client', async () => {
      const before = seen.length;
      const tricky = 'id%0d%0aX-Injected:%201\tcaf\xe9';
      const r = await raw(
        lb.addresses.data.port,
        `GET /echo HTTP/1.1\r\nHost: site.test\r\nX-Request-Id: ${tricky}\r\nX-Forwarded-For: 10.0.0.1%0d%0a\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(r.status, 200);
      const got = seen[before];
      assert.ok(got);
      // The upstream got the headers we expect, each value free of CR/LF, and nothing injected.
      for (let i = 0; i < got.rawHeaders.length; i += 2) assert.doesNotMatch(`${got.rawHeaders[i] ?? ''}${got.rawHeaders[i + 1] ?? ''}`, /[\r\n]/);
      const names = got.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase()).sort();
      assert.deepEqual(names, ['connection', 'host', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id']);
      assert.equal(got.headers['x-request-id'], tricky);
      // An untrusted client's X-Forwarded-For is replaced, not echoed (faults.spec.ts: trust boundary).
      assert.equal(got.headers['x-forwarded-for'], '127.0.0.1');
      // The client's response head is well formed line by line; the id comes back as sent.
      const head = r.text.slice(0, r.text.indexOf('\r\n\r\n'));
      for (const line of head.split('\r\n').slice(1)) assert.match(line, /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [^\r\n]*$/, line);
      assert.equal(r.headers['x-request-id'], tricky);
      assert.equal(r.headers['x-injected'], undefined);
      await expectRefusals({});
    });
  });

  describe('slow clients', () => {
    it(`408 LB_CLIENT_TIMEOUT for headers trickled past ${HEADER_TIMEOUT_MS} ms, while a normal client is served`, async () => {
      const before = seen.length;
      const started = Date.now();
      const socket = connect(lb.addresses.data.port, '127.0.0.1');
      let text = '';
      let closedAt = 0;
      socket.setEncoding('latin1');
      socket.on('data', (c: string) => (text += c));
      socket.on('error', () => undefined);
      socket.on('close', () => (closedAt = Date.now()));
      const trickle = 'GET /slowloris HTTP/1.1\r\nHost: a\r\nX-Slow: ' + 'a'.repeat(100);
      let sent = 0;
      const timer = setInterval(() => {
        if (sent < trickle.length && !socket.destroyed) socket.write(trickle.charAt(sent++));
      }, 100);
      try {
        // Meanwhile, normal requests keep being served: answered while the slow client is still
        // open, so not held up by it.
        let served = 0;
        let servedWhileOpen = 0;
        while (closedAt === 0 && Date.now() - started < 3000) {
          const res = await request(`${lb.url}/normal`);
          assert.equal(res.statusCode, 200);
          await res.body.text();
          served++;
          if (!socket.destroyed) servedWhileOpen++;
        }
        await waitFor(() => closedAt > 0, 3000, 'slow client closed');
        assert.ok(servedWhileOpen >= 2, `served ${served} normal requests, ${servedWhileOpen} while the slow client was open`);
      } finally {
        clearInterval(timer);
      }
      const r = parseReply(text, true, closedAt - started);
      assert.equal(r.status, 408, text);
      assert.equal(errorOf(r).error, 'LB_CLIENT_TIMEOUT');
      assert.ok(r.ms >= HEADER_TIMEOUT_MS - 50, `closed after ${r.ms} ms`);
      // Cut by the header timeout while the headers were still trickling in (not at their end).
      assert.ok(sent > 3 && sent < trickle.length, 'it was still sending when cut');
      assert.ok(!seen.slice(before).some((s) => s.url === '/slowloris'), 'the slow request never reached the upstream');
      await expectRefusals({ header_timeout: 1 });
    });

    it('a flood of 200 slow clients does not stop others being served, and every one is cut', async () => {
      const flood: { socket: Socket; closed: boolean; text: string }[] = [];
      for (let i = 0; i < 200; i++) {
        const socket = connect(lb.addresses.data.port, '127.0.0.1');
        const c = { socket, closed: false, text: '' };
        socket.setEncoding('latin1');
        socket.on('data', (d: string) => (c.text += d));
        socket.on('error', () => undefined);
        socket.on('close', () => (c.closed = true));
        // A third send nothing, a third part of a head and go silent, a third trickle a header value.
        if (i % 3 === 1) socket.write('GET /flood HTTP/1.1\r\nHost: a\r\n');
        if (i % 3 === 2) socket.write('GET /flood HTTP/1.1\r\nHost: a\r\nX-Slow: ');
        flood.push(c);
      }
      const trickler = setInterval(() => {
        for (const [i, c] of flood.entries()) if (i % 3 === 2 && !c.closed) c.socket.write('a');
      }, 100);
      try {
        for (let i = 0; i < 10; i++) {
          const res = await request(`${lb.url}/during-flood`);
          assert.equal(res.statusCode, 200);
          await res.body.text();
        }
        await waitFor(() => flood.every((c) => c.closed), 5000, 'every slow client cut');
      } finally {
        clearInterval(trickler);
        for (const c of flood) c.socket.destroy();
      }
      const answered408 = flood.filter((c) => c.text.startsWith('HTTP/1.1 408 ')).length;
      assert.equal(answered408, 200, 'each got a 408');
      const res = await request(`${lb.url}/after-flood`);
      assert.equal(res.statusCode, 200);
      await res.body.text();
      await expectRefusals({ header_timeout: 200 });
    });

    it('an upload slower than the header timeout is not cut (the whole-request timeout is off)', async () => {
      const socket = connect(lb.addresses.data.port, '127.0.0.1');
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (c: string) => (text += c));
      socket.on('error', () => undefined);
      socket.write('POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n');
      const started = Date.now();
      let chunks = 0;
      let done = false;
      // One chunk per 100 ms until twice the header timeout has passed, then the last chunk.
      const uploader = setInterval(() => {
        if (Date.now() - started < HEADER_TIMEOUT_MS * 2) {
          socket.write('5\r\nhello\r\n');
          chunks++;
        } else {
          socket.write('0\r\n\r\n');
          done = true;
          clearInterval(uploader);
        }
      }, 100);
      try {
        await waitFor(() => done && text.includes(`ok ${chunks * 5}`), 4000, 'the upload answer');
      } finally {
        clearInterval(uploader);
        socket.destroy();
      }
      assert.ok(chunks >= 8, `${chunks} chunks`);
      assert.match(text, /^HTTP\/1\.1 200 /);
      await expectRefusals({});
    });

    it('closes an idle keep-alive connection after the client keep-alive timeout', async () => {
      const socket = connect(lb.addresses.data.port, '127.0.0.1');
      let text = '';
      let closedAt = 0;
      socket.setEncoding('latin1');
      socket.on('data', (c: string) => (text += c));
      socket.on('error', () => undefined);
      socket.on('close', () => (closedAt = Date.now()));
      socket.write('GET /keep HTTP/1.1\r\nHost: a\r\n\r\n');
      await waitFor(() => text.includes('ok 0'), 2000, 'the response');
      const answered = Date.now();
      // Node closes about 1 s after the advertised Keep-Alive timeout (300 ms here; its default is 5 s).
      await waitFor(() => closedAt > 0, 3000, 'idle connection closed');
      assert.ok(closedAt - answered < 2500, `closed after ${closedAt - answered} ms`);
      assert.match(text, /keep-alive/i);
      await expectRefusals({});
    });
  });

  describe('server options (unit)', () => {
    it('sizes, timeouts and the check interval come from the config; no whole-request deadline', () => {
      const registry = testRegistry();
      const config = testConfig([1], { clientHeaderTimeoutMs: 10_000, clientKeepAliveTimeoutMs: 7000, maxHeaderBytes: 8192 });
      const guard = createClientGuard({ config, metrics: createMetrics(registry), logger: silentLogger });
      assert.deepEqual(guard.serverOptions, {
        maxHeaderSize: 8192,
        headersTimeout: 10_000,
        requestTimeout: 0,
        keepAliveTimeout: 7000,
        connectionsCheckingInterval: 1000,
        requireHostHeader: false,
      });
      void registry.stop();
    });
  });

  describe('afterwards', () => {
    it('is still serving after all of the above', async () => {
      const res = await request(`${lb.url}/still-alive`);
      assert.equal(res.statusCode, 200);
      await res.body.text();
      await expectRefusals({});
    });
  });
});
