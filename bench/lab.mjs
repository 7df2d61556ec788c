// `make lab`: the shape of Linkerd's 2016 experiment ("Beyond Round Robin: Load Balancing for
// Latency") on local processes, no Docker: several backends, one of them made slower, the same
// seeded open-loop traffic through our balancer under every policy, each with all replicas
// healthy and then with the slow one. The lab itself (services/balancer/src/lab) generates the
// traffic and measures; this script starts the processes, asks for the runs over the admin API
// and prints the tables.
//
// Settings (env):
//   LAB_BACKENDS      backends (Linkerd's example cluster had ten) (10)
//   LAB_RATE          requests per second                        (300)
//   LAB_DURATION_MS   per policy and comparison                  (10000)
//   LAB_SLOW_MS       extra latency of the slow replica          (50)
//   LAB_SEED          traffic seed                               (1)
//
// Exit codes: 0 both acceptance checks hold; 1 a check failed or a process died; 2 bad settings.
import { join } from 'node:path';
import { existsSync, mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../scripts/cluster-lib.mjs';
import { adminJson, http, intSetting, waitUntil } from './common.mjs';
import { assertAlive, createSupervisor } from './processes.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BALANCER_MAIN = join(ROOT, 'services/balancer/dist/main.js');
const BACKEND_MAIN = join(ROOT, 'services/backend/dist/main.js');
const TOKEN = 'lab-admin-token';
const BACKEND_TOKEN = 'lab-backend-token';
const POLICIES = ['least-connections', 'round-robin', 'random', 'p2c', 'peak-ewma'];

const problems = [];
const int = intSetting(process.env, problems);
const settings = {
  backends: int('LAB_BACKENDS', 10, 2),
  rate: int('LAB_RATE', 300, 1),
  durationMs: int('LAB_DURATION_MS', 10_000, 500),
  slowMs: int('LAB_SLOW_MS', 50, 1),
  seed: int('LAB_SEED', 1, 0),
};
if (problems.length > 0) {
  process.stderr.write(`lab: ${problems.join('\n')}\n`);
  process.exit(2);
}
for (const main of [BALANCER_MAIN, BACKEND_MAIN]) {
  if (!existsSync(main)) {
    process.stderr.write(`lab: ${main} is missing: run "npm run build" (make lab does)\n`);
    process.exit(1);
  }
}

/** JSON request to a balancer's admin API with this script's token (common.mjs's adminJson). */
const api = (method, url, body) => adminJson(TOKEN, method, url, body);

const pad = (s, n) => String(s).padEnd(n);
const pct = (x) => (x === null ? '-' : `${(x * 100).toFixed(1)} %`);

/** A Markdown table of one comparison. */
function table(results, slowId) {
  const rows = [
    '| policy | p50 ms | p99 ms | p99.9 ms | errors | slow replica share | slow max / mean in-flight | Jain |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const slow = r.upstreams.find((u) => u.id === slowId);
    rows.push(`| ${pad(r.policy, 17)} | ${r.p50Ms} | ${r.p99Ms} | ${r.p999Ms} | ${r.errors} | ${pct(slow ? slow.share : null)} | ${slow ? `${slow.maxInFlight} / ${slow.meanInFlight}` : '-'} | ${r.jain} |`);
  }
  return rows.join('\n');
}

const supervisor = createSupervisor(mkdtempSync(join(tmpdir(), 'lb-lab-')));
const stopAll = async () => { await supervisor.stopAll(); };
process.once('SIGINT', () => { void stopAll().then(() => process.exit(130)); });

let exitCode = 0;
try {
  const ports = await freePorts(settings.backends + 2);
  const backendPorts = ports.slice(0, settings.backends);
  const [dataPort, adminPort] = ports.slice(settings.backends);
  const procs = backendPorts.map((port, i) =>
    supervisor.spawnProcess(`backend-${i + 1}`, process.execPath, [BACKEND_MAIN, String(port)], {
      env: { ...process.env, BACKEND_ID: `backend-${i + 1}`, BACKEND_DELAYS_MS: '0,0,0,0', BACKEND_ADMIN_TOKEN: BACKEND_TOKEN, BACKEND_LOG_LEVEL: 'warn' },
    }),
  );
  const balancer = supervisor.spawnProcess('balancer', process.execPath, [
    BALANCER_MAIN, '--port', String(dataPort), '--admin-port', String(adminPort), '--workers', '1', '--log-level', 'warn',
    '--lab', '--admin-token', TOKEN, '--backend-admin-token', BACKEND_TOKEN, ...backendPorts.map((p) => `127.0.0.1:${p}`),
  ]);
  procs.push(balancer);
  const admin = `http://127.0.0.1:${adminPort}`;
  await waitUntil('every backend up behind the balancer', async () => {
    assertAlive(procs);
    const view = JSON.parse((await http('GET', `${admin}/api/upstreams`)).body);
    return view.upstreams.filter((u) => u.available && u.state === 'up').length === settings.backends;
  }, 60_000);

  const slowId = `127.0.0.1:${backendPorts.at(-1)}`;
  const base = { rate: settings.rate, durationMs: settings.durationMs, seed: settings.seed, mix: [1] };
  /** One lab comparison over the admin API; resolves with its results. */
  const compare = async (spec) => {
    const started = await api('POST', `${admin}/api/lab/compare`, spec);
    if (started.status !== 202) throw new Error(`compare refused: ${started.status} ${JSON.stringify(started.body)}`);
    let status;
    await waitUntil('the comparison', async () => {
      assertAlive(procs);
      status = (await api('GET', `${admin}/api/lab`)).body;
      return status.state !== 'running';
    }, 2 * (settings.durationMs + 15_000));
    if (status.state !== 'done') throw new Error(`comparison ended ${status.state}: ${status.error}`);
    return status.results;
  };

  // Warm-up, discarded: JIT, keep-alive pools and the first-request costs of every process would
  // otherwise land in whichever policy runs first.
  await compare({ ...base, durationMs: 3000, policies: ['least-connections'] });

  // Each policy runs healthy and then slow back to back, so the two runs it is judged on are
  // seconds apart: on a shared machine the background load drifts over minutes, and comparing a
  // slow run with a healthy run made much earlier would measure the machine, not the policy.
  const healthy = [];
  const slow = [];
  const scenario = { upstream: slowId, fault: { extraLatencyMs: settings.slowMs } };
  for (const policy of POLICIES) {
    process.stdout.write(`${policy}: healthy, then ${slowId} ${settings.slowMs} ms slower (${settings.rate} req/s, ${settings.durationMs / 1000} s each)\n`);
    healthy.push(...(await compare({ ...base, policies: [policy] })));
    slow.push(...(await compare({ ...base, policies: [policy], scenario })));
  }
  process.stdout.write(`\nAll replicas healthy:\n${table(healthy, slowId)}\n`);
  process.stdout.write(`\nOne replica (${slowId}) ${settings.slowMs} ms slower:\n${table(slow, slowId)}\n`);

  const byPolicy = (rs, p) => rs.find((r) => r.policy === p);
  const lc = byPolicy(slow, 'least-connections');
  const best = [...slow].sort((a, b) => a.p99Ms - b.p99Ms)[0];
  const bestHealthy = byPolicy(healthy, best.policy);
  const ratio = best.p99Ms / bestHealthy.p99Ms;
  const lcShare = lc.badShare ?? 1;
  // Latency on a shared machine is only as good as the machine's quiet: say how busy it was.
  process.stdout.write(`\nLoad average at the end: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (CPUs: ${(await import('node:os')).availableParallelism()})\n`);
  process.stdout.write(`\nAcceptance (${settings.backends} backends, ${settings.rate} req/s, one ${settings.slowMs} ms slower):\n`);
  process.stdout.write(`  least-connections sends the slow replica ${pct(lcShare)} of requests (want <= 5 %): ${lcShare <= 0.05 ? 'ok' : 'FAILED'}\n`);
  process.stdout.write(`  best p99: ${best.policy} ${best.p99Ms} ms vs ${bestHealthy.p99Ms} ms all-healthy = ${ratio.toFixed(2)}x (want <= 1.2x): ${ratio <= 1.2 ? 'ok' : 'FAILED'}\n`);
  if (lcShare > 0.05 || ratio > 1.2) exitCode = 1;
} catch (err) {
  process.stderr.write(`lab: ${err instanceof Error ? err.message : String(err)}\n`);
  exitCode = 1;
} finally {
  await stopAll();
}
process.exit(exitCode);
