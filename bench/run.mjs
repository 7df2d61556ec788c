// Benchmark: wrk against direct-to-backend, nginx least_conn, HAProxy leastconn, a plain undici proxy and our balancer
// (default settings, and with 1 and N worker threads; all on the node that runs the bench), in interleaved rounds on one
// machine. Writes bench/RESULTS.md and bench/results/<date>.json.
//
//   make bench                                   (builds first; full run, about 13 minutes)
//   BENCH_DURATION=2 BENCH_ROUNDS=1 npm run bench (quick self-test)
//
// Settings (env):
//   BENCH_DURATION    seconds of each measured wrk run            (10)
//   BENCH_WARMUP      seconds of the discarded warm-up before it   (3)
//   BENCH_ROUNDS      rounds; every round runs every scenario × target (3)
//   BENCH_CONNECTIONS wrk -c                                       (64)
//   BENCH_THREADS     wrk -t                                       (1)
//   BENCH_SLOW_MS     extra latency of the slow backend            (50)
//   BENCH_TARGETS     comma list of direct,nginx,haproxy,plain,balancer,balancer-w1,balancer-wN (all);
//                     also before,before-w1: the build at BENCH_BEFORE_MAIN (default settings,
//                     --workers 1), to compare a change with the commit it starts from in one run
//   BENCH_BEFORE_MAIN another build's services/balancer/dist/main.js (for the before targets)
//   BENCH_SCENARIOS   comma list of tiny,16k,slow                  (all)
//   BENCH_REPORT      where to write the Markdown: bench/RESULTS.md for a run with the default
//                     settings above, else bench/results/bench-<date>.md (gitignored), so a quick
//                     run never overwrites the committed full results
//
// Exit codes: 0 all runs clean; 1 a tool is missing, a process died, or any run saw errors
// (the report is still written, marked FAILED); 2 bad settings.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem, availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SLOW_BACKEND, backendStats, freePort, http, intSetting, resetBackends, startBackends, waitUntil } from './common.mjs';
import { nodeForWorkerTargets } from './node-runtime.mjs';
import { CLOCK_TICKS, assertAlive, createSupervisor, processTreeCpuTicks } from './processes.mjs';
import { SCENARIOS, renderMarkdown, summarise } from './report.mjs';
import { BALANCER_TARGETS, BEFORE_MAIN, BEFORE_TARGETS, WORKER_TARGETS, TARGET_NAMES, TARGET_NOTES, createTargetStarter } from './targets.mjs';
import { WRK_SCRIPT, runWrk, wrkArgs } from './wrk.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BENCH = join(ROOT, 'bench');
const BALANCER_MAIN = join(ROOT, 'services/balancer/dist/main.js');
const INSTALL_HINT = 'apt-get install -y nginx haproxy wrk';
/** The numeric settings of a full run (the brief of issue 7: wrk -t1 -c64 -d10s, 3 rounds). */
const DEFAULTS = Object.freeze({ duration: 10, warmup: 3, rounds: 3, connections: 64, threads: 1, slowMs: 50 });

// ---------------------------------------------------------------------------------------------
// settings and preflight

/** Reads BENCH_* from `env`; prints every problem and exits 2 if there is any. */
function readSettings(env) {
  const problems = [];
  const int = intSetting(env, problems);
  const list = (name, allowed, fallback = allowed) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
    for (const item of items) if (!allowed.includes(item)) problems.push(`${name}: unknown "${item}" (known: ${allowed.join(', ')})`);
    if (items.length === 0) problems.push(`${name} is empty`);
    // Keep the canonical order so rounds always interleave the same way.
    return allowed.filter((a) => items.includes(a));
  };
  const settings = {
    duration: int('BENCH_DURATION', DEFAULTS.duration, 1),
    warmup: int('BENCH_WARMUP', DEFAULTS.warmup, 1),
    rounds: int('BENCH_ROUNDS', DEFAULTS.rounds, 1),
    connections: int('BENCH_CONNECTIONS', DEFAULTS.connections, 1),
    threads: int('BENCH_THREADS', DEFAULTS.threads, 1),
    slowMs: int('BENCH_SLOW_MS', DEFAULTS.slowMs, 1),
    // The `before` targets only when asked for by name (and given a build: BENCH_BEFORE_MAIN).
    targets: list('BENCH_TARGETS', [...TARGET_NAMES, ...BEFORE_TARGETS], TARGET_NAMES),
    scenarios: list('BENCH_SCENARIOS', Object.keys(SCENARIOS)),
    report: env.BENCH_REPORT,
    fullRun: false,
  };
  if (settings.threads > settings.connections) problems.push('BENCH_THREADS must not exceed BENCH_CONNECTIONS (wrk refuses)');
  if (settings.targets.some((t) => BEFORE_TARGETS.includes(t)) && BEFORE_MAIN === null) problems.push(`${BEFORE_TARGETS.join(', ')} need BENCH_BEFORE_MAIN (another build's dist/main.js)`);
  // Only a run with every default may replace the committed bench/RESULTS.md.
  settings.fullRun = Object.entries(DEFAULTS).every(([k, v]) => settings[k] === v)
    && settings.targets.join() === TARGET_NAMES.join() && settings.scenarios.length === Object.keys(SCENARIOS).length;
  if (problems.length > 0) {
    console.error(`bench: bad settings:\n  ${problems.join('\n  ')}`);
    process.exit(2);
  }
  return settings;
}

/** The first line a tool prints for `-v` (stdout or stderr), or null if it is not installed. */
function toolVersion(command) {
  const out = spawnSync(command, ['-v'], { encoding: 'utf8' });
  if (out.error) return null;
  return `${out.stdout}${out.stderr}`.trim().split('\n')[0] ?? '';
}

/** Exits 1 with the exact fix when something the bench needs is missing. Returns tool versions. */
function preflight(settings) {
  const versions = { node: process.version, nginx: toolVersion('nginx'), haproxy: toolVersion('haproxy'), wrk: toolVersion('wrk') };
  const missing = ['wrk', 'nginx', 'haproxy'].filter((t) => versions[t] === null);
  if (missing.length > 0) {
    console.error(`bench: missing ${missing.join(', ')}. Install (Debian/Ubuntu, as root):\n  ${INSTALL_HINT}`);
    process.exit(1);
  }
  if (settings.targets.some((t) => BALANCER_TARGETS.includes(t)) && !existsSync(BALANCER_MAIN)) {
    console.error(`bench: ${relative(ROOT, BALANCER_MAIN)} does not exist. Build it first:\n  npm run build -w @lcb/balancer\n`
      + '(`make bench` builds everything), or leave it out explicitly: BENCH_TARGETS=direct,nginx,haproxy');
    process.exit(1);
  }
  try {
    nodeForWorkerTargets({
      wanted: settings.targets.filter((t) => WORKER_TARGETS.includes(t)),
      others: `BENCH_TARGETS=${settings.targets.filter((t) => !WORKER_TARGETS.includes(t)).join(',')}`,
      balancerMain: BALANCER_MAIN,
    });
  } catch (err) {
    console.error(`bench: ${err.message}`);
    process.exit(1);
  }
  const balancerPkg = JSON.parse(readFileSync(join(ROOT, 'services/balancer/package.json'), 'utf8'));
  return {
    node: versions.node,
    nginx: versions.nginx.replace(/^nginx version: /, ''),
    haproxy: versions.haproxy.replace(/ - https?:\S+$/, ''),
    wrk: versions.wrk.replace(/ Copyright.*$/, '').replace(/ \[\w+\]$/, ''),
    balancer: balancerPkg.version,
  };
}

function machine() {
  const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model ?? 'unknown CPU';
  return {
    nproc: availableParallelism(),
    cpuModel: model.trim(),
    memGiB: (totalmem() / 2 ** 30).toFixed(1),
    kernel: release(),
    loadStart: loadavg().map((l) => l.toFixed(2)).join(' '),
    loadEnd: '',
  };
}

/** How this run was started, as someone would retype it. */
function commandLine() {
  const vars = Object.keys(process.env).filter((k) => k.startsWith('BENCH_')).sort().map((k) => `${k}=${process.env[k]}`);
  const how = process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : 'node bench/run.mjs';
  return [...vars, how].join(' ');
}

// ---------------------------------------------------------------------------------------------
// one run: start target, warm up, measure, stop

async function runOne({ supervisor, settings, backends, startTarget, round, scenario, target }) {
  const path = SCENARIOS[scenario].path;
  const started = await startTarget(target);
  const procs = [...backends.map((b) => b.proc), ...(started.proc ? [started.proc] : [])];
  const url = `http://127.0.0.1:${started.port}${path}`;
  try {
    await waitUntil(`${target} to answer ${url}`, async () => {
      assertAlive(procs);
      if (started.readyUrl && (await http('GET', started.readyUrl)).status !== 200) return false;
      return (await http('GET', url)).status === 200;
    });

    const warmup = await runWrk(supervisor, settings, settings.warmup, url);
    assertAlive(procs);
    await resetBackends(backends);

    const cpuBefore = started.proc ? processTreeCpuTicks(started.proc.pid) : 0;
    const wrk = await runWrk(supervisor, settings, settings.duration, url);
    const cpuAfter = started.proc ? processTreeCpuTicks(started.proc.pid) : 0;
    assertAlive(procs);

    const served = (await backendStats(backends)).map((s) => s.served);
    const totalServed = served.reduce((a, b) => a + b, 0);
    const cpuUs = ((cpuAfter - cpuBefore) / CLOCK_TICKS) * 1e6;
    return {
      round,
      scenario,
      target,
      url,
      requests: wrk.requests,
      durationS: wrk.durationUs / 1e6,
      rps: wrk.requests / (wrk.durationUs / 1e6),
      p50Ms: wrk.latencyUs.p50 / 1000,
      p90Ms: wrk.latencyUs.p90 / 1000,
      p99Ms: wrk.latencyUs.p99 / 1000,
      maxMs: wrk.latencyUs.max / 1000,
      errors: wrk.errors,
      errorCount: wrk.errorCount,
      warmupErrors: warmup.errors,
      warmupErrorCount: warmup.errorCount,
      cpuUsPerRequest: started.proc && wrk.requests > 0 ? cpuUs / wrk.requests : null,
      served,
      slowShare: scenario === 'slow' && target !== 'direct' && totalServed > 0 ? served[SLOW_BACKEND] / totalServed : null,
      slowRps: scenario === 'slow' && target !== 'direct' ? served[SLOW_BACKEND] / (wrk.durationUs / 1e6) : null,
    };
  } finally {
    await started.proc?.stop();
  }
}

/** Problems with one run that make the whole bench fail (exit 1). */
function runProblems(r) {
  const problems = [];
  const where = `round ${r.round}, ${r.scenario}, ${r.target}`;
  if (r.errorCount > 0) problems.push(`${where}: ${r.errorCount} errors ${JSON.stringify(r.errors)}`);
  if (r.warmupErrorCount > 0) problems.push(`${where}: ${r.warmupErrorCount} errors during warm-up ${JSON.stringify(r.warmupErrors)}`);
  if (r.requests === 0) problems.push(`${where}: no request completed`);
  // Every response wrk got must have come from some backend; fewer means the target answered
  // by itself (an error page, a cache) and the numbers are not what they claim to be.
  const servedTotal = r.served.reduce((a, b) => a + b, 0);
  if (servedTotal < r.requests) problems.push(`${where}: backends served ${servedTotal} requests but wrk completed ${r.requests}`);
  return problems;
}

function printRun(r) {
  const cpu = r.cpuUsPerRequest === null ? '     —' : r.cpuUsPerRequest.toFixed(1).padStart(6);
  const share = r.slowShare === null ? '' : `  slow share ${(r.slowShare * 100).toFixed(1)} %`;
  console.log(`  ${r.scenario.padEnd(5)} ${r.target.padEnd(11)} ${r.rps.toFixed(0).padStart(7)} req/s  p50 ${r.p50Ms.toFixed(2).padStart(6)} ms`
    + `  p99 ${r.p99Ms.toFixed(2).padStart(7)} ms  CPU ${cpu} µs/req  errors ${r.errorCount}/${r.warmupErrorCount}${share}`);
}

// ---------------------------------------------------------------------------------------------
// main

async function main() {
  const settings = readSettings(process.env);
  const versions = preflight(settings);
  const meta = {
    date: new Date().toISOString(),
    command: commandLine(),
    machine: machine(),
    versions,
    targetNotes: TARGET_NOTES,
    wrkCommand: `wrk ${wrkArgs(settings, settings.duration, 'http://127.0.0.1:<port><path>').join(' ').replace(WRK_SCRIPT, 'bench/wrk-report.lua')}`,
    jsonPath: '',
  };
  const workDir = mkdtempSync(join(tmpdir(), 'lcb-bench-'));
  const supervisor = createSupervisor(workDir);
  // Whatever happens, no proxy or backend outlives the harness.
  process.once('exit', () => { supervisor.killAllSync(); });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      console.error(`\nbench: ${signal}; stopping everything (logs kept in ${workDir})`);
      supervisor.killAllSync();
      process.exit(1);
    });
  }

  const total = settings.rounds * settings.scenarios.length * settings.targets.length;
  // Warm-up and measured run, plus about 1.5 s to start, check and stop the target.
  const perRun = settings.warmup + settings.duration + 1.5;
  console.log(`bench: ${total} runs of ${settings.warmup}+${settings.duration} s (about ${Math.ceil((total * perRun) / 60)} min); logs in ${workDir}`);

  const runs = [];
  let ok = false;
  try {
    const backends = await startBackends(supervisor, settings.slowMs);
    const startTarget = createTargetStarter({ supervisor, workDir, backends, balancerMain: BALANCER_MAIN, freePort });
    for (let round = 1; round <= settings.rounds; round++) {
      console.log(`round ${round}/${settings.rounds}`);
      for (const scenario of settings.scenarios) {
        for (const target of settings.targets) {
          const run = await runOne({ supervisor, settings, backends, startTarget, round, scenario, target });
          printRun(run);
          runs.push(run);
        }
      }
    }
    ok = true;
  } catch (err) {
    console.error(`\nbench: FAILED: ${err.stack ?? err}\nlogs kept in ${workDir}`);
  } finally {
    await supervisor.stopAll();
  }
  if (!ok) return 1;

  meta.machine.loadEnd = loadavg().map((l) => l.toFixed(2)).join(' ');
  const failures = runs.flatMap(runProblems);
  const summary = summarise(runs, settings.scenarios, settings.targets);
  const resultsDir = join(BENCH, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = `bench-${meta.date.replace(/[:.]/g, '-')}`;
  const jsonPath = join(resultsDir, `${stamp}.json`);
  settings.report ??= settings.fullRun ? join(BENCH, 'RESULTS.md') : join(resultsDir, `${stamp}.md`);
  meta.jsonPath = relative(ROOT, jsonPath);
  writeFileSync(jsonPath, `${JSON.stringify({ meta, settings, summary, runs, failures }, null, 2)}\n`);
  const markdown = renderMarkdown({ meta, settings, summary, runs, failures });
  writeFileSync(settings.report, markdown);
  console.log(`\n${markdown.slice(0, markdown.indexOf('<details>'))}`);
  console.log(`bench: wrote ${settings.report} and ${jsonPath}`);

  if (failures.length > 0) {
    console.error(`\nbench: FAILED: ${failures.length} problem(s):\n  ${failures.join('\n  ')}\nlogs kept in ${workDir}`);
    return 1;
  }
  rmSync(workDir, { recursive: true, force: true });
  return 0;
}

process.exitCode = await main();
