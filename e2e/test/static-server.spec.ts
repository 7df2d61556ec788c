/**
 * scripts/static-server.mjs, the page server of `npm start`, against fake balancer ports: the same
 * URLs and headers as the nginx config, streaming both ways, client aborts passed on.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http, { type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../../scripts/cluster-lib.mjs';
import { CSP, createUiServer, type UiServer } from '../../scripts/static-server.mjs';
import { pollUntil } from '../../scripts/poll.mjs';

interface Seen {
  port: 'data' | 'admin';
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A raw request (no URL normalisation, unlike fetch). */
function raw(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((ok, ko) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        ok({ status: res.statusCode ?? 0, headers: res.headers, body: text });
      });
    });
    req.on('error', ko);
    req.end(body);
  });
}

const close = (s: Server) =>
  new Promise<void>((ok, ko) => {
    s.closeAllConnections();
    s.close((e) => {
      if (e) ko(e);
      else ok();
    });
  });

const until = (what: string, check: () => boolean, timeoutMs = 5000) => pollUntil(what, check, timeoutMs);

describe('scripts/static-server.mjs', () => {
  let dir = '';
  let data: Server;
  let admin: Server;
  let ui: UiServer;
  let port = 0;
  const seen: Seen[] = [];
  const closedEarly: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lcb-static-'));
    await mkdir(join(dir, 'root', 'assets'), { recursive: true });
    await writeFile(join(dir, 'root', 'index.html'), '<!doctype html><title>t</title>');
    await writeFile(join(dir, 'root', 'assets', 'main-ABC123.js'), 'console.log(1)');
    await writeFile(join(dir, 'secret.txt'), 'outside the root');

    const record = (which: Seen['port']) => (req: http.IncomingMessage, res: http.ServerResponse) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        seen.push({ port: which, method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        if (req.url?.startsWith('/images/slow')) return; // never answers; see the abort test
        if (req.url === '/api/events') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('event: snapshot\ndata: {"time":1}\n\n'); // then stays open
          return;
        }
        res.writeHead(which === 'data' ? 201 : 200, {
          'content-type': 'application/json',
          'x-upstream': '127.0.0.1:8002',
          connection: 'x-hop-reply',
          'x-hop-reply': 'must not pass',
        });
        res.end(JSON.stringify({ port: which, method: req.method, body }));
      });
      req.on('close', () => {
        if (!res.writableEnded) closedEarly.push(req.url ?? '');
      });
    };
    data = http.createServer(record('data'));
    admin = http.createServer(record('admin'));
    data.listen(0, '127.0.0.1');
    admin.listen(0, '127.0.0.1');
    await Promise.all([once(data, 'listening'), once(admin, 'listening')]);
    ui = createUiServer({
      root: join(dir, 'root'),
      balancer: { host: '127.0.0.1', port: (data.address() as AddressInfo).port },
      admin: { host: '127.0.0.1', port: (admin.address() as AddressInfo).port },
    });
    port = await ui.listen(0);
  });

  after(async () => {
    await ui.close();
    await close(data);
    await close(admin);
    await rm(dir, { recursive: true, force: true });
  });

  it('serves index.html revalidated with the CSP, and answers 304 to a matching ETag', async () => {
    for (const path of ['/', '/index.html']) {
      const r = await raw(port, 'GET', path);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
      assert.equal(r.headers['cache-control'], 'no-cache');
      assert.equal(r.headers['content-security-policy'], CSP);
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.equal(r.body, '<!doctype html><title>t</title>');
      const again = await raw(port, 'GET', path, { 'if-none-match': String(r.headers.etag) });
      assert.equal(again.status, 304);
      assert.equal(again.body, '');
    }
    const head = await raw(port, 'HEAD', '/');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });

  it('serves hashed assets as immutable', async () => {
    const r = await raw(port, 'GET', '/assets/main-ABC123.js');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(r.headers['cache-control'], 'public, max-age=31536000, immutable');
  });

  it('never serves files outside the root', async () => {
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt', '/%00', '/nope.js']) {
      const r = await raw(port, 'GET', path);
      assert.ok(r.status === 404 || r.status === 400, `${path} -> ${r.status}`);
      assert.doesNotMatch(r.body, /outside the root/);
    }
  });

  it('answers 405 to other methods on the page and on /api/, without bothering the balancer', async () => {
    const before = seen.length;
    const page = await raw(port, 'POST', '/', {}, 'x');
    assert.equal(page.status, 405);
    assert.equal(page.headers.allow, 'GET, HEAD');
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const r = await raw(port, method, '/api/upstreams', { 'content-type': 'application/json' }, '{}');
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.allow, 'GET, HEAD');
      assert.deepEqual(JSON.parse(r.body), { error: 'METHOD_NOT_ALLOWED', message: 'only GET and HEAD are allowed on /api/ without a bearer token' });
    }
    assert.equal(seen.length, before);
  });

  it('passes writes to /api/ with a bearer token through to the admin port (the balancer checks it)', async () => {
    const r = await raw(port, 'PUT', '/api/policy', { 'content-type': 'application/json', authorization: 'Bearer t' }, '{"policy":"p2c"}');
    assert.equal(r.status, 200);
    assert.equal(seen.at(-1)?.port, 'admin');
    assert.equal(seen.at(-1)?.method, 'PUT');
  });

  it('proxies /api/ to the admin port and /images/ (any method, with body) to the data port', async () => {
    const api = await raw(port, 'GET', '/api/upstreams?x=1');
    assert.equal(api.status, 200);
    assert.equal(seen.at(-1)?.port, 'admin');
    assert.equal(seen.at(-1)?.url, '/api/upstreams?x=1');

    const img = await raw(
      port,
      'POST',
      '/images/echo?nocache=5',
      { 'content-type': 'text/plain', connection: 'keep-alive, x-hop', 'x-hop': 'drop me', 'x-keep': 'keep me', 'http2-settings': 'AAMAAABk' },
      'hello',
    );
    assert.equal(img.status, 201);
    assert.deepEqual(JSON.parse(img.body), { port: 'data', method: 'POST', body: 'hello' });
    assert.equal(img.headers['x-upstream'], '127.0.0.1:8002');
    assert.equal(img.headers['x-hop-reply'], undefined, 'hop-by-hop reply header named in Connection is dropped');
    const req = seen.at(-1);
    assert.equal(req?.url, '/images/echo?nocache=5');
    assert.equal(req.headers['x-keep'], 'keep me');
    assert.equal(req.headers['x-hop'], undefined, 'hop-by-hop request header named in Connection is dropped');
    assert.equal(req.headers['http2-settings'], undefined, "the balancer's hop-by-hop list (hop-by-hop.ts) applies here too");
    assert.equal(req.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(req.headers['x-forwarded-proto'], 'http');
  });

  it('passes SSE events on at once, while the stream stays open', async () => {
    const first = await new Promise<string>((ok, ko) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/api/events', agent: false }, (res) => {
        assert.equal(res.headers['content-type'], 'text/event-stream');
        res.setEncoding('utf8');
        res.once('data', (chunk: string) => {
          ok(chunk);
          req.destroy();
        });
      });
      req.on('error', (e) => {
        if (!req.destroyed) ko(e);
      });
    });
    assert.equal(first, 'event: snapshot\ndata: {"time":1}\n\n');
  });

  it('cancels the upstream request when the client goes away', async () => {
    const req = http.get({ host: '127.0.0.1', port, path: '/images/slow?n=1', agent: false });
    req.on('error', () => undefined);
    await until('the slow request to reach the balancer', () => seen.some((s) => s.url === '/images/slow?n=1'));
    req.destroy();
    await until('the balancer to see the request go away', () => closedEarly.includes('/images/slow?n=1'));
  });

  it('answers JSON 502 when the balancer is not reachable', async () => {
    const [deadPort] = await freePorts(1);
    assert.ok(deadPort);
    const lonely = createUiServer({ root: join(dir, 'root'), balancer: { host: '127.0.0.1', port: deadPort }, admin: { host: '127.0.0.1', port: deadPort } });
    const p = await lonely.listen(0);
    try {
      for (const path of ['/images/1', '/api/events']) {
        const r = await raw(p, 'GET', path);
        assert.equal(r.status, 502, path);
        assert.equal(r.headers['content-type'], 'application/json');
        assert.equal((JSON.parse(r.body) as { error: string }).error, 'BALANCER_UNAVAILABLE');
      }
    } finally {
      await lonely.close();
      await lonely.close(); // idempotent
    }
  });
});
