// The things the bench puts its load in front of, each started fresh for one run.
//
// Settings follow the brief of issue 7: each proxy gets one CPU's worth of workers and reuses
// upstream connections, so the comparison is of the proxies, not of their defaults for fork/reuse.
// Where a default would make one target reconnect and the others not, it is raised (and said so).
// The exceptions are the balancer's worker-thread targets, whose point is the thread count:
// balancer-w1 against balancer-wN shows what the extra threads buy on this machine.
//
// bench/run.mjs (wrk) starts them with the defaults below; bench/connections.mjs (10,000 idle
// keep-alive clients) passes `limits` to raise connection caps, fd limits and idle timeouts.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const plainProxy = fileURLToPath(new URL('plain-proxy.mjs', import.meta.url));

/** Every target, in the order each round runs them. */
export const TARGET_NAMES = ['direct', 'nginx', 'haproxy', 'plain', 'balancer', 'balancer-w1', 'balancer-wN'];

/** The N of balancer-wN: the CPUs this process may use (the balancer's default, auto, is one fewer: see cluster/workers.ts). */
export const WORKERS_N = availableParallelism();

/** Worker threads per balancer target; null = no --workers flag (the balancer's default). */
export const BALANCER_WORKERS = { balancer: null, 'balancer-w1': 1, 'balancer-wN': WORKERS_N, before: null, 'before-w1': 1 };

/**
 * Another build of the balancer (BENCH_BEFORE_MAIN: its dist/main.js, e.g. of the commit a change
 * starts from), run as `before` and `before-w1` beside the current one: before/after in one run.
 * Only when named in BENCH_TARGETS; never part of a default run.
 */
export const BEFORE_MAIN = process.env.BENCH_BEFORE_MAIN || null;
export const BEFORE_TARGETS = ['before', 'before-w1'];

/** Targets that pass `--workers` (needs Node >= 22.12 for `reusePort`; the project's Node is 24). */
export const WORKER_TARGETS = ['balancer-w1', 'balancer-wN'];

/** Targets that are our balancer, whatever the runtime: the report compares each to nginx. */
export const BALANCER_TARGETS = Object.keys(BALANCER_WORKERS);

/** One line per target for the report: what exactly was measured. */
export const TARGET_NOTES = {
  direct: 'wrk straight to backend 1: the limit, no proxy (no proxy CPU)',
  nginx: 'Debian nginx, 1 worker, `least_conn`, upstream `keepalive 64` + `zone`, `proxy_http_version 1.1`, `Connection ""`, `keepalive_requests 1000000` both sides, access log off',
  haproxy: 'Debian HAProxy, `nbthread 1`, `balance leastconn`, `http-reuse always`, no logging',
  plain: "bench/plain-proxy.mjs on the bench's node: node:http + one undici `Pool` per backend, `pool.stream`, least in-flight, hop-by-hop headers stripped, nothing else (the floor a Node balancer stands on; issue 24)",
  balancer: "services/balancer/dist/main.js on the bench's node with default settings (only host, ports and upstreams given; LB_* env cleared; on Node >= 22.12 the default is one data-path thread per CPU but one, at least one; on older Node one thread)",
  'balancer-w1': 'the balancer with `--workers 1`: one data-path thread',
  before: `the build at BENCH_BEFORE_MAIN (${process.env.BENCH_BEFORE_MAIN ?? 'unset'}) with default settings`,
  'before-w1': 'the build at BENCH_BEFORE_MAIN with `--workers 1`',
  'balancer-wN': `the balancer with \`--workers ${WORKERS_N}\` (N = ${WORKERS_N}, the CPUs available): ${WORKERS_N} data-path threads sharing the port through \`reusePort\``,
};

/**
 * What bench/run.mjs uses: nothing raised. bench/connections.mjs passes bigger numbers.
 * - clientConnections: client connections the target must hold at once (nginx worker_connections
 *   and HAProxy maxconn are sized from it; the balancer has no such cap)
 * - nofile: fd limit (soft and hard) for the target's processes, set with prlimit; null = inherit
 * - clientIdleTimeoutS: how long an idle keep-alive client connection is kept; null = each
 *   target's own setting (nginx 75 s default, HAProxy `timeout client` 60 s, balancer 5 s default)
 */
export const DEFAULT_LIMITS = Object.freeze({ clientConnections: null, nofile: null, clientIdleTimeoutS: null });

/**
 * Returns `start(name)` which starts target `name` and resolves with
 * `{ port, proc, readyUrl }`; `proc` is null for `direct` (nothing to start or measure).
 * deps: { supervisor, workDir, backends: [{ port }], balancerMain, freePort,
 *         limits: DEFAULT_LIMITS, nodeArgs: [] }; every Node target (plain, balancer*) runs on the
 * bench's own node (process.execPath), with `nodeArgs` before its script (bench/profile.mjs: --cpu-prof)
 */
export function createTargetStarter({ supervisor, workDir, backends, balancerMain, freePort, limits = DEFAULT_LIMITS, nodeArgs = [] }) {
  let serial = 0;
  const upstreams = backends.map((b) => `127.0.0.1:${b.port}`);

  /** Spawns through prlimit when an fd limit is asked for; prlimit execs, so the pid stays ours. */
  function spawn(name, command, args, options) {
    if (limits.nofile === null) return supervisor.spawnProcess(name, command, args, options);
    return supervisor.spawnProcess(name, 'prlimit', [`--nofile=${limits.nofile}:${limits.nofile}`, '--', command, ...args], options);
  }

  async function balancer(name) {
    const port = await freePort();
    const adminPort = await freePort();
    // "Default settings": nothing from the caller's LB_* environment leaks in.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LB_')));
    const workers = BALANCER_WORKERS[name];
    const runtime = process.execPath;
    const main = BEFORE_TARGETS.includes(name) ? BEFORE_MAIN : balancerMain;
    const args = [...nodeArgs, main, '--host', '127.0.0.1', '--port', String(port), '--admin-port', String(adminPort),
      ...(workers === null ? [] : ['--workers', String(workers)]),
      ...(limits.clientIdleTimeoutS === null ? [] : ['--client-keep-alive-timeout-ms', String(limits.clientIdleTimeoutS * 1000)]),
      ...upstreams];
    const proc = spawn(`${name}-${serial}`, runtime, args, { env });
    return { port, proc, readyUrl: `http://127.0.0.1:${adminPort}/readyz` };
  }

  const starters = {
    async direct() {
      return { port: backends[0].port, proc: null, readyUrl: null };
    },

    async nginx() {
      const dir = runDir('nginx');
      const port = await freePort();
      // nginx's worker runs as nobody when the master is root; it must be able to enter the dir.
      chmodSync(dir, 0o755);
      const conf = join(dir, 'nginx.conf');
      writeFileSync(conf, nginxConfig(dir, port, upstreams, limits));
      const proc = spawn(`nginx-${serial}`, 'nginx', ['-e', 'stderr', '-p', dir, '-c', conf]);
      return { port, proc, readyUrl: null };
    },

    async haproxy() {
      const dir = runDir('haproxy');
      const port = await freePort();
      const conf = join(dir, 'haproxy.cfg');
      writeFileSync(conf, haproxyConfig(port, upstreams, limits));
      // -db: stay in the foreground, one process, so its pid is the one we measure and stop.
      const proc = spawn(`haproxy-${serial}`, 'haproxy', ['-db', '-f', conf]);
      return { port, proc, readyUrl: null };
    },
    async plain() {
      const port = await freePort();
      const proc = spawn(`plain-${serial}`, process.execPath, [...nodeArgs, plainProxy, '--host', '127.0.0.1', '--port', String(port), ...upstreams]);
      return { port, proc, readyUrl: null };
    },
    balancer: () => balancer('balancer'),
    'balancer-w1': () => balancer('balancer-w1'),
    'balancer-wN': () => balancer('balancer-wN'),
    before: () => balancer('before'),
    'before-w1': () => balancer('before-w1'),
  };

  function runDir(name) {
    const dir = join(workDir, `${name}-${serial}`);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  return async function start(name) {
    serial += 1;
    return starters[name]();
  };
}

/** Client connections plus upstream ones, with room to spare: what a proxy must be allowed. */
function connectionCap(limits, fallback) {
  return limits.clientConnections === null ? fallback : limits.clientConnections + 1000;
}

/** nginx.conf for one run: everything (pid, logs, temp files) inside `dir`. */
export function nginxConfig(dir, port, upstreams, limits = DEFAULT_LIMITS) {
  // worker_connections counts upstream connections too; one fd each, plus a few for logs.
  const workerConnections = connectionCap(limits, 4096);
  const rlimit = limits.nofile === null ? '' : `worker_rlimit_nofile ${limits.nofile};\n`;
  const idle = limits.clientIdleTimeoutS === null ? '' : `  keepalive_timeout ${limits.clientIdleTimeoutS}s;\n`;
  return `daemon off;
master_process on;
worker_processes 1;
${rlimit}pid ${dir}/nginx.pid;
# stderr goes to the run's log file, so a failure report can show its last lines.
error_log stderr warn;

events { worker_connections ${workerConnections}; }

http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  # The default (1000) closes each wrk connection every 1000 requests; HAProxy and our balancer
  # do not, and the bench compares proxies, not reconnect policies.
  keepalive_requests 1000000;
${idle}
  upstream backends {
    least_conn;
    zone backends 64k;
${upstreams.map((u) => `    server ${u};`).join('\n')}
    keepalive 64;
    keepalive_requests 1000000;
  }

  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/** haproxy.cfg for one run. */
export function haproxyConfig(port, upstreams, limits = DEFAULT_LIMITS) {
  const maxconn = connectionCap(limits, 4096);
  // Idle keep-alive connections fall under `timeout client` (no http-keep-alive/http-request set).
  const clientTimeout = limits.clientIdleTimeoutS === null ? '60s' : `${limits.clientIdleTimeoutS}s`;
  // HAProxy reserves 2 fds per connection (client + server side) and, since 2.6, refuses to start
  // when the fd limit is below that estimate. Idle keep-alive clients use one fd each and the
  // server side only a few pooled ones, so under an explicit fd limit it is told to live with it.
  const fdLimit = limits.nofile === null ? '' : `  ulimit-n ${limits.nofile}\n  no strict-limits\n`;
  return `global
  nbthread 1
  # ~2 fds per connection must fit under the soft limit (20000 here), or HAProxy refuses to start.
  maxconn ${maxconn}
${fdLimit}
defaults
  mode http
  timeout connect 5s
  timeout client ${clientTimeout}
  timeout server 60s
  http-reuse always

frontend bench
  bind 127.0.0.1:${port}
  default_backend backends

backend backends
  balance leastconn
${upstreams.map((u, i) => `  server b${i + 1} ${u}`).join('\n')}
`;
}
