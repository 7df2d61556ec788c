#!/usr/bin/env node
// @ts-check
// `npm start`: the whole cluster as local processes, no Docker. Backends on 8002.., the balancer on
// 8001 (admin 9001) and the page on http://localhost:8080 with the same URLs as the nginx container.
// Ctrl-C (or SIGTERM) stops everything in order and exits 0; a child that dies while starting
// (e.g. its port is taken) makes the launcher exit 1 with that child's output.
import { networkInterfaces } from 'node:os';
import { parseArgs } from 'node:util';
import { startCluster } from './cluster-lib.mjs';

const HELP = `Usage: npm start -- [options]     (or: node scripts/cluster.mjs [options])

Starts N backends, the least-connections balancer in front of them and the live page.

Options (env twin in brackets; flags win):
  --backends N        number of backends (default 4)                       [CLUSTER_BACKENDS]
  --base-port P       first backend port; the others follow (default 8002) [CLUSTER_BASE_PORT]
  --balancer-port P   balancer data port (default 8001)                    [LB_PORT]
  --admin-port P      balancer admin port (default 9001)                   [LB_ADMIN_PORT]
  --ui-port P         page port (default 8080)                             [CLUSTER_UI_PORT]
  --ui-host ADDR      page address; 0.0.0.0 opens it to your LAN (default 127.0.0.1) [CLUSTER_UI_HOST]
  --weights W,W,...   balancer weight per backend, in order (default 1 each) [CLUSTER_WEIGHTS]
  --delay-scale X     multiply the image delays (1, 3, 5, 10 s) by X       [BACKEND_DELAY_SCALE]
  --no-explain        no X-Lb-Decision headers (on by default for the demo)
  --no-lab            no algorithm lab in the balancer (on by default for the demo)
  --raw-logs          print the children's JSON log lines as they are
  --help              this text
Anything after "--" goes to the balancer, e.g. -- --tie-break random.

Other BACKEND_* and LB_* variables reach the backends and the balancer unchanged.`;

/** @param {string} msg */
function fail(msg) {
  process.stderr.write(`cluster: ${msg}\n`);
  process.exit(1);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      backends: { type: 'string' },
      'base-port': { type: 'string' },
      'balancer-port': { type: 'string' },
      'admin-port': { type: 'string' },
      'ui-port': { type: 'string' },
      'ui-host': { type: 'string' },
      weights: { type: 'string' },
      'delay-scale': { type: 'string' },
      'no-explain': { type: 'boolean' },
      'no-lab': { type: 'boolean' },
      'raw-logs': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
} catch (err) {
  fail(`${err instanceof Error ? err.message : String(err)}\n\n${HELP}`);
  throw err; // unreachable; keeps the type checker sure `parsed` is set
}
const { values, positionals } = parsed;
if (values.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}

const env = process.env;
/**
 * @param {string} name
 * @param {string | undefined} raw
 * @param {number} fallback
 * @param {number} min
 * @param {number} max
 */
function intOption(name, raw, fallback, min, max) {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) fail(`${name} must be an integer ${min}-${max}, got "${raw}"`);
  return n;
}
const backends = intOption('--backends', values.backends ?? env.CLUSTER_BACKENDS, 4, 1, 100);
const basePort = intOption('--base-port', values['base-port'] ?? env.CLUSTER_BASE_PORT, 8002, 1, 65535);
const balancerPort = intOption('--balancer-port', values['balancer-port'] ?? env.LB_PORT, 8001, 1, 65535);
const adminPort = intOption('--admin-port', values['admin-port'] ?? env.LB_ADMIN_PORT, 9001, 1, 65535);
const uiPort = intOption('--ui-port', values['ui-port'] ?? env.CLUSTER_UI_PORT, 8080, 1, 65535);
const uiHost = values['ui-host'] ?? env.CLUSTER_UI_HOST ?? '127.0.0.1';
const weightsText = values.weights ?? env.CLUSTER_WEIGHTS;
const weights = weightsText ? weightsText.split(',').map((w) => intOption('--weights', w.trim(), 1, 1, 1000)) : undefined;
const delayText = values['delay-scale'] ?? env.BACKEND_DELAY_SCALE;
let delayScale;
if (delayText !== undefined && delayText !== '') {
  delayScale = Number(delayText);
  if (!Number.isFinite(delayScale) || delayScale < 0) fail(`--delay-scale must be a number >= 0, got "${delayText}"`);
}

const useColor = process.stdout.isTTY && !env.NO_COLOR;
const COLORS = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94];
/** @type {Map<string, number>} */
const colorOf = new Map();
/** @param {string} name */
function prefix(name) {
  if (!colorOf.has(name)) colorOf.set(name, COLORS[colorOf.size % COLORS.length] ?? 37);
  const label = `[${name}]`.padEnd(13);
  return useColor ? `\x1b[${colorOf.get(name)}m${label}\x1b[0m` : label;
}

const LEVELS = /** @type {Record<number, string>} */ ({ 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' });
/**
 * pino JSON → "12:00:01 INFO message key=value", easier to follow with six processes talking.
 * @param {string} line
 */
function pretty(line) {
  if (values['raw-logs'] || !line.startsWith('{')) return line;
  try {
    const rec = /** @type {Record<string, unknown>} */ (JSON.parse(line));
    const { level, time, msg, ...rest } = rec;
    // Every line already carries the child's name in its prefix; pid and hostname say nothing here.
    delete rest.pid;
    delete rest.hostname;
    delete rest.name;
    const t = typeof time === 'number' ? new Date(time).toTimeString().slice(0, 8) : '';
    const lvl = typeof level === 'number' ? (LEVELS[level] ?? String(level)) : String(level ?? '');
    const extra = Object.entries(rest)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    return `${t} ${lvl.padEnd(5)} ${typeof msg === 'string' ? msg : ''}${extra ? `  ${extra}` : ''}`;
  } catch {
    return line;
  }
}

/** @param {string} line */
const say = (line) => process.stdout.write(`${prefix('launcher')}${line}\n`);

say(`starting ${backends} backends, the balancer and the page…`);
/** @type {import('./cluster-lib.mjs').Cluster} */
let cluster;
try {
  cluster = await startCluster({
    backends,
    basePort,
    balancerPort,
    adminPort,
    uiPort,
    uiHost,
    weights,
    delayScale,
    explain: !values['no-explain'],
    lab: !values['no-lab'],
    balancerArgs: positionals,
    onLine(name, line, stream) {
      (stream === 'stderr' ? process.stderr : process.stdout).write(`${prefix(name)}${pretty(line)}\n`);
    },
  });
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
  throw err;
}

say(`page      ${cluster.urls.ui}`);
if (uiHost === '0.0.0.0') {
  // Open to the LAN: list the addresses a phone on the same network can use.
  const port = new URL(cluster.urls.ui).port;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) say(`          http://${a.address}:${port}/`);
  }
}
say(`balancer  ${cluster.urls.balancer}   (try ${cluster.urls.balancer}images/1)`);
say(`admin     ${cluster.urls.admin}api/upstreams  ${cluster.urls.admin}metrics`);
say(`backends  ${cluster.upstreams.join('  ')}`);
say('Ctrl-C stops everything.');

// A backend dying later is part of the demo (the page shows it down); the balancer dying is not.
let shuttingDown = false;
for (const child of [cluster.balancer, ...cluster.backends]) {
  void child.whenExited().then((e) => {
    if (shuttingDown) return;
    const how = e.signal ? `signal ${e.signal}` : `code ${e.code}`;
    const hint = child.name === 'balancer' ? 'the page shows "disconnected"; restart the launcher' : 'the balancer will mark it down';
    say(`${child.name} exited (${how}); ${hint}`);
  });
}

/** @param {NodeJS.Signals} signal */
async function shutdown(signal) {
  if (shuttingDown) {
    say('second signal: killing the children now');
    for (const c of [cluster.balancer, ...cluster.backends]) void c.stop('SIGKILL');
    return;
  }
  shuttingDown = true;
  say(`${signal}: stopping the page, the balancer (draining) and the backends…`);
  try {
    await cluster.stop();
    say('stopped.');
    process.exit(0);
  } catch (err) {
    process.stderr.write(`cluster: stop failed: ${String(err)}\n`);
    process.exit(1);
  }
}
for (const sig of /** @type {NodeJS.Signals[]} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
  process.on(sig, () => void shutdown(sig));
}
