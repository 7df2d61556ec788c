// `make lab-peers` (issue 25, point 4): one balancer, two with isolated counts and two sharing
// counts, on the same seeded traffic, local processes, no Docker. Four backends at the seed's image
// delays (1, 3, 5 and 10 s), one of them made slower through the lab's scenario; two balancers
// peered on 127.0.0.1 (A runs the lab, B is its peer). The lab (services/balancer/src/lab) sends
// and measures: in the two-balancer modes every other request goes to B's data port, and every
// figure comes from the lab's own record of each request (which backend answered, from when it left
// to its last byte), so the three modes are measured alike. This script starts the processes, asks
// A's lab for the runs over the admin API, prints the table and checks issue 25's goal.
//
// Low concurrency is where counts matter: at a request or two per backend, one balancer that does
// not know of the other's requests picks a backend the other one already keeps busy. At 1 req/s
// the backends hold about 1.3 each (rate × mean latency ÷ 4); at 2 req/s (2.6 each) the isolated
// pair's spread was only ~6 % worse than one balancer's, below one run's noise (bench/PEERS.md).
// A round's ratio of isolated to one balancer varied by 4-10 % from round to round (the seeds
// differ, and on one seed the ties, and with them every later pick, fall differently), so the goal
// is judged on each mode's ratio to one balancer on the same traffic, averaged over the rounds,
// with its standard error.
//
// Settings (env):
//   LAB_PEERS_RATE         requests per second                          (1)
//   LAB_PEERS_DURATION_MS  per mode and round, at most 120000           (120000)
//   LAB_PEERS_ROUNDS       rounds of the three modes, seeds SEED, SEED+1 (5: ~40 min)
//   LAB_PEERS_SLOW_MS      extra latency of the slow backend            (5000)
//   LAB_PEERS_SEED         first round's traffic seed                   (1)
//   LAB_PEERS_SELF_TEST=1  wiring check in seconds: images scaled to 1/100, 40 req/s, 1.5 s, one
//                          round; prints the table, exits 0 whatever the figures (the mocha
//                          spec e2e/test/lab-peers-script.spec.ts runs it)
//
// Exit codes: 0 the goal holds (or self-test); 1 it does not, or a run or process failed; 2 bad settings.
import { existsSync, mkdtempSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../scripts/cluster-lib.mjs';
import { adminJson, intSetting, waitUntil } from './common.mjs';
import { assertAlive, createSupervisor } from './processes.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BALANCER_MAIN = join(ROOT, 'services/balancer/dist/main.js');
const BACKEND_MAIN = join(ROOT, 'services/backend/dist/main.js');
const TOKEN = 'lab-peers-admin-token';
const BACKEND_TOKEN = 'lab-peers-backend-token';
const BACKENDS = 4;
const MODES = ['one', 'two-isolated', 'two-sharing'];
/** Issue 25's goal: sharing within 10 % of one balancer's spread and slow share. */
const TOLERANCE = 0.1;

const selfTest = process.env.LAB_PEERS_SELF_TEST === '1';
const problems = [];
const int = intSetting(process.env, problems);
const settings = selfTest
  ? { rate: 40, durationMs: 1500, rounds: 1, slowMs: 20, seed: int('LAB_PEERS_SEED', 1, 0), delayScale: 0.01 }
  : {
      rate: int('LAB_PEERS_RATE', 1, 1),
      durationMs: int('LAB_PEERS_DURATION_MS', 120_000, 500),
      rounds: int('LAB_PEERS_ROUNDS', 5, 1),
      slowMs: int('LAB_PEERS_SLOW_MS', 5000, 0),
      seed: int('LAB_PEERS_SEED', 1, 0),
      delayScale: 1,
    };
if (settings.durationMs > 120_000) problems.push(`LAB_PEERS_DURATION_MS must be at most 120000 (the lab's cap), got ${settings.durationMs}`);
if (problems.length > 0) {
  process.stderr.write(`lab-peers: ${problems.join('\n')}\n`);
  process.exit(2);
}
for (const main of [BALANCER_MAIN, BACKEND_MAIN]) {
  if (!existsSync(main)) {
    process.stderr.write(`lab-peers: ${main} is missing: run "npm run build" (make lab-peers does)\n`);
    process.exit(1);
  }
}

/** JSON request to a balancer's admin API with this script's token (common.mjs's adminJson). */
const api = (method, url, body) => adminJson(TOKEN, method, url, body);

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
const pct = (x) => `${(x * 100).toFixed(1)} %`;

/** The figures of one lab result row. */
const figuresOf = (r) => ({ slowShare: r.badShare ?? 0, spread: r.spread ?? Number.NaN, p99: r.p99Ms, p50: r.p50Ms, errors: r.errors + r.dropped, requests: r.requests });

function table(rows) {
  const out = ['| round | seed | balancers | slow share | spread (max÷mean in-flight) | p50 ms | p99 ms | errors | requests |', '|---:|---:|---|---:|---:|---:|---:|---:|---:|'];
  for (const { round, seed, mode, f } of rows) out.push(`| ${round} | ${seed} | ${mode} | ${pct(f.slowShare)} | ${f.spread.toFixed(2)} | ${Math.round(f.p50)} | ${Math.round(f.p99)} | ${f.errors} | ${f.requests} |`);
  return out.join('\n');
}

function summary(byMode) {
  const out = ['| balancers | slow share: mean ± sd | spread: mean ± sd | p99 ms: mean ± sd | errors |', '|---|---:|---:|---:|---:|'];
  for (const mode of MODES) {
    const fs = byMode.get(mode);
    const col = (k, fmt) => `${fmt(mean(fs.map((f) => f[k])))} ± ${fmt(sd(fs.map((f) => f[k])))}`;
    out.push(`| ${mode} | ${col('slowShare', pct)} | ${col('spread', (x) => x.toFixed(2))} | ${col('p99', (x) => String(Math.round(x)))} | ${fs.reduce((a, f) => a + f.errors, 0)} |`);
  }
  return out.join('\n');
}

const supervisor = createSupervisor(mkdtempSync(join(tmpdir(), 'lb-lab-peers-')));
const stopAll = async () => { await supervisor.stopAll(); };
process.once('SIGINT', () => { void stopAll().then(() => process.exit(130)); });

let exitCode = 0;
try {
  const ports = await freePorts(BACKENDS + 4);
  const backendPorts = ports.slice(0, BACKENDS);
  const [dataA, adminA, dataB, adminB] = ports.slice(BACKENDS);
  const procs = backendPorts.map((port, i) =>
    supervisor.spawnProcess(`backend-${i + 1}`, process.execPath, [BACKEND_MAIN, String(port)], {
      // The seed's delays (the backend's default, 1, 3, 5 and 10 s), said here so the table's source is plain.
      env: { ...process.env, BACKEND_ID: `backend-${i + 1}`, BACKEND_DELAYS_MS: '1000,3000,5000,10000', BACKEND_ADMIN_TOKEN: BACKEND_TOKEN, BACKEND_LOG_LEVEL: 'warn' },
    }),
  );
  const upstreams = backendPorts.map((p) => `127.0.0.1:${p}`);
  // Each balancer's UDP peer port is its admin port's number (as in Compose: 9001 TCP and UDP).
  const balancer = (name, data, admin, peerAdmin) =>
    supervisor.spawnProcess(name, process.execPath, [
      BALANCER_MAIN, '--port', String(data), '--admin-port', String(admin), '--workers', '1', '--log-level', 'warn',
      '--lab', '--admin-token', TOKEN, '--backend-admin-token', BACKEND_TOKEN,
      '--peers-port', String(admin), '--peer', `127.0.0.1:${peerAdmin}`, ...upstreams,
    ]);
  procs.push(balancer('balancer-a', dataA, adminA, adminB), balancer('balancer-b', dataB, adminB, adminA));
  const adminUrlA = `http://127.0.0.1:${adminA}`;
  const adminUrlB = `http://127.0.0.1:${adminB}`;
  await waitUntil('every backend up behind both balancers, each the other\'s live peer', async () => {
    assertAlive(procs);
    for (const url of [adminUrlA, adminUrlB]) {
      const view = (await api('GET', `${url}/api/upstreams`)).body;
      if (view.upstreams.filter((u) => u.available && u.state === 'up').length !== BACKENDS) return false;
      if (!view.peers.some((p) => p.state === 'live' && p.dataUrl !== null)) return false;
    }
    return true;
  }, 60_000);

  const slowId = upstreams.at(-1);
  /** One lab run on A; resolves with its one result row. */
  const run = async (mode, seed) => {
    const spec = {
      rate: settings.rate, durationMs: settings.durationMs, seed, mix: [1, 1, 1, 1], delayScale: settings.delayScale, balancers: mode,
      scenario: { upstream: slowId, fault: { extraLatencyMs: settings.slowMs } },
    };
    const started = await api('POST', `${adminUrlA}/api/lab/run`, spec);
    if (started.status !== 202) throw new Error(`${mode} refused: ${started.status} ${JSON.stringify(started.body)}`);
    let status;
    await waitUntil(`the ${mode} run`, async () => {
      assertAlive(procs);
      status = (await api('GET', `${adminUrlA}/api/lab`)).body;
      return status.state !== 'running';
    }, settings.durationMs + 120_000);
    if (status.state !== 'done') throw new Error(`${mode} run ended ${status.state}: ${status.error}`);
    const [row] = status.results;
    if (row?.balancers !== mode) throw new Error(`${mode} run: the result row says ${row?.balancers}`);
    if (row.attribution !== 'response') throw new Error(`${mode} run: measured from ${row.attribution}, not the responses`);
    return row;
  };

  process.stdout.write(`lab-peers: 4 backends (images 1, 3, 5, 10 s${settings.delayScale === 1 ? '' : ` × ${settings.delayScale}`}, mix 1:1:1:1), ${slowId} +${settings.slowMs} ms; ${settings.rate} req/s for ${settings.durationMs / 1000} s per mode; ${settings.rounds} round(s)\n`);
  const rows = [];
  const byMode = new Map(MODES.map((m) => [m, []]));
  for (let round = 1; round <= settings.rounds; round++) {
    const seed = settings.seed + round - 1;
    // The order turns each round, so no mode always runs first (or last) on a drifting machine.
    const order = MODES.map((_, i) => MODES[(i + round - 1) % MODES.length]);
    for (const mode of order) {
      process.stdout.write(`  round ${round}, seed ${seed}: ${mode} ...`);
      const f = figuresOf(await run(mode, seed));
      process.stdout.write(` slow share ${pct(f.slowShare)}, spread ${f.spread.toFixed(2)}, p99 ${Math.round(f.p99)} ms, errors ${f.errors}\n`);
      rows.push({ round, seed, mode, f });
      byMode.get(mode).push(f);
    }
  }
  rows.sort((a, b) => a.round - b.round || MODES.indexOf(a.mode) - MODES.indexOf(b.mode));
  process.stdout.write(`\nEach run:\n${table(rows)}\n\nOver the rounds:\n${summary(byMode)}\n`);
  process.stdout.write(`\nLoad average at the end: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (CPUs: ${availableParallelism()})\n`);

  // Paired by round: each round's modes ran the same traffic, so each mode is judged by its ratio
  // to one balancer on that traffic, which takes out how much the seeds differ from each other.
  const ratios = (mode, k) => byMode.get(mode).map((f, i) => f[k] / byMode.get('one')[i][k]);
  const stat = (xs) => ({ mean: mean(xs), se: sd(xs) / Math.sqrt(xs.length) });
  const fmt = (x) => `${x.mean.toFixed(3)} ± ${x.se.toFixed(3)}`;
  const spreadIso = stat(ratios('two-isolated', 'spread'));
  const spreadShare = stat(ratios('two-sharing', 'spread'));
  const shareOne = mean(byMode.get('one').map((f) => f.slowShare));
  const shareShare = mean(byMode.get('two-sharing').map((f) => f.slowShare));
  process.stdout.write(`\nEach mode ÷ one balancer on the same traffic (mean ± standard error over ${settings.rounds} round(s)):\n`);
  process.stdout.write(`  spread: two-isolated ${fmt(spreadIso)}, two-sharing ${fmt(spreadShare)}\n`);
  process.stdout.write(`  slow share: two-isolated ${fmt(stat(ratios('two-isolated', 'slowShare')))}, two-sharing ${fmt(stat(ratios('two-sharing', 'slowShare')))}\n`);
  const checks = [
    ['two sharing: spread within 10 % of one balancer\'s', Math.abs(spreadShare.mean - 1) <= TOLERANCE, `× ${spreadShare.mean.toFixed(3)}`],
    ['two sharing: slow share within 10 % of one balancer\'s', Math.abs(shareShare / shareOne - 1) <= TOLERANCE, `${pct(shareShare)} vs ${pct(shareOne)}`],
    // Measurably: its ratio to one balancer is above 1 by more than twice its standard error.
    ['two isolated: spread measurably worse than one balancer\'s (ratio − 2 standard errors > 1)', spreadIso.mean - 2 * spreadIso.se > 1, `× ${fmt(spreadIso)}`],
    ['two isolated: spread worse than two sharing', spreadIso.mean > spreadShare.mean, `× ${spreadIso.mean.toFixed(3)} vs × ${spreadShare.mean.toFixed(3)}`],
    ['no errors in any run', rows.every((r) => r.f.errors === 0), `${rows.reduce((a, r) => a + r.f.errors, 0)} errors`],
  ];
  process.stdout.write(`\nGoal (issue 25)${selfTest ? ', not enforced in the self-test' : ''}:\n`);
  for (const [what, ok, detail] of checks) process.stdout.write(`  ${what}: ${detail}: ${ok ? 'ok' : 'FAILED'}\n`);
  if (!selfTest && checks.some(([, ok]) => !ok)) exitCode = 1;
  if (selfTest && !rows.every((r) => r.f.errors === 0)) exitCode = 1;
} catch (err) {
  process.stderr.write(`lab-peers: ${err instanceof Error ? err.message : String(err)}\n`);
  exitCode = 1;
} finally {
  await stopAll();
}
process.exit(exitCode);
