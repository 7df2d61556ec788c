// The four things the bench puts wrk in front of, each started fresh for one run.
//
// Settings follow the brief of issue 7: each proxy gets one CPU's worth of workers and reuses
// upstream connections, so the comparison is of the proxies, not of their defaults for fork/reuse.
// Where a default would make one target reconnect and the others not, it is raised (and said so).
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Every target, in the order each round runs them. */
export const TARGET_NAMES = ['direct', 'nginx', 'haproxy', 'balancer'];

/** One line per target for the report: what exactly was measured. */
export const TARGET_NOTES = {
  direct: 'wrk straight to backend 1: the limit, no proxy (no proxy CPU)',
  nginx: 'Debian nginx, 1 worker, `least_conn`, upstream `keepalive 64` + `zone`, `proxy_http_version 1.1`, `Connection ""`, `keepalive_requests 1000000` both sides, access log off',
  haproxy: 'Debian HAProxy, `nbthread 1`, `balance leastconn`, `http-reuse always`, no logging',
  balancer: 'services/balancer/dist/main.js with default settings (only host, ports and upstreams given; LB_* env cleared)',
};

/**
 * Returns `start(name)` which starts target `name` and resolves with
 * `{ port, proc, readyUrl }`; `proc` is null for `direct` (nothing to start or measure).
 * deps: { supervisor, workDir, backends: [{ port }], balancerMain, freePort }
 */
export function createTargetStarter({ supervisor, workDir, backends, balancerMain, freePort }) {
  let serial = 0;
  const upstreams = backends.map((b) => `127.0.0.1:${b.port}`);

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
      writeFileSync(conf, nginxConfig(dir, port, upstreams));
      const proc = supervisor.spawnProcess(`nginx-${serial}`, 'nginx', ['-e', 'stderr', '-p', dir, '-c', conf]);
      return { port, proc, readyUrl: null };
    },

    async haproxy() {
      const dir = runDir('haproxy');
      const port = await freePort();
      const conf = join(dir, 'haproxy.cfg');
      writeFileSync(conf, haproxyConfig(port, upstreams));
      // -db: stay in the foreground, one process, so its pid is the one we measure and stop.
      const proc = supervisor.spawnProcess(`haproxy-${serial}`, 'haproxy', ['-db', '-f', conf]);
      return { port, proc, readyUrl: null };
    },

    async balancer() {
      const port = await freePort();
      const adminPort = await freePort();
      // "Default settings": nothing from the caller's LB_* environment leaks in.
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LB_')));
      const args = [balancerMain, '--host', '127.0.0.1', '--port', String(port), '--admin-port', String(adminPort), ...upstreams];
      const proc = supervisor.spawnProcess(`balancer-${serial}`, process.execPath, args, { env });
      return { port, proc, readyUrl: `http://127.0.0.1:${adminPort}/readyz` };
    },
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

/** nginx.conf for one run: everything (pid, logs, temp files) inside `dir`. */
export function nginxConfig(dir, port, upstreams) {
  return `daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
# stderr goes to the run's log file, so a failure report can show its last lines.
error_log stderr warn;

events { worker_connections 4096; }

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
export function haproxyConfig(port, upstreams) {
  return `global
  nbthread 1
  # ~2 fds per connection must fit under the soft limit (20000 here), or HAProxy refuses to start.
  maxconn 4096

defaults
  mode http
  timeout connect 5s
  timeout client 60s
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
