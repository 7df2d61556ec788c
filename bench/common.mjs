// Helpers shared by bench/run.mjs (wrk) and bench/connections.mjs (10,000 idle clients): free
// ports, one-off HTTP requests, polling with a deadline, and the 4 bench/origin.mjs backends.
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitForLine } from './processes.mjs';
import { freePorts } from '../scripts/cluster-lib.mjs';
import { pollUntil } from '../scripts/poll.mjs';

const BENCH = fileURLToPath(new URL('.', import.meta.url));
export const BACKEND_COUNT = 4;
/** Index of the backend that adds BENCH_SLOW_MS on /slow (the last one: "backend 4"). */
export const SLOW_BACKEND = BACKEND_COUNT - 1;

// ---------------------------------------------------------------------------------------------
// small network helpers (127.0.0.1 only)

/** A port that was free a moment ago, below the ephemeral range (see scripts/cluster-lib.mjs). */
export async function freePort() {
  const [port] = await freePorts(1);
  return port;
}

/** One HTTP request on a fresh connection (no agent pool to keep the harness alive). */
export function http(method, url, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => { resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }); });
      res.on('error', reject);
    });
    req.on('timeout', () => { req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${url}`)); });
    req.on('error', reject);
    req.end();
  });
}

/** Polls `check()` (truthy = done) every 50 ms until `timeoutMs`; throws naming `what`. */
export async function waitUntil(what, check, timeoutMs = 10_000) {
  // An error marked `fatal` ends the wait at once (scripts/poll.mjs).
  await pollUntil(what, async () => Boolean(await check()), timeoutMs, { intervalMs: 50, retryErrors: true });
}

// ---------------------------------------------------------------------------------------------
// backends

/** Starts BACKEND_COUNT origins on free ports; the last one adds `slowMs` on /slow only. */
export async function startBackends(supervisor, slowMs) {
  const backends = [];
  for (let i = 0; i < BACKEND_COUNT; i++) {
    const args = [join(BENCH, 'origin.mjs'), '--slow-ms', String(i === SLOW_BACKEND ? slowMs : 0)];
    const proc = supervisor.spawnProcess(`backend-${i + 1}`, process.execPath, args, { pipeStdout: true });
    const port = Number(await waitForLine(proc, /^listening (\d+)$/, 10_000));
    backends.push({ proc, port, url: `http://127.0.0.1:${port}` });
  }
  return backends;
}

/** Each backend's {"served", "inFlight"}, in backend order. */
export async function backendStats(backends) {
  return Promise.all(backends.map(async (b) => JSON.parse((await http('GET', `${b.url}/__stats`)).body)));
}

/**
 * Waits until no backend is serving a bench request, then zeroes the counters: requests that a
 * warm-up left behind must not be counted in the measured run.
 */
export async function resetBackends(backends) {
  await waitUntil('backends to finish in-flight requests', async () => (await backendStats(backends)).every((s) => s.inFlight === 0), 5000);
  await Promise.all(backends.map((b) => http('POST', `${b.url}/__reset`)));
}

/**
 * `int(name, fallback, min)` reading an integer setting from `env`: the fallback when unset or
 * empty; anything else that is not an integer >= min is pushed onto `problems` (reported together).
 */
export function intSetting(env, problems) {
  return (name, fallback, min) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) problems.push(`${name} must be an integer >= ${min}, got "${raw}"`);
    return n;
  };
}

/** JSON request on a fresh connection with `Authorization: Bearer <token>`: the lab scripts' admin calls. */
export async function adminJson(token, method, url, body) {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c) => (text += c));
      res.on('end', () => { resolve({ status: res.statusCode, body: text === '' ? null : JSON.parse(text) }); });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
