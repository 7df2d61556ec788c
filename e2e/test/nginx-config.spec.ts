/**
 * nginx/default.conf.template and nginx/entrypoint/30-balancer-upstreams.sh: the server block plus
 * the balancer server lines the script writes once at start, checked with Debian's `nginx -t`
 * (1.22: given addresses, the lines have no `resolve`, which needs 1.27.3; the image's own
 * re-resolution is tested in e2e/test-compose/nginx-resolve.spec.ts), then run for real in front
 * of real balancers to prove what the config is for: cache headers, gzip, GET-only /api/,
 * unbuffered SSE, JSON errors (the balancer unreachable, and nginx's own refusals), recovery
 * without a reload, the stand-ins for the balancers' own ports (:8001, :9001), requests spread over
 * two active balancers sharing their counts, one client's /api/ kept on one of them, and no lost
 * request while one of them restarts (the other takes every request meanwhile).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from '../../scripts/require-tool.mjs';
import { REPO_ROOT, freePorts, missingBuild, startCluster, type Cluster } from '../../scripts/cluster-lib.mjs';
import type { Snapshot } from '../lib/balancer-api.js';
import { startOpenLoop } from '../load/open-loop.js';
import { summarize } from '../load/report.js';
import { pollUntil } from '../../scripts/poll.mjs';

const TEMPLATE = join(REPO_ROOT, 'nginx', 'default.conf.template');
const UPSTREAMS_SCRIPT = join(REPO_ROOT, 'nginx', 'entrypoint', '30-balancer-upstreams.sh');
/** Where the template includes the upstream lists from, in the image. */
const IMAGE_UPSTREAMS_DIR = '/etc/nginx/conf.d/upstreams';
/** Where the template includes its shared proxy settings from, in the image (nginx/snippets/ in the repository). */
const IMAGE_SNIPPETS_DIR = '/etc/nginx/snippets';
const REPO_SNIPPETS_DIR = join(REPO_ROOT, 'nginx', 'snippets');

/** Where the balancers are: names (or addresses) as in BALANCER_HOST. */
interface Balancers {
  hosts: string;
  port: number;
  adminPort: number;
}

/**
 * The server block as the image uses it (the template has no environment variables of its own),
 * reading the upstream lists from `dir`, after running the image's own script to write them.
 */
async function render(dir: string, balancers: Balancers): Promise<string> {
  const upstreams = join(dir, 'conf.d', 'upstreams');
  await mkdir(upstreams, { recursive: true });
  const r = spawnSync('bash', [UPSTREAMS_SCRIPT], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      BALANCER_HOST: balancers.hosts,
      BALANCER_PORT: String(balancers.port),
      BALANCER_ADMIN_PORT: String(balancers.adminPort),
      BALANCER_RESOLVER: '127.0.0.1',
      BALANCER_UPSTREAMS_DIR: upstreams,
    },
  });
  assert.equal(r.status, 0, `30-balancer-upstreams.sh failed:\n${r.stderr}`);
  return (await readFile(TEMPLATE, 'utf8')).replaceAll(`${IMAGE_UPSTREAMS_DIR}/`, `${upstreams}/`).replaceAll(`${IMAGE_SNIPPETS_DIR}/`, `${REPO_SNIPPETS_DIR}/`);
}

/** The image's /etc/nginx/nginx.conf, with every writable path moved into `dir`. */
function mainConf(dir: string): string {
  return `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log notice;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log ${dir}/access.log;
    sendfile on;
    keepalive_timeout 65;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    include ${dir}/conf.d/*.conf;
}
`;
}

let nginxBin: string | undefined;

/** The nginx binary; skips with a reason when it is missing, and fails under CI (requireTool). */
function requireNginx(ctx: Mocha.Context): string {
  nginxBin = requireTool(ctx, 'nginx');
  return nginxBin;
}

async function writeConfig(dir: string, serverConf: string): Promise<string> {
  await mkdir(join(dir, 'conf.d'), { recursive: true });
  await writeFile(join(dir, 'conf.d', 'default.conf'), serverConf);
  const conf = join(dir, 'nginx.conf');
  await writeFile(conf, mainConf(dir));
  return conf;
}

/** A running nginx: the page's server, and its stand-ins for the balancers' data and admin ports. */
interface Nginx {
  base: string;
  /** What the image serves on 8001: every path to a balancer's data port. */
  dataBase: string;
  /** What the image serves on 9001: every path to a balancer's admin port. */
  adminBase: string;
  stop(): Promise<void>;
}

/** Runs nginx in the foreground with the template rendered for `values`, on free loopback ports. */
async function startNginx(balancers: Balancers): Promise<Nginx> {
  const dir = await mkdtemp(join(tmpdir(), 'lcb-nginx-run-'));
  // Workers run as nobody when the master is root: they must reach the temp dirs.
  await chmod(dir, 0o755);
  const [port, dataPort, adminPort] = await freePorts(3);
  assert.ok(port && dataPort && adminPort);
  const rendered = (await render(dir, balancers))
    // The only edits: free loopback ports instead of 8080, 8001 and 9001, the fresh build instead of the image's copy.
    .replace('listen 8080;', `listen 127.0.0.1:${port};`)
    .replace('listen 8001;', `listen 127.0.0.1:${dataPort};`)
    .replace('listen 9001;', `listen 127.0.0.1:${adminPort};`)
    .replace('root /usr/share/nginx/html;', `root ${join(REPO_ROOT, 'frontend', 'dist')};`);
  for (const p of [port, dataPort, adminPort]) assert.match(rendered, new RegExp(`listen 127\\.0\\.0\\.1:${p};`));
  assert.doesNotMatch(rendered, /listen (8080|8001|9001);/, 'every server listens on a free loopback port');
  assert.ok(rendered.includes(`root ${join(REPO_ROOT, 'frontend', 'dist')};`));
  const conf = await writeConfig(dir, rendered);
  const proc = spawn(nginxBin ?? 'nginx', ['-p', dir, '-c', conf, '-e', join(dir, 'error.log'), '-g', 'daemon off;'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = once(proc, 'exit');
  const base = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await until('nginx to listen', async () => ((await fetch(`${base}/`)).ok ? true : undefined));
  } catch (err) {
    await stop();
    throw err;
  }
  return { base, dataBase: `http://127.0.0.1:${dataPort}`, adminBase: `http://127.0.0.1:${adminPort}`, stop };
}

/**
 * Reads Server-Sent Events for up to 5 s and returns when each of the first five arrived (ms after
 * the request started) plus the text.
 */
async function eventArrivals(url: string): Promise<{ arrivals: number[]; text: string; res: Response }> {
  const controller = new AbortController();
  const started = Date.now();
  const res = await fetch(url, { signal: controller.signal });
  assert.ok(res.body);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const arrivals: number[] = [];
  let text = '';
  const timer = setTimeout(() => {
    controller.abort();
  }, 5000);
  try {
    while (arrivals.length < 5) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      const events = text.split('\n\n').length - 1;
      while (arrivals.length < events) arrivals.push(Date.now() - started);
    }
  } catch {
    // aborted after 5 s: the assertions below say what was missing
  } finally {
    clearTimeout(timer);
    controller.abort();
    await reader.cancel().catch(() => undefined);
  }
  return { arrivals, text, res };
}

/**
 * Events that arrive one by one, not in a lump when a buffer fills or the stream ends: a buffer
 * would hold the first back and hand over the first five together. By order, not by a stopwatch:
 * five within the read's 5 s, and spread over at least two and a half of the source's 100 ms ticks
 * (a lower bound, which holds on any machine).
 */
function assertStreamed(arrivals: number[]): void {
  assert.ok(arrivals.length >= 5, `only ${arrivals.length} events in 5 s`);
  const spread = (arrivals[4] ?? 0) - (arrivals[0] ?? 0);
  assert.ok(spread >= 250, `events came in a lump (arrivals ${arrivals.join(', ')} ms)`);
}

/** Size of the stream the backpressure test offers; ~10 MB fit into loopback socket buffers. */
const FLOOD_BYTES = 40e6;

/** Polls `fn` (a throw counts as "not yet") until it gives a value. */
const until = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000) =>
  pollUntil(what, fn, timeoutMs, { intervalMs: 100, retryErrors: true }) as Promise<T>;

/** `server` on a free loopback port as the only balancer (data and admin), with nginx in front; stop() ends both. */
async function startInFrontOf(server: Server): Promise<{ nginx: Nginx; stop(): Promise<void> }> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address() as AddressInfo;
  const nginx = await startNginx({ hosts: '127.0.0.1', port: addr.port, adminPort: addr.port });
  return {
    nginx,
    stop: async () => {
      await nginx.stop();
      server.closeAllConnections();
      await new Promise<void>((ok) => {
        server.close(() => {
          ok();
        });
      });
    },
  };
}

describe('nginx/default.conf.template', function () {
  let dir = '';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lcb-nginx-'));
    // Workers run as nobody when the master is root: they must reach the temp dirs.
    await chmod(dir, 0o755);
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('has no environment variables for envsubst; the upstreams keep a zone and keep-alive, and no request waits for DNS', async () => {
    const template = await readFile(TEMPLATE, 'utf8');
    assert.doesNotMatch(template, /\$\{[A-Za-z_]/, 'the balancer names come from the script\'s server lines, not from envsubst');
    assert.doesNotMatch(template, /proxy_pass\s+\$/, 'a variable in proxy_pass would resolve on the request path');
    for (const name of ['balancer_data', 'balancer_admin']) {
      const block = new RegExp(`upstream ${name} \\{[^}]*\\}`).exec(template)?.[0] ?? '';
      assert.match(block, /zone \w+ \d+k;/, `${name}: \`resolve\` needs the upstream in a shared zone`);
      assert.match(block, /keepalive \d+;/, `${name}: keep-alive to the balancers`);
    }
    assert.match(template, /^include \/etc\/nginx\/conf\.d\/upstreams\/resolver\.inc;/m, 'the resolver the names are re-resolved with');
  });

  it('writes every balancer as an equal server, none `backup`; names get `resolve`, addresses do not', async () => {
    const upstreams = join(dir, 'conf.d', 'upstreams');
    const servers = async (file: string): Promise<string[]> => (await readFile(join(upstreams, file), 'utf8')).split('\n').filter((l) => l.startsWith('server '));
    await render(dir, { hosts: '127.0.0.1, 127.0.0.2', port: 8001, adminPort: 9001 });
    assert.deepEqual(await servers('data.inc'), ['server 127.0.0.1:8001 max_fails=1 fail_timeout=2s;', 'server 127.0.0.2:8001 max_fails=1 fail_timeout=2s;']);
    assert.deepEqual(await servers('admin.inc'), ['server 127.0.0.1:9001 max_fails=1 fail_timeout=2s;', 'server 127.0.0.2:9001 max_fails=1 fail_timeout=2s;']);
    // One name per balancer service: nginx makes a server of each of its addresses (every replica).
    await render(dir, { hosts: 'balancer', port: 8001, adminPort: 9001 });
    assert.deepEqual(await servers('data.inc'), ['server balancer:8001 resolve max_fails=1 fail_timeout=2s;']);
    assert.deepEqual(await servers('admin.inc'), ['server balancer:9001 resolve max_fails=1 fail_timeout=2s;']);
    assert.equal(await readFile(join(upstreams, 'resolver.inc'), 'utf8'), 'resolver 127.0.0.1 valid=1s ipv6=off;\n');
  });

  it('spreads data requests by least connections and keeps a client\'s /api/ on one balancer (hash of its address)', async () => {
    const template = await readFile(TEMPLATE, 'utf8');
    const block = (name: string): string => new RegExp(`upstream ${name} \\{[^}]*\\}`).exec(template)?.[0] ?? '';
    assert.match(block('balancer_data'), /^\s*least_conn;/m);
    // Not `consistent`: under it nginx 1.30 hands a `resolve` name's addresses out in turn.
    assert.match(block('balancer_admin'), /^\s*hash \$remote_addr;/m);
    assert.doesNotMatch(template, /\bbackup\b[^\n]*;/, 'no balancer waits as a standby');
  });

  it('takes the resolver from /etc/resolv.conf unless BALANCER_RESOLVER is set, and exits: nothing keeps watching', async () => {
    const upstreams = join(dir, 'once');
    const r = spawnSync('bash', [UPSTREAMS_SCRIPT], {
      encoding: 'utf8',
      timeout: 10_000,
      env: { PATH: process.env.PATH, BALANCER_HOST: 'lb', BALANCER_PORT: '8001', BALANCER_ADMIN_PORT: '9001', BALANCER_UPSTREAMS_DIR: upstreams },
    });
    // It returns instead of starting a watch loop: exit status 0 and no signal (a loop would be
    // killed by spawnSync's 10 s timeout, leaving status null and SIGTERM).
    assert.equal(r.signal, null);
    assert.equal(r.status, 0, r.stderr);
    const nameservers = (await readFile('/etc/resolv.conf', 'utf8'))
      .split('\n')
      .map((l) => /^nameserver\s+(\S+)/.exec(l)?.[1])
      .filter((ns): ns is string => ns !== undefined)
      .map((ns) => (ns.includes(':') ? `[${ns}]` : ns));
    assert.ok(nameservers.length > 0, 'this machine has a nameserver');
    assert.equal(await readFile(join(upstreams, 'resolver.inc'), 'utf8'), `resolver ${nameservers.join(' ')} valid=1s ipv6=off;\n`);
    assert.match(r.stdout, /balancers lb, every address active/);
  });

  it('refuses bad settings with a message instead of writing a broken config', () => {
    const attempt = (env: Record<string, string>): { status: number | null; stderr: string } =>
      spawnSync('bash', [UPSTREAMS_SCRIPT], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, BALANCER_PORT: '8001', BALANCER_ADMIN_PORT: '9001', BALANCER_RESOLVER: '127.0.0.1', BALANCER_UPSTREAMS_DIR: join(dir, 'refused'), ...env },
      });
    const none = attempt({ BALANCER_HOST: ' , ' });
    assert.equal(none.status, 1);
    assert.match(none.stderr, /BALANCER_HOST names no balancer/);
    const valid = attempt({ BALANCER_HOST: 'lb', BALANCER_RESOLVE_VALID: '1.5s' });
    assert.equal(valid.status, 1);
    assert.match(valid.stderr, /BALANCER_RESOLVE_VALID must be a whole number of seconds \(got '1\.5s'\)/);
  });

  it('passes `nginx -t` once rendered', async function () {
    const bin = requireNginx(this);
    const conf = await writeConfig(dir, await render(dir, { hosts: '127.0.0.1', port: 8001, adminPort: 9001 }));
    const r = spawnSync(bin, ['-t', '-p', dir, '-c', conf, '-e', join(dir, 'error.log')], { encoding: 'utf8' });
    assert.equal(r.status, 0, `nginx -t failed:\n${r.stderr}`);
    assert.match(r.stderr, /syntax is ok/);
    assert.match(r.stderr, /test is successful/);
  });

  it('`nginx -t` rejects a broken render (the check can fail)', async function () {
    const bin = requireNginx(this);
    const conf = await writeConfig(dir, await render(dir, { hosts: '127.0.0.1', port: 8001, adminPort: 9001 }));
    // What nginx would see had the script not run: no upstream list to include.
    await rm(join(dir, 'conf.d', 'upstreams'), { recursive: true, force: true });
    const r = spawnSync(bin, ['-t', '-p', dir, '-c', conf, '-e', join(dir, 'error.log')], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
  });

  // No balancer runs behind these: every answer below is nginx's own.
  describe("nginx's own refusals", function () {
    let nginx: { base: string; stop(): Promise<void> } | undefined;
    let port = 0;

    before(async function () {
      requireNginx(this);
      [port = 0] = await freePorts(1);
      nginx = await startNginx({ hosts: '127.0.0.1', port, adminPort: port });
    });

    after(async () => {
      await nginx?.stop();
    });

    /** One raw HTTP/1.1 exchange (fetch refuses TRACE and cannot send an oversized header). */
    const raw = async (request: string): Promise<{ status: number; headers: string; body: string }> => {
      const { port: nginxPort } = new URL(nginx?.base ?? '');
      const socket = connect(Number(nginxPort), '127.0.0.1');
      socket.setEncoding('utf8');
      let text = '';
      socket.on('data', (chunk: string) => (text += chunk));
      socket.write(request);
      await once(socket, 'end');
      socket.destroy();
      const [head = '', body = ''] = text.split('\r\n\r\n');
      return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), headers: head, body };
    };

    const expectJson = (res: { status: number; headers: string; body: string }, status: number, code: string): void => {
      assert.equal(res.status, status, res.headers);
      assert.match(res.headers, /\r\nContent-Type: application\/json/i);
      assert.equal((JSON.parse(res.body) as { error: string }).error, code);
    };

    it('TRACE: 405 LB_EDGE_METHOD_NOT_ALLOWED', async () => {
      expectJson(await raw('TRACE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 405, 'LB_EDGE_METHOD_NOT_ALLOWED');
    });

    it('a header over 8 KB: 400 LB_EDGE_HEADERS_TOO_LARGE', async () => {
      expectJson(await raw(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(9000)}\r\nConnection: close\r\n\r\n`), 400, 'LB_EDGE_HEADERS_TOO_LARGE');
    });

    it('a request line over 8 KB: 414 LB_EDGE_URI_TOO_LONG', async () => {
      expectJson(await raw(`GET /${'a'.repeat(9000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`), 414, 'LB_EDGE_URI_TOO_LONG');
    });

    it('a malformed request: 400 LB_EDGE_BAD_REQUEST', async () => {
      expectJson(await raw('GET / HTTP/1.1\r\nConnection: close\r\n\r\n'), 400, 'LB_EDGE_BAD_REQUEST');
    });

    it('an unknown page: 404 LB_EDGE_NOT_FOUND', async () => {
      const res = await fetch(`${nginx?.base ?? ''}/no-such-page`);
      assert.equal(res.status, 404);
      assert.equal(((await res.json()) as { error: string }).error, 'LB_EDGE_NOT_FOUND');
    });

    it('a body over 1 MB to /images/: 413 LB_EDGE_BODY_TOO_LARGE, before any balancer is asked', async () => {
      expectJson(await raw('POST /images/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nConnection: close\r\n\r\n'), 413, 'LB_EDGE_BODY_TOO_LARGE');
    });

    it('a write to /api/metrics: 403 LB_EDGE_FORBIDDEN', async () => {
      const res = await fetch(`${nginx?.base ?? ''}/api/metrics`, { method: 'DELETE' });
      assert.equal(res.status, 403);
      assert.equal(((await res.json()) as { error: string }).error, 'LB_EDGE_FORBIDDEN');
    });

    it('the error pages themselves are not reachable from outside', async () => {
      const res = await fetch(`${nginx?.base ?? ''}/_edge/forbidden`);
      assert.equal(res.status, 404);
    });
  });

  // The balancer sends `X-Accel-Buffering: no`, which alone turns nginx's buffering off; this
  // upstream does not, so only the config's own `proxy_buffering off` can keep the stream flowing.
  describe('with an event stream that does not ask nginx to stop buffering', function () {
    this.timeout(30_000);
    let written = 0;
    let running: Awaited<ReturnType<typeof startInFrontOf>> | undefined;
    let nginx: Nginx | undefined;

    before(async function () {
      requireNginx(this);
      const server = createServer((req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        if (req.url === '/api/flood') {
          const chunk = `data: ${'x'.repeat(1 << 20)}\n\n`;
          const pump = (): void => {
            while (written < FLOOD_BYTES) {
              written += chunk.length;
              if (!res.write(chunk)) {
                res.once('drain', pump);
                return;
              }
            }
          };
          pump();
          req.on('close', () => {
            res.destroy();
          });
          return;
        }
        // Small events, well under one proxy buffer: a buffering proxy would sit on them.
        const timer = setInterval(() => res.write(`event: snapshot\ndata: {"time":${Date.now()}}\n\n`), 100);
        req.on('close', () => {
          clearInterval(timer);
        });
      });
      running = await startInFrontOf(server);
      nginx = running.nginx;
    });

    after(async () => {
      await running?.stop();
    });

    it('holds a stream back for a client that does not read, instead of spooling it (proxy_buffering off)', async () => {
      assert.ok(nginx);
      // A raw socket that sends the request and never reads: only kernel buffers can fill up.
      const port = Number(new URL(nginx.base).port);
      const client = connect(port, '127.0.0.1');
      client.pause();
      client.write(`GET /api/flood HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
      try {
        // Wait until the upstream is stuck (nothing written for 500 ms) or everything went out.
        let last = -1;
        let still = 0;
        await until(
          'the flood to stop',
          () => {
            still = written === last ? still + 1 : 0;
            last = written;
            return Promise.resolve(written >= FLOOD_BYTES || still >= 5 ? true : undefined);
          },
          15_000,
        );
        // Buffering on, nginx reads all of it into temp files; off, it stops at the socket buffers.
        assert.ok(written < FLOOD_BYTES * 0.75, `nginx took ${(written / 1e6).toFixed(1)} MB from a stream nobody read`);
      } finally {
        client.destroy();
      }
    });

    it('passes each event on as it comes', async () => {
      assert.ok(nginx);
      const { arrivals, res } = await eventArrivals(`${nginx.base}/api/events`);
      assert.equal(res.status, 200);
      assertStreamed(arrivals);
    });
  });

  describe('after nginx\'s own 502 (nginx 1.30 drops a retry made after it re-resolved the balancers; cf. nginx/nginx#1656)', function () {
    this.timeout(30_000);
    const seen = new Map<string, number>();
    let running: Awaited<ReturnType<typeof startInFrontOf>> | undefined;
    let nginx: Nginx | undefined;

    before(async function () {
      requireNginx(this);
      // Resets the connection the first time a path comes (every time for /images/always-*), then answers it.
      const server = createServer((req, res) => {
        const key = `${req.method ?? ''} ${req.url ?? ''}`;
        const n = (seen.get(key) ?? 0) + 1;
        seen.set(key, n);
        if (n === 1 || (req.url ?? '').startsWith('/images/always-')) {
          req.socket.resetAndDestroy();
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`answered ${key} on try ${n}`);
      });
      running = await startInFrontOf(server);
      nginx = running.nginx;
    });

    after(async () => {
      await running?.stop();
    });

    it('sends an idempotent request without a body once more, on the page\'s /images/ and on :8001', async () => {
      assert.ok(nginx);
      for (const [base, path] of [[nginx.base, '/images/1'], [nginx.dataBase, '/anything'], [nginx.base, '/images/head']] as const) {
        const method = path.endsWith('head') ? 'HEAD' : 'GET';
        const res = await fetch(`${base}${path}`, { method });
        const text = await res.text();
        assert.equal(res.status, 200, `${method} ${path}: ${text}`);
        assert.equal(seen.get(`${method} ${path}`), 2, `${method} ${path} reached the balancer twice`);
      }
    });

    it('does not send a POST or a request with a body again: nginx\'s JSON 502', async () => {
      assert.ok(nginx);
      for (const [method, path, body] of [['POST', '/images/post', 'x'], ['GET', '/images/get-with-body', 'y']] as const) {
        const text = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          // fetch refuses a GET with a body: a raw request.
          const req = httpRequest(`${nginx?.base ?? ''}${path}`, { method, headers: { 'content-type': 'text/plain', 'content-length': String(body.length) } }, (res) => {
            let data = '';
            res.on('data', (c: Buffer) => (data += c.toString()));
            res.on('end', () => {
              resolve({ status: res.statusCode ?? 0, body: data });
            });
          });
          req.on('error', reject);
          req.end(body);
        });
        assert.equal(text.status, 502, `${method} ${path}`);
        assert.match(text.body, /"error":"BALANCER_UNAVAILABLE"/);
        assert.equal(seen.get(`${method} ${path}`), 1, `${method} ${path} reached the balancer once`);
      }
    });

    it('gives up after that one more time: JSON 502, two attempts', async () => {
      assert.ok(nginx);
      const res = await fetch(`${nginx.base}/images/always-1`);
      assert.equal(res.status, 502);
      assert.match(await res.text(), /"error":"BALANCER_UNAVAILABLE"/);
      assert.equal(seen.get('GET /images/always-1'), 2);
    });
  });

  describe('in front of a real balancer', function () {
    this.timeout(60_000);
    let cluster: Cluster | undefined;
    let nginx: Nginx | undefined;
    let base = '';

    before(async function () {
      requireNginx(this);
      if (missingBuild().length) throw new Error(`run \`npm run build\` first (missing ${missingBuild().join(', ')})`);
      cluster = await startCluster({ backends: 2, basePort: 0, balancerPort: 0, adminPort: 0, ui: false, delayScale: 0.02 });
      nginx = await startNginx({ hosts: '127.0.0.1', port: cluster.balancer.port, adminPort: Number(new URL(cluster.urls.admin).port) });
      base = nginx.base;
    });

    after(async () => {
      await nginx?.stop();
      await cluster?.stop();
    });

    it('serves index.html revalidated, with a CSP, and hashed assets immutable and gzipped', async () => {
      const res = await fetch(`${base}/`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
      assert.equal(res.headers.get('cache-control'), 'no-cache');
      assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
      const html = await res.text();
      const js = /src="(\/assets\/main-[A-Z0-9]+\.js)"/.exec(html)?.[1];
      const css = /href="(\/assets\/main-[A-Z0-9]+\.css)"/.exec(html)?.[1];
      assert.ok(js && css, 'index.html names hashed bundles');
      for (const asset of [js, css]) {
        const a = await fetch(`${base}${asset}`, { headers: { 'accept-encoding': 'gzip' } });
        assert.equal(a.status, 200, asset);
        assert.equal(a.headers.get('cache-control'), 'public, max-age=31536000, immutable');
        assert.equal(a.headers.get('content-encoding'), 'gzip', `${asset} is gzipped`);
        await a.arrayBuffer();
      }
      const missing = await fetch(`${base}/nope.txt`);
      assert.equal(missing.status, 404);
      await missing.arrayBuffer();
    });

    it('proxies /images/ to the balancer, errors from behind it unchanged', async () => {
      const res = await fetch(`${base}/images/1?nocache=${Date.now()}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'image/png');
      assert.ok(cluster?.upstreams.includes(res.headers.get('x-upstream') ?? ''), 'X-Upstream names one of our backends');
      assert.match(res.headers.get('x-backend-id') ?? '', /^backend-\d$/);
      assert.ok((await res.arrayBuffer()).byteLength > 0);
      const missing = await fetch(`${base}/images/9`);
      assert.equal(missing.status, 404);
      assert.equal(((await missing.json()) as { error: string }).error, 'IMAGE_NOT_FOUND');
    });

    it('allows only GET and HEAD on /api/ without a bearer token', async () => {
      const get = await fetch(`${base}/api/upstreams`);
      assert.equal(get.status, 200);
      const snap = (await get.json()) as { upstreams: { id: string }[] };
      assert.deepEqual(snap.upstreams.map((u) => u.id).sort(), [...(cluster?.upstreams ?? [])].sort());
      const head = await fetch(`${base}/api/upstreams`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      for (const method of ['POST', 'PUT', 'DELETE']) {
        const res = await fetch(`${base}/api/upstreams`, { method, body: method === 'DELETE' ? undefined : '{}' });
        assert.equal(res.status, 405, method);
        assert.equal(res.headers.get('allow'), 'GET, HEAD');
        assert.equal(((await res.json()) as { error: string }).error, 'METHOD_NOT_ALLOWED');
      }
    });

    it('streams /api/events event by event', async () => {
      const { arrivals, text, res } = await eventArrivals(`${base}/api/events`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.equal(res.headers.get('content-encoding'), null, 'gzip would hold events back');
      assertStreamed(arrivals);
      assert.match(text, /event: snapshot\ndata: \{/);
    });

    it('stands in for the balancer\'s own ports: :8001 passes every path to its data port, :9001 to its admin port', async () => {
      assert.ok(nginx);
      const image = await fetch(`${nginx.dataBase}/images/1`);
      assert.equal(image.status, 200);
      assert.equal(image.headers.get('content-type'), 'image/png');
      assert.ok(cluster?.upstreams.includes(image.headers.get('x-upstream') ?? ''), 'X-Upstream names one of our backends');
      await image.arrayBuffer();
      // Not only /images/: the data port proxies every path and method to a backend.
      const other = await fetch(`${nginx.dataBase}/no/such/path`, { method: 'POST', body: 'x' });
      assert.ok(other.headers.get('x-upstream'), 'answered by a backend through the balancer');
      await other.arrayBuffer();
      const health = await fetch(`${nginx.adminBase}/healthz`);
      assert.deepEqual(await health.json(), { status: 'ok' });
      const metrics = await fetch(`${nginx.adminBase}/metrics`);
      assert.match(await metrics.text(), /^# HELP lb_requests_total /m);
    });

    it('answers JSON 502 while the balancer is down and recovers when it is back, without a reload', async () => {
      assert.ok(cluster && nginx);
      await cluster.balancer.stop();
      const down = await fetch(`${base}/api/upstreams`);
      assert.equal(down.status, 502);
      assert.deepEqual(await down.json(), { error: 'BALANCER_UNAVAILABLE', message: 'the balancer is not reachable' });
      const image = await fetch(`${base}/images/1`);
      assert.equal(image.status, 502);
      assert.equal(((await image.json()) as { error: string }).error, 'BALANCER_UNAVAILABLE');
      for (const stand of [nginx.dataBase, nginx.adminBase]) {
        const res = await fetch(`${stand}/metrics`);
        assert.equal(res.status, 502, stand);
        assert.equal(((await res.json()) as { error: string }).error, 'BALANCER_UNAVAILABLE');
      }
      await cluster.balancer.restart();
      const back = await until('the balancer behind nginx', async () => {
        const r = await fetch(`${base}/api/upstreams`);
        return r.status === 200 ? r : undefined;
      });
      assert.ok(Array.isArray(((await back.json()) as { upstreams: unknown }).upstreams));
    });
  });

  describe('in front of two active balancers sharing their counts', function () {
    this.timeout(60_000);
    let cluster: Cluster | undefined;
    let second: ChildProcess | undefined;
    let startSecond: (() => Promise<void>) | undefined;
    let nginx: Nginx | undefined;
    let adminPort = 0;
    const stopSecond = async (): Promise<void> => {
      if (second?.exitCode === null && second.signalCode === null) {
        const exited = once(second, 'exit');
        second.kill('SIGTERM');
        await exited;
      }
    };
    /** Stops and starts each balancer by its address. */
    const handles = (): Record<string, { stop(): Promise<unknown>; restart(): Promise<void> }> => ({
      '127.0.0.1': { stop: () => cluster?.balancer.stop() ?? Promise.resolve(), restart: () => cluster?.balancer.restart() ?? Promise.resolve() },
      '127.0.0.2': { stop: stopSecond, restart: () => startSecond?.() ?? Promise.resolve() },
    });
    // The second balancer listens on another loopback address with the same ports, as a second
    // replica of the same image does on the Compose network; each sends the other its counts.
    const snapshotOf = async (origin: string): Promise<Snapshot> => {
      const res = await fetch(`${origin}/api/upstreams`);
      assert.equal(res.status, 200);
      return (await res.json()) as Snapshot;
    };
    const admin = (host: string): string => `http://${host}:${adminPort}`;
    const totalsOf = async (host: string): Promise<number> => (await snapshotOf(admin(host))).totals.requests;
    /** Which balancer answered: each lists only the other as its peer (both run on this host, so `instance` cannot tell them apart). */
    const answeredBy = (s: Snapshot): string => (s.peers[0]?.address.startsWith('127.0.0.2:') ? '127.0.0.1' : '127.0.0.2');

    before(async function () {
      requireNginx(this);
      if (missingBuild().length) throw new Error(`run \`npm run build\` first (missing ${missingBuild().join(', ')})`);
      const [port, admin_] = await freePorts(2);
      assert.ok(port && admin_);
      adminPort = admin_;
      // The peer port is the admin port's number over UDP, as in Compose (LB_PEERS_PORT 9001).
      const peerArgs = (other: string): string[] => ['--peers-port', String(adminPort), '--peer', `${other}:${adminPort}`];
      cluster = await startCluster({ backends: 2, basePort: 0, balancerPort: port, adminPort, ui: false, delayScale: 0.001, balancerArgs: peerArgs('127.0.0.2') });
      const upstreams = cluster.upstreams;
      startSecond = async () => {
        second = spawn(
          process.execPath,
          [
            join(REPO_ROOT, 'services', 'balancer', 'dist', 'main.js'),
            '--host', '127.0.0.2', '--port', String(port), '--admin-host', '127.0.0.2', '--admin-port', String(adminPort), '--log-level', 'warn',
            ...peerArgs('127.0.0.1'),
            ...upstreams,
          ],
          { stdio: ['ignore', 'inherit', 'inherit'] },
        );
        await until('the second balancer', async () => ((await fetch(`${admin('127.0.0.2')}/readyz`)).ok ? true : undefined));
      };
      await startSecond();
      await until('each balancer to see the other live', async () => {
        const views = await Promise.all([snapshotOf(admin('127.0.0.1')), snapshotOf(admin('127.0.0.2'))]);
        return views.every((v) => v.peers.some((p) => p.state === 'live')) ? true : undefined;
      });
      nginx = await startNginx({ hosts: '127.0.0.1 127.0.0.2', port, adminPort });
    });

    after(async () => {
      await nginx?.stop();
      await stopSecond();
      await cluster?.stop();
    });

    it('spreads requests over both balancers, neither a standby: each routes a share', async () => {
      assert.ok(nginx);
      const before = [await totalsOf('127.0.0.1'), await totalsOf('127.0.0.2')];
      const sent = 20;
      for (let i = 0; i < sent; i++) {
        const res: Response = await fetch(`${nginx.base}/images/1?n=${i}`);
        assert.equal(res.status, 200);
        await res.arrayBuffer();
      }
      // Counted once the backend's answer has fully arrived at the balancer: poll.
      const shares = await until('both balancers to count every request', async () => {
        const now = [(await totalsOf('127.0.0.1')) - (before[0] ?? 0), (await totalsOf('127.0.0.2')) - (before[1] ?? 0)];
        return now[0] !== undefined && now[1] !== undefined && now[0] + now[1] === sent ? now : undefined;
      });
      for (const share of shares) assert.ok(share >= sent / 4, `each balancer routes a share: ${shares.join(', ')}`);
    });

    it('keeps one client\'s /api/ on one balancer', async () => {
      assert.ok(nginx);
      const answered = new Set<string>();
      for (let i = 0; i < 10; i++) answered.add(answeredBy(await snapshotOf(nginx.base)));
      assert.equal(answered.size, 1, `one balancer answered every /api/ request: ${[...answered].join(', ')}`);
    });

    it('loses no request while one balancer stops and starts again: the other takes every request, and the client\'s /api/, meanwhile', async () => {
      assert.ok(nginx && cluster);
      const rate = 100;
      const durationMs = 5_000;
      const load = startOpenLoop({ origin: nginx.base, ratePerSecond: rate, durationMs, paths: ['/images/1'] });
      const finished = (): number => load.records.filter((r) => r.endAt > 0).length;
      await until('traffic through nginx', () => Promise.resolve(finished() >= rate / 2 ? true : undefined));
      // The one this client's /api/ is on: the page would follow it to the other.
      const leaving = answeredBy(await snapshotOf(nginx.base));
      const staying = leaving === '127.0.0.1' ? '127.0.0.2' : '127.0.0.1';
      const stayingBefore = await totalsOf(staying);
      await handles()[leaving]?.stop();
      assert.equal(answeredBy(await snapshotOf(nginx.base)), staying, '/api/ moved to the balancer that stayed');
      await until('requests through the balancer that stayed', async () => ((await totalsOf(staying)) >= stayingBefore + rate / 4 ? true : undefined));
      await handles()[leaving]?.restart();
      const result = summarize((await load.done).records);
      assert.equal(result.failed, 0, JSON.stringify(result.failedByKind));
      assert.ok(result.requests >= (rate * durationMs) / 1000 - 10, `${result.requests} requests`);
      // Back, it takes requests again.
      const backBefore = await totalsOf(leaving);
      await until('requests through the restarted balancer', async () => {
        const res = await fetch(`${nginx?.base ?? ''}/images/1`);
        await res.arrayBuffer();
        if (res.status !== 200) throw Object.assign(new Error(`status ${res.status} through nginx`), { fatal: true });
        return (await totalsOf(leaving)) > backBefore ? true : undefined;
      });
    });
  });
});
