/**
 * nginx/default.conf.template and nginx/entrypoint/30-balancer-upstreams.sh: the server block plus
 * the balancer upstream lists the script writes from DNS, checked with Debian's `nginx -t`, then
 * run for real in front of real balancers to prove what the config is for: cache headers, gzip,
 * GET-only /api/, unbuffered SSE, JSON errors while no balancer answers, recovery without a
 * reload, and no lost request while the active balancer restarts (the standby takes over).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from '../../scripts/require-tool.mjs';
import { REPO_ROOT, freePorts, missingBuild, startCluster, type Cluster } from '../../scripts/cluster-lib.mjs';
import { startOpenLoop } from '../load/open-loop.js';
import { summarize } from '../load/report.js';
import { pollUntil } from '../../scripts/poll.mjs';

const TEMPLATE = join(REPO_ROOT, 'nginx', 'default.conf.template');
const UPSTREAMS_SCRIPT = join(REPO_ROOT, 'nginx', 'entrypoint', '30-balancer-upstreams.sh');
/** Where the template includes the upstream lists from, in the image. */
const IMAGE_UPSTREAMS_DIR = '/etc/nginx/conf.d/upstreams';

/** Where the balancers are: names (or addresses) as in BALANCER_HOST, the active one first. */
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
      BALANCER_WATCH_INTERVAL: '0',
      BALANCER_UPSTREAMS_DIR: upstreams,
    },
  });
  assert.equal(r.status, 0, `30-balancer-upstreams.sh failed:\n${r.stderr}`);
  return (await readFile(TEMPLATE, 'utf8')).replaceAll(`${IMAGE_UPSTREAMS_DIR}/`, `${upstreams}/`);
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

/** Runs nginx in the foreground with the template rendered for `values`, on a free loopback port. */
async function startNginx(balancers: Balancers): Promise<{ base: string; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'lcb-nginx-run-'));
  // Workers run as nobody when the master is root: they must reach the temp dirs.
  await chmod(dir, 0o755);
  const [port] = await freePorts(1);
  assert.ok(port);
  const rendered = (await render(dir, balancers))
    // The only two edits: a free loopback port instead of 8080, the fresh build instead of the image's copy.
    .replace('listen 8080;', `listen 127.0.0.1:${port};`)
    .replace('root /usr/share/nginx/html;', `root ${join(REPO_ROOT, 'frontend', 'dist')};`);
  assert.match(rendered, new RegExp(`listen 127\\.0\\.0\\.1:${port};`));
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
  return { base, stop };
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

/** Events that arrive one by one, not in a lump when a buffer fills or the stream ends. */
function assertStreamed(arrivals: number[]): void {
  assert.ok(arrivals.length >= 5, `only ${arrivals.length} events in 5 s`);
  assert.ok((arrivals[0] ?? Infinity) < 1000, `first event after ${arrivals[0]} ms`);
  const spread = (arrivals[4] ?? 0) - (arrivals[0] ?? 0);
  assert.ok(spread >= 250, `events came in a lump (arrivals ${arrivals.join(', ')} ms)`);
}

/** Size of the stream the backpressure test offers; ~10 MB fit into loopback socket buffers. */
const FLOOD_BYTES = 40e6;

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/** Polls `fn` (a throw counts as "not yet") until it gives a value. */
const until = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000) =>
  pollUntil(what, fn, timeoutMs, { intervalMs: 100, retryErrors: true }) as Promise<T>;

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

  it('has no environment variables for envsubst, and no resolver on the request path', async () => {
    const template = await readFile(TEMPLATE, 'utf8');
    assert.doesNotMatch(template, /\$\{[A-Za-z_]/, 'the balancer addresses come from the upstream lists, not from envsubst');
    assert.doesNotMatch(template, /^\s*resolver\s/m, 'no request waits for DNS');
    assert.match(template, /upstream balancer_data \{[^}]*keepalive \d+;/, 'keep-alive to the balancers');
  });

  it('writes the active balancer first and the others as `backup` (one balancer sees every request)', async () => {
    const text = (await render(dir, { hosts: '127.0.0.1, 127.0.0.2 nope.invalid', port: 8001, adminPort: 9001 }), await readFile(join(dir, 'conf.d', 'upstreams', 'data.inc'), 'utf8'));
    const servers = text.split('\n').filter((l) => l.startsWith('server '));
    assert.deepEqual(servers, ['server 127.0.0.1:8001 max_fails=1 fail_timeout=2s;', 'server 127.0.0.2:8001 max_fails=1 fail_timeout=2s backup;']);
    const admin = await readFile(join(dir, 'conf.d', 'upstreams', 'admin.inc'), 'utf8');
    assert.match(admin, /server 127\.0\.0\.1:9001 /);
  });

  it('keeps watching DNS: rewrites the lists and reloads nginx only when the set changes, forking nothing but getent per round', async () => {
    // Stand-ins on PATH that log each call: DNS answers from files, an nginx that only records.
    const bin = join(dir, 'watch-bin');
    const calls = join(dir, 'watch-calls.log');
    const upstreams = join(dir, 'watch-upstreams');
    await mkdir(bin, { recursive: true });
    await mkdir(upstreams, { recursive: true });
    const logged = (name: string, then = ''): string => `#!/bin/bash\necho "${name} $*" >> '${calls}'\n${then}\n`;
    await writeFile(join(bin, 'getent'), logged('getent', `cat "${dir}/dns.$2" 2>/dev/null`), { mode: 0o755 });
    await writeFile(join(bin, 'nginx'), logged('nginx'), { mode: 0o755 });
    await writeFile(join(bin, 'sleep'), logged('sleep', 'exec /bin/sleep "$@"'), { mode: 0o755 });
    await writeFile(join(bin, 'sort'), logged('sort', 'exec /usr/bin/sort "$@"'), { mode: 0o755 });
    await writeFile(join(dir, 'dns.lb'), '10.9.0.1 STREAM lb\n');
    await writeFile(join(dir, 'dns.lb-b'), '10.9.0.2 STREAM lb-b\n');
    const child = spawn('bash', [UPSTREAMS_SCRIPT], {
      detached: true,
      stdio: 'ignore',
      env: {
        PATH: `${bin}:${process.env.PATH ?? ''}`,
        BALANCER_HOST: 'lb,lb-b',
        BALANCER_PORT: '8001',
        BALANCER_ADMIN_PORT: '9001',
        BALANCER_WATCH_INTERVAL: '0.1',
        BALANCER_FORGET_AFTER: '1',
        BALANCER_UPSTREAMS_DIR: upstreams,
      },
    });
    const log = async (): Promise<string[]> => (await readFile(calls, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    const servers = async (): Promise<string> => (await readFile(join(upstreams, 'data.inc'), 'utf8').catch(() => '')).split('\n').filter((l) => l.startsWith('server ')).join('\n');
    const until = async (what: string, check: () => Promise<boolean>): Promise<void> => {
      const deadline = Date.now() + 10_000;
      while (!(await check())) {
        assert.ok(Date.now() < deadline, `timed out waiting for ${what}; calls:\n${(await log()).join('\n')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      // Ten rounds with nothing changed: one getent per name each, no reload, no other process.
      await until('ten rounds of lookups', async () => (await log()).filter((l) => l.startsWith('getent')).length >= 22);
      const quiet = await log();
      assert.deepEqual(quiet.filter((l) => !l.startsWith('getent') && !l.startsWith('sort')), [], 'no sleep and no nginx call while DNS is unchanged');
      assert.equal(quiet.filter((l) => l.startsWith('sort')).length, 1, `sorted once, for the first list: ${quiet.join('\n')}`);
      assert.equal(await servers(), 'server 10.9.0.1:8001 max_fails=1 fail_timeout=2s;\nserver 10.9.0.2:8001 max_fails=1 fail_timeout=2s backup;');

      // The active balancer gets a new address (an upgrade): listed at once, the old one forgotten later.
      await writeFile(join(dir, 'dns.lb'), '10.9.0.3 STREAM lb\n');
      await until('the new address listed', async () => (await servers()).includes('10.9.0.3:8001'));
      await until('the old address forgotten', async () => !(await servers()).includes('10.9.0.1:8001'));
      assert.equal(await servers(), 'server 10.9.0.3:8001 max_fails=1 fail_timeout=2s;\nserver 10.9.0.2:8001 max_fails=1 fail_timeout=2s backup;');
      await until('the second reload', async () => (await log()).filter((l) => l === 'nginx -s reload').length === 2);
      assert.equal((await log()).filter((l) => l.startsWith('sleep')).length, 0);
    } finally {
      // The script returns after starting its watch loop in the background: end the whole group.
      try {
        process.kill(-(child.pid ?? 0), 'SIGTERM');
      } catch {
        // already gone
      }
    }
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

  // The balancer sends `X-Accel-Buffering: no`, which alone turns nginx's buffering off; this
  // upstream does not, so only the config's own `proxy_buffering off` can keep the stream flowing.
  describe('with an event stream that does not ask nginx to stop buffering', function () {
    this.timeout(30_000);
    let sse: Server | undefined;
    let written = 0;
    let nginx: { base: string; stop(): Promise<void> } | undefined;

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
      sse = server;
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const addr = server.address() as AddressInfo;
      nginx = await startNginx({ hosts: '127.0.0.1', port: addr.port, adminPort: addr.port });
    });

    after(async () => {
      await nginx?.stop();
      if (sse) {
        const server = sse;
        server.closeAllConnections();
        await new Promise<void>((ok) => {
          server.close(() => {
            ok();
          });
        });
      }
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

  describe('in front of a real balancer', function () {
    this.timeout(60_000);
    let cluster: Cluster | undefined;
    let nginx: { base: string; stop(): Promise<void> } | undefined;
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

    it('answers JSON 502 while the balancer is down and recovers when it is back, without a reload', async () => {
      assert.ok(cluster);
      await cluster.balancer.stop();
      const down = await fetch(`${base}/api/upstreams`);
      assert.equal(down.status, 502);
      assert.deepEqual(await down.json(), { error: 'BALANCER_UNAVAILABLE', message: 'the balancer is not reachable' });
      const image = await fetch(`${base}/images/1`);
      assert.equal(image.status, 502);
      assert.equal(((await image.json()) as { error: string }).error, 'BALANCER_UNAVAILABLE');
      await cluster.balancer.restart();
      const back = await until('the balancer behind nginx', async () => {
        const r = await fetch(`${base}/api/upstreams`);
        return r.status === 200 ? r : undefined;
      });
      assert.ok(Array.isArray(((await back.json()) as { upstreams: unknown }).upstreams));
    });
  });

  describe('in front of an active balancer and a hot standby', function () {
    this.timeout(60_000);
    let cluster: Cluster | undefined;
    let standby: ChildProcess | undefined;
    let nginx: { base: string; stop(): Promise<void> } | undefined;
    let adminPort = 0;
    // The standby listens on another loopback address with the same ports, as a second container
    // of the same image does on the Compose network.
    const totalsOf = async (host: string): Promise<number> =>
      ((await (await fetch(`http://${host}:${adminPort}/api/upstreams`)).json()) as { totals: { requests: number } }).totals.requests;

    before(async function () {
      requireNginx(this);
      if (missingBuild().length) throw new Error(`run \`npm run build\` first (missing ${missingBuild().join(', ')})`);
      cluster = await startCluster({ backends: 2, basePort: 0, balancerPort: 0, adminPort: 0, ui: false, delayScale: 0.001 });
      adminPort = Number(new URL(cluster.urls.admin).port);
      const port = cluster.balancer.port;
      standby = spawn(
        process.execPath,
        [join(REPO_ROOT, 'services', 'balancer', 'dist', 'main.js'), '--host', '127.0.0.2', '--port', String(port), '--admin-host', '127.0.0.2', '--admin-port', String(adminPort), '--log-level', 'warn', ...cluster.upstreams],
        { stdio: ['ignore', 'inherit', 'inherit'] },
      );
      await until('the standby balancer', async () => ((await fetch(`http://127.0.0.2:${adminPort}/readyz`)).ok ? true : undefined));
      nginx = await startNginx({ hosts: '127.0.0.1 127.0.0.2', port, adminPort });
    });

    after(async () => {
      await nginx?.stop();
      if (standby?.exitCode === null) {
        const exited = once(standby, 'exit');
        standby.kill('SIGTERM');
        await exited;
      }
      await cluster?.stop();
    });

    it('sends every request to the active balancer while it answers', async () => {
      assert.ok(nginx);
      const [activeBefore, standbyBefore] = [await totalsOf('127.0.0.1'), await totalsOf('127.0.0.2')];
      for (let i = 0; i < 20; i++) {
        const res: Response = await fetch(`${nginx.base}/images/1?n=${i}`);
        assert.equal(res.status, 200);
        await res.arrayBuffer();
      }
      assert.equal((await totalsOf('127.0.0.1')) - activeBefore, 20);
      assert.equal((await totalsOf('127.0.0.2')) - standbyBefore, 0);
    });

    it('loses no request while the active balancer stops and starts again: the standby takes over', async () => {
      assert.ok(nginx && cluster);
      const standbyBefore = await totalsOf('127.0.0.2');
      const load = startOpenLoop({ origin: nginx.base, ratePerSecond: 100, durationMs: 4_000, paths: ['/images/1'] });
      await sleep(1_000);
      await cluster.balancer.stop();
      await sleep(500);
      await cluster.balancer.restart();
      const result = summarize((await load.done).records);
      assert.equal(result.failed, 0, JSON.stringify(result.failedByKind));
      assert.ok(result.requests >= 390, `${result.requests} requests`);
      assert.ok((await totalsOf('127.0.0.2')) - standbyBefore > 0, 'the standby served while the active balancer was away');
    });
  });
});
