// @ts-check
// The cluster without Docker: N backends, the balancer in front of them and the page server, all
// as local processes running the built code (services/*/dist). `scripts/cluster.mjs` is the CLI;
// the browser tests call startCluster() with free ports.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createUiServer } from './static-server.mjs';

/** The repository root (this file lives in scripts/). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * @typedef {object} ClusterOptions
 * @property {number} [backends] how many backends (default 4)
 * @property {number} [basePort] first backend port, the others follow (default 8002; 0 = free ports)
 * @property {number} [balancerPort] balancer data port (default 8001; 0 = a free port)
 * @property {number} [adminPort] balancer admin port (default 9001; 0 = a free port)
 * @property {number} [uiPort] page server port (default 8080; 0 = a free port)
 * @property {string} [host] address the backends and the balancer bind to (default 127.0.0.1)
 * @property {string} [uiHost] address the page server binds to (default 127.0.0.1; 0.0.0.0 to open it to phones on the LAN)
 * @property {number[]} [weights] weight per backend, in order (default 1 each)
 * @property {number} [delayScale] BACKEND_DELAY_SCALE for every backend (default: inherited from env, else 1)
 * @property {boolean} [explain] balancer --explain and --expose-upstream (X-Lb-Decision and X-Upstream headers, which the
 *   page shows; both off by default in the balancer since they name internal addresses; default true here)
 * @property {boolean} [lab] balancer --lab: the algorithm lab's runs and fault scenarios, which the page drives (off by
 *   default in the balancer; default true here, since the page's lab is part of the demo)
 * @property {string[]} [balancerArgs] more balancer flags, e.g. ['--tie-break', 'random']
 * @property {Record<string, string | undefined>} [env] environment of the children (default process.env)
 * @property {string} [root] repository root (default: the one this file is in)
 * @property {boolean} [ui] start the page server (default true)
 * @property {number} [startTimeoutMs] a child not ready after this long fails the start (default 15000)
 * @property {number} [stopTimeoutMs] a child still running this long after SIGTERM gets SIGKILL (default 8000)
 * @property {(name: string, line: string, stream: 'stdout' | 'stderr') => void} [onLine] every output line of every child
 */

/**
 * @typedef {object} ExitInfo
 * @property {number | null} code
 * @property {NodeJS.Signals | null} signal
 */

/**
 * A child process of the cluster.
 * @typedef {object} ChildHandle
 * @property {string} name e.g. backend-1, balancer
 * @property {number} port the port it listens on (the data port for the balancer)
 * @property {number | undefined} pid
 * @property {boolean} running
 * @property {(signal?: NodeJS.Signals) => Promise<ExitInfo>} stop signal it (default SIGTERM), wait for the exit, SIGKILL after stopTimeoutMs; idempotent
 * @property {() => Promise<void>} restart start it again with the same ports and arguments, once it has stopped
 * @property {() => string[]} output its last output lines
 * @property {() => Promise<ExitInfo>} whenExited settles when the current process exits
 */

/**
 * @typedef {object} ClusterUrls
 * @property {string} ui the page (empty when ui: false)
 * @property {string} balancer data port
 * @property {string} admin admin port (/api/upstreams, /api/events, /metrics)
 * @property {string[]} backends one per backend, direct
 */

/**
 * @typedef {object} Cluster
 * @property {ClusterUrls} urls
 * @property {string[]} upstreams the upstream ids the balancer reports (`host:port`), one per backend
 * @property {ChildHandle[]} backends
 * @property {ChildHandle} balancer
 * @property {() => Promise<void>} stop idempotent: page server, then the balancer (drains), then the backends
 */

const DIST = {
  backend: join('services', 'backend', 'dist', 'main.js'),
  balancer: join('services', 'balancer', 'dist', 'main.js'),
  frontend: join('frontend', 'dist', 'index.html'),
};

/**
 * Paths of built code the cluster needs that do not exist yet (run `npm run build`).
 * @param {string} [root]
 * @returns {string[]}
 */
export function missingBuild(root = REPO_ROOT) {
  return Object.values(DIST).filter((p) => !existsSync(join(root, p)));
}

/**
 * The lowest port of the kernel's range for the local ports of outgoing connections (and of `listen(0)`).
 * @returns {number}
 */
function ephemeralLow() {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 0) return low;
  } catch {
    // not Linux: the IANA range
  }
  return 49152;
}

/**
 * Resolves true when `port` can be bound on `host` right now (it is released again at once).
 * @param {number} port
 * @param {string} host
 * @returns {Promise<boolean>}
 */
function bindable(port, host) {
  return new Promise((ok) => {
    const s = net.createServer();
    s.once('error', () => ok(false));
    s.listen(port, host, () => s.close(() => ok(true)));
  });
}

/**
 * Finds `count` distinct free ports on `host` for processes that bind them a moment later.
 * They come from below the kernel's ephemeral range: a port from that range (what `listen(0)`
 * hands out) can be taken in between as the local end of any outgoing connection, even the
 * cluster's own health checks, which once made a launcher test fail with "port in use".
 * @param {number} count
 * @param {string} [host]
 * @returns {Promise<number[]>}
 */
export async function freePorts(count, host = '127.0.0.1') {
  const low = ephemeralLow();
  const min = 10_000;
  const max = Math.min(low, 65_536) - 1;
  if (max - min < 100 * count) throw new Error(`no room for ${count} ports below the ephemeral range (${low}+)`);
  const ports = new Set();
  for (let attempt = 0; ports.size < count; attempt++) {
    if (attempt > 1000) throw new Error(`no ${count} free ports found in ${min}-${max}`);
    const port = min + Math.floor(Math.random() * (max - min + 1));
    if (!ports.has(port) && (await bindable(port, host))) ports.add(port);
  }
  return [...ports];
}

/**
 * Fails with a clear message when `port` is taken, before a child dies of EADDRINUSE.
 * @param {number} port
 * @param {string} host
 * @param {string} what
 */
async function assertPortFree(port, host, what) {
  const s = net.createServer();
  try {
    await new Promise((ok, ko) => {
      s.once('error', ko);
      s.listen(port, host, () => ok(undefined));
    });
  } catch (err) {
    const code = /** @type {NodeJS.ErrnoException} */ (err).code;
    throw new Error(
      code === 'EADDRINUSE'
        ? `port ${port} (${what}) is already in use on ${host}; stop what uses it or pick other ports (see --help)`
        : `cannot use port ${port} (${what}) on ${host}: ${String(err)}`,
      { cause: err },
    );
  } finally {
    await new Promise((ok) => s.close(() => ok(undefined)));
  }
}

/**
 * One GET; resolves with the status code, 0 on any error.
 * @param {string} url
 * @returns {Promise<number>}
 */
function probe(url) {
  return new Promise((ok) => {
    const req = http.get(url, { timeout: 1000, agent: false }, (res) => {
      res.resume();
      ok(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => ok(0));
  });
}

const sleep = (/** @type {number} */ ms) => new Promise((ok) => setTimeout(ok, ms));

/**
 * @typedef {object} SpawnSpec
 * @property {string} name
 * @property {number} port
 * @property {string} script path relative to root
 * @property {string[]} args
 * @property {Record<string, string | undefined>} env
 * @property {string} readyUrl polled until it answers 200
 */

/**
 * @param {SpawnSpec} spec
 * @param {Required<Pick<ClusterOptions, 'root' | 'startTimeoutMs' | 'stopTimeoutMs'>> & Pick<ClusterOptions, 'onLine'>} opts
 * @returns {ChildHandle & { start(): Promise<void>, kill(): void }}
 */
function createChild(spec, opts) {
  /** @type {import('node:child_process').ChildProcess | undefined} */
  let proc;
  /** @type {Promise<ExitInfo> | undefined} */
  let exited;
  /** @type {Promise<ExitInfo> | undefined} */
  let stopping;
  /** @type {string[]} */
  const tail = [];

  /**
   * @param {import('node:stream').Readable | null} stream
   * @param {'stdout' | 'stderr'} kind
   */
  function follow(stream, kind) {
    if (!stream) return;
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    rl.on('line', (line) => {
      tail.push(line);
      if (tail.length > 200) tail.shift();
      opts.onLine?.(spec.name, line, kind);
    });
  }

  const handle = {
    name: spec.name,
    port: spec.port,
    get pid() {
      return proc?.pid;
    },
    get running() {
      return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
    },
    output: () => [...tail],
    whenExited: () => exited ?? Promise.resolve({ code: null, signal: null }),
    async start() {
      if (handle.running) return;
      stopping = undefined;
      const child = spawn(process.execPath, ['--enable-source-maps', join(opts.root, spec.script), ...spec.args], {
        cwd: opts.root,
        env: spec.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        // Own process group: Ctrl-C in the terminal reaches only the launcher, which then stops the
        // children in order (page, balancer draining, backends) instead of all at once.
        detached: true,
      });
      proc = child;
      exited = new Promise((ok) => {
        child.once('exit', (code, signal) => ok({ code, signal }));
      });
      child.once('error', (err) => {
        tail.push(`spawn failed: ${err.message}`);
      });
      follow(child.stdout, 'stdout');
      follow(child.stderr, 'stderr');
      const deadline = Date.now() + opts.startTimeoutMs;
      const died = exited.then((e) => e);
      for (;;) {
        const status = await Promise.race([probe(spec.readyUrl), died.then(() => -1)]);
        if (status === 200) return;
        if (status === -1 || !handle.running) {
          const e = await died;
          const how = e.signal ? `signal ${e.signal}` : `code ${e.code}`;
          throw new Error(`${spec.name} exited (${how}) while starting:\n${indent(tail.slice(-15))}`);
        }
        if (Date.now() > deadline) {
          await handle.stop('SIGKILL');
          throw new Error(`${spec.name} not ready after ${opts.startTimeoutMs} ms (${spec.readyUrl}):\n${indent(tail.slice(-15))}`);
        }
        await sleep(100);
      }
    },
    /** @param {NodeJS.Signals} [signal] */
    stop(signal = 'SIGTERM') {
      const child = proc;
      if (!child || !exited) return Promise.resolve({ code: null, signal: null });
      if (!handle.running) return exited;
      if (stopping && signal !== 'SIGKILL') return stopping;
      const waitExit = exited;
      child.kill(signal);
      stopping = (async () => {
        const timer = sleep(opts.stopTimeoutMs).then(() => 'timeout');
        if ((await Promise.race([waitExit, timer])) === 'timeout' && handle.running) child.kill('SIGKILL');
        return waitExit;
      })();
      return stopping;
    },
    kill() {
      if (handle.running) proc?.kill('SIGKILL');
    },
    async restart() {
      if (handle.running) throw new Error(`${spec.name} is still running`);
      await handle.start();
    },
  };
  return handle;
}

/** @param {string[]} lines */
const indent = (lines) => lines.map((l) => `    ${l}`).join('\n');

/**
 * Starts backends, the balancer and the page server; resolves once every one answers its health
 * URL. On any failure everything already started is stopped and the promise rejects with the
 * failing child's last output.
 * @param {ClusterOptions} [options]
 * @returns {Promise<Cluster>}
 */
export async function startCluster(options = {}) {
  const root = options.root ?? REPO_ROOT;
  const count = options.backends ?? 4;
  const host = options.host ?? '127.0.0.1';
  const uiHost = options.uiHost ?? '127.0.0.1';
  const env = options.env ?? process.env;
  const withUi = options.ui ?? true;
  if (!Number.isInteger(count) || count < 1 || count > 100) throw new Error(`backends must be 1-100, got ${count}`);
  const weights = options.weights ?? [];
  if (weights.some((w) => !Number.isInteger(w) || w < 1 || w > 1000)) throw new Error('weights must be integers 1-1000');
  const missing = missingBuild(root);
  if (missing.length) throw new Error(`not built yet (${missing.join(', ')}): run \`npm run build\` first`);

  // Ports: fixed ones are checked up front so "port in use" is one clear message, 0 means "any free".
  const basePort = options.basePort ?? 8002;
  const wantFree = (basePort === 0 ? count : 0) + (options.balancerPort === 0 ? 1 : 0) + (options.adminPort === 0 ? 1 : 0);
  const free = await freePorts(wantFree, host);
  const take = () => /** @type {number} */ (free.shift());
  const backendPorts = Array.from({ length: count }, (_, i) => (basePort === 0 ? take() : basePort + i));
  const balancerPort = options.balancerPort === 0 ? take() : (options.balancerPort ?? 8001);
  const adminPort = options.adminPort === 0 ? take() : (options.adminPort ?? 9001);
  const uiPort = options.uiPort ?? 8080;
  if (backendPorts.some((p) => p > 65535)) throw new Error(`backend ports ${basePort}..${basePort + count - 1} exceed 65535`);
  const all = [...backendPorts, balancerPort, adminPort];
  if (new Set(all).size !== all.length) throw new Error(`port clash: backends ${backendPorts.join(',')}, balancer ${balancerPort}, admin ${adminPort}`);
  for (const [i, p] of backendPorts.entries()) await assertPortFree(p, host, `backend-${i + 1}`);
  await assertPortFree(balancerPort, host, 'balancer');
  await assertPortFree(adminPort, host, 'balancer admin');
  if (withUi && uiPort !== 0) await assertPortFree(uiPort, uiHost, 'page');

  const childOpts = {
    root,
    startTimeoutMs: options.startTimeoutMs ?? 15_000,
    stopTimeoutMs: options.stopTimeoutMs ?? 8000,
    onLine: options.onLine,
  };
  // A loopback address the launcher can reach the children on, also when they bind 0.0.0.0.
  const reach = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const hostPort = (/** @type {number} */ p) => (reach.includes(':') ? `[${reach}]:${p}` : `${reach}:${p}`);
  const backends = backendPorts.map((port, i) =>
    createChild(
      {
        name: `backend-${i + 1}`,
        port,
        script: DIST.backend,
        args: [String(port)],
        env: {
          ...env,
          BACKEND_HOST: host,
          BACKEND_ID: `backend-${i + 1}`,
          ...(options.delayScale === undefined ? {} : { BACKEND_DELAY_SCALE: String(options.delayScale) }),
        },
        readyUrl: `http://${hostPort(port)}/healthz`,
      },
      childOpts,
    ),
  );
  const upstreams = backendPorts.map((p) => hostPort(p));
  const balancer = createChild(
    {
      name: 'balancer',
      port: balancerPort,
      script: DIST.balancer,
      args: [
        '--host', host,
        '--port', String(balancerPort),
        '--admin-host', host,
        '--admin-port', String(adminPort),
        ...((options.explain ?? true) ? ['--explain', '--expose-upstream'] : []),
        ...((options.lab ?? true) ? ['--lab'] : []),
        ...(options.balancerArgs ?? []),
        ...upstreams.map((u, i) => (weights[i] === undefined ? u : `${u}=${weights[i]}`)),
      ],
      env: { ...env },
      readyUrl: `http://${hostPort(adminPort)}/readyz`,
    },
    childOpts,
  );

  /** @type {import('./static-server.mjs').UiServer | undefined} */
  let ui;
  let uiUrl = '';
  // If the launcher itself exits (crash, process.exit) the children must not outlive it holding ports.
  const killAll = () => {
    for (const c of [balancer, ...backends]) c.kill();
  };
  process.once('exit', killAll);

  /** @type {Promise<void> | undefined} */
  let stopped;
  const stop = () => {
    stopped ??= (async () => {
      await ui?.close();
      await balancer.stop();
      await Promise.all(backends.map((b) => b.stop()));
      process.off('exit', killAll);
    })();
    return stopped;
  };

  try {
    await Promise.all(backends.map((b) => b.start()));
    await balancer.start();
    if (withUi) {
      ui = createUiServer({
        root: join(root, 'frontend', 'dist'),
        balancer: { host: reach, port: balancerPort },
        admin: { host: reach, port: adminPort },
      });
      const port = await ui.listen(uiPort, uiHost);
      const shown = uiHost === '0.0.0.0' || uiHost === '::' ? 'localhost' : uiHost.includes(':') ? `[${uiHost}]` : uiHost;
      uiUrl = `http://${shown}:${port}/`;
    }
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    urls: {
      ui: uiUrl,
      balancer: `http://${hostPort(balancerPort)}/`,
      admin: `http://${hostPort(adminPort)}/`,
      backends: backendPorts.map((p) => `http://${hostPort(p)}/`),
    },
    upstreams,
    backends,
    balancer,
    stop,
  };
}
