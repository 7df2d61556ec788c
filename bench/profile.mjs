// CPU profiles under wrk (issue 24): each target takes a warm-up and a measured wrk run; only the
// samples of the measured run are summed, by group of functions and by function. Compares our
// balancer with the plain undici proxy (bench/plain-proxy.mjs) on the same backends, in
// interleaved rounds. Two profilers:
//   perf (the default when `perf` is installed): `perf record -e cpu-clock -g` on the target
//     started with --perf-basic-prof; on-CPU samples of every thread, kernel included
//     (bench/perf-script.mjs). The one to trust on a shared machine.
//   v8: `node --cpu-prof`, the main thread only, wall-clock samples (bench/cpuprofile.mjs).
//
//   npm run build -w @lcb/balancer && node bench/profile.mjs
//
// Settings (env): BENCH_PROFILE_TARGETS (plain,balancer-w1: any Node target of targets.mjs, the
// before ones with BENCH_BEFORE_MAIN),
// BENCH_SCENARIO (tiny; or 16k, slow), BENCH_ROUNDS (2), BENCH_DURATION (10), BENCH_WARMUP (3),
// BENCH_CONNECTIONS (64), BENCH_PROFILE_TOP (30 functions), BENCH_PROFILER (perf or v8). Writes
// bench/results/profile-<date>.md and .json (gitignored) and keeps the raw profiles there
// (.cpuprofile: Chrome DevTools or speedscope; .perf.txt: `perf script` text, speedscope too).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, http, intSetting, resetBackends, startBackends, waitUntil } from './common.mjs';
import { summariseProfile } from './cpuprofile.mjs';
import { summarisePerfScript } from './perf-script.mjs';
import { CLOCK_TICKS, assertAlive, createSupervisor, processTreeCpuTicks } from './processes.mjs';
import { SCENARIOS } from './report.mjs';
import { BEFORE_TARGETS, TARGET_NAMES, createTargetStarter } from './targets.mjs';
import { runWrk } from './wrk.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BALANCER_MAIN = join(ROOT, 'services/balancer/dist/main.js');
const NODE_TARGETS = [...TARGET_NAMES, ...BEFORE_TARGETS].filter((t) => !['direct', 'nginx', 'haproxy'].includes(t));

function readSettings(env) {
  const problems = [];
  const int = intSetting(env, problems);
  const targets = (env.BENCH_PROFILE_TARGETS || 'plain,balancer-w1').split(',').map((s) => s.trim()).filter(Boolean);
  for (const t of targets) if (!NODE_TARGETS.includes(t)) problems.push(`BENCH_PROFILE_TARGETS: "${t}" is not a Node target (${NODE_TARGETS.join(', ')})`);
  const scenario = env.BENCH_SCENARIO || 'tiny';
  if (!(scenario in SCENARIOS)) problems.push(`BENCH_SCENARIO: unknown "${scenario}"`);
  const settings = {
    targets,
    scenario,
    rounds: int('BENCH_ROUNDS', 2, 1),
    duration: int('BENCH_DURATION', 10, 1),
    warmup: int('BENCH_WARMUP', 3, 1),
    connections: int('BENCH_CONNECTIONS', 64, 1),
    threads: 1,
    top: int('BENCH_PROFILE_TOP', 30, 1),
    profiler: env.BENCH_PROFILER || (spawnSync('perf', ['--version']).status === 0 ? 'perf' : 'v8'),
  };
  if (!['perf', 'v8'].includes(settings.profiler)) problems.push(`BENCH_PROFILER: "${settings.profiler}" is neither perf nor v8`);
  if (problems.length > 0) {
    console.error(`profile: bad settings:\n  ${problems.join('\n  ')}`);
    process.exit(2);
  }
  return settings;
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

/** One profiled run of `target`: wrk numbers, CPU from /proc, and the summed profile of its threads. */
async function profileOne({ supervisor, settings, backends, workDir, round, target }) {
  const profDir = join(workDir, `${target}-${round}`);
  mkdirSync(profDir, { recursive: true });
  const perf = settings.profiler === 'perf';
  // --interpreted-frames-native-stack: functions not optimised yet still show by name in perf.
  // --perf-basic-prof turns V8's log on too: into the run's dir, not the working directory.
  const nodeArgs = perf
    ? ['--perf-basic-prof', '--interpreted-frames-native-stack', `--logfile=${join(profDir, 'v8-%p.log')}`]
    : ['--cpu-prof', `--cpu-prof-dir=${profDir}`];
  const startTarget = createTargetStarter({ supervisor, workDir, backends, balancerMain: BALANCER_MAIN, freePort, nodeArgs });
  const started = await startTarget(target);
  const url = `http://127.0.0.1:${started.port}${SCENARIOS[settings.scenario].path}`;
  const procs = [...backends.map((b) => b.proc), started.proc];
  const perfData = join(profDir, 'perf.data');
  let result;
  try {
    await waitUntil(`${target} to answer`, async () => {
      assertAlive(procs);
      if (started.readyUrl && (await http('GET', started.readyUrl)).status !== 200) return false;
      return (await http('GET', url)).status === 200;
    });
    await runWrk(supervisor, settings, settings.warmup, url);
    await resetBackends(backends);
    const recorder = perf
      ? supervisor.spawnProcess(`perf-${target}-${round}`, 'perf', ['record', '-e', 'cpu-clock', '-F', '1999', '-g', '-p', String(started.proc.pid), '-o', perfData, '--', 'sleep', String(settings.duration)])
      : undefined;
    const cpuBefore = processTreeCpuTicks(started.proc.pid);
    const fromUs = nowUs();
    const wrk = await runWrk(supervisor, settings, settings.duration, url);
    const toUs = nowUs();
    const cpuAfter = processTreeCpuTicks(started.proc.pid);
    await recorder?.exited;
    assertAlive(procs);
    result = { target, round, requests: wrk.requests, errors: wrk.errorCount, rps: wrk.requests / (wrk.durationUs / 1e6),
      p99Ms: wrk.latencyUs.p99 / 1000, cpuUsPerRequest: (((cpuAfter - cpuBefore) / CLOCK_TICKS) * 1e6) / wrk.requests, fromUs, toUs };
  } finally {
    // SIGTERM: both the balancer and the plain proxy exit through process.exit, which writes V8's profiles.
    await started.proc.stop();
  }
  if (perf) {
    // perf resolves JavaScript names from /tmp/perf-<pid>.map, which the target left behind.
    const out = spawnSync('perf', ['script', '-i', perfData], { encoding: 'utf8', maxBuffer: 2 ** 30 });
    if (out.status !== 0) throw new Error(`perf script failed: ${out.stderr}`);
    const text = join(profDir, 'perf.txt');
    writeFileSync(text, out.stdout);
    rmSync(`/tmp/perf-${started.proc.pid}.map`, { force: true });
    result.profiles = [text];
    result.summary = [summarisePerfScript(out.stdout)];
    return result;
  }
  const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error(`${target}: no .cpuprofile in ${profDir}`);
  result.profiles = files.map((f) => join(profDir, f));
  result.summary = files.map((f) => summariseProfile(JSON.parse(readFileSync(join(profDir, f), 'utf8')), result.fromUs, result.toUs));
  return result;
}

/** Sums the summaries of several threads, or of several rounds of one target. */
function merge(summaries) {
  const out = { busyMs: 0, idleMs: 0, samples: 0, groups: new Map(), functions: new Map() };
  for (const s of summaries) {
    out.busyMs += s.busyMs;
    out.idleMs += s.idleMs;
    out.samples += s.samples;
    for (const [key, list] of [['group', s.groups], ['name', s.functions]]) {
      const into = key === 'group' ? out.groups : out.functions;
      for (const e of list) {
        const entry = into.get(e[key]) ?? { ...e, selfMs: 0, totalMs: 0 };
        entry.selfMs += e.selfMs;
        entry.totalMs += e.totalMs;
        into.set(e[key], entry);
      }
    }
  }
  const bySelf = (a, b) => b.selfMs - a.selfMs || b.totalMs - a.totalMs;
  return { ...out, groups: [...out.groups.values()].sort(bySelf), functions: [...out.functions.values()].sort(bySelf) };
}

/** [items that pass `keep`, the others]. */
function splitSmall(items, keep) {
  return [items.filter(keep), items.filter((i) => !keep(i))];
}

/**
 * Self µs/req per group, target beside target, and each target's difference from the first:
 * where the extra CPU of one target over the other goes.
 */
function compareGroups(targets, merged) {
  const perReq = (target, group) => {
    const { requests, summary } = merged[target];
    const g = summary.groups.find((x) => x.group === group);
    return g === undefined ? 0 : (g.selfMs * 1000) / requests;
  };
  const all = [...new Set(targets.flatMap((t) => merged[t].summary.groups.map((g) => g.group)))];
  const rows = all.map((group) => ({ group, values: targets.map((t) => perReq(t, group)) }))
    .sort((a, b) => Math.max(...b.values) - Math.max(...a.values));
  const [first, ...others] = targets;
  const head = ['group', ...targets.map((t) => `${t} self µs/req`), ...others.map((t) => `${t} − ${first}`)];
  const out = ['## Self time per request, by group', '', `| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  const line = (label, values) => `| ${label} | ${values.map((v) => v.toFixed(2)).join(' | ')} | ${values.slice(1).map((v) => (v - values[0] >= 0 ? '+' : '') + (v - values[0]).toFixed(2)).join(' | ')} |`;
  const [big, small] = splitSmall(rows, (r) => Math.max(...r.values) >= 0.3);
  for (const r of big) out.push(line(r.group, r.values));
  if (small.length > 0) out.push(line(`${small.length} more groups, each under 0.3 µs/req`, targets.map((_, i) => small.reduce((n, r) => n + r.values[i], 0))));
  out.push(line('**all**', targets.map((t) => (merged[t].summary.busyMs * 1000) / merged[t].requests)));
  return out;
}

function render(settings, runs, meta) {
  const out = ['# CPU profiles under wrk', '',
    `- Date: ${meta.date}; load average ${meta.loadStart} at start, ${meta.loadEnd} at end; node ${process.version}`,
    `- Scenario ${settings.scenario} (${SCENARIOS[settings.scenario].path}), wrk -t1 -c${settings.connections} -d${settings.duration}s after ${settings.warmup} s warm-up, ${settings.rounds} round(s) of ${settings.targets.join(', ')}`,
    `- Profiler: ${settings.profiler === 'perf' ? 'perf record -e cpu-clock -F 1999 -g, on-CPU samples of every thread of the target, kernel included' : 'node --cpu-prof, wall-clock samples of each thread (a thread descheduled in a system call is still charged to it)'}`,
    '- µs/req columns: profile milliseconds over the measured run ÷ requests (summed over rounds); share = of busy (non-idle) samples', ''];
  out.push('| target | req/s (rounds) | p99 ms (rounds) | CPU µs/req from /proc | profiled busy µs/req |', '|---|---|---|---:|---:|');
  const merged = {};
  for (const target of settings.targets) {
    const mine = runs.filter((r) => r.target === target);
    const requests = mine.reduce((n, r) => n + r.requests, 0);
    merged[target] = { requests, summary: merge(mine.flatMap((r) => r.summary)) };
    const cpu = mine.reduce((n, r) => n + r.cpuUsPerRequest * r.requests, 0) / requests;
    out.push(`| ${target} | ${mine.map((r) => r.rps.toFixed(0)).join(', ')} | ${mine.map((r) => r.p99Ms.toFixed(1)).join(', ')} | ${cpu.toFixed(1)} | ${((merged[target].summary.busyMs * 1000) / requests).toFixed(1)} |`);
  }
  out.push('', ...compareGroups(settings.targets, merged), '');
  for (const target of settings.targets) {
    const { requests, summary } = merged[target];
    const us = (ms) => ((ms * 1000) / requests).toFixed(2);
    const share = (ms) => `${((ms / summary.busyMs) * 100).toFixed(1)} %`;
    out.push(`## ${target}`, '', '| group | self µs/req | self share | total µs/req | total share |', '|---|---:|---:|---:|---:|');
    const [big, small] = splitSmall(summary.groups, (g) => g.selfMs / summary.busyMs >= 0.002 || g.totalMs / summary.busyMs >= 0.01);
    for (const g of big) out.push(`| ${g.group} | ${us(g.selfMs)} | ${share(g.selfMs)} | ${us(g.totalMs)} | ${share(g.totalMs)} |`);
    const rest = small.reduce((n, g) => n + g.selfMs, 0);
    if (small.length > 0) out.push(`| ${small.length} more groups, each under 0.2 % | ${us(rest)} | ${share(rest)} | | |`);
    out.push('', `Top ${settings.top} functions by self time:`, '', '| function | group | self µs/req | total µs/req |', '|---|---|---:|---:|');
    for (const f of summary.functions.slice(0, settings.top)) out.push(`| \`${f.name}\` | ${f.group} | ${us(f.selfMs)} | ${us(f.totalMs)} |`);
    const ownTotals = summary.functions.filter((f) => f.group.startsWith('ours:') || f.group === 'plain-proxy.mjs')
      .sort((a, b) => b.totalMs - a.totalMs).slice(0, settings.top);
    out.push('', 'Own functions by total time (self plus everything they call):', '', '| function | self µs/req | total µs/req |', '|---|---:|---:|');
    for (const f of ownTotals) out.push(`| \`${f.name}\` | ${us(f.selfMs)} | ${us(f.totalMs)} |`);
    out.push('');
  }
  return out.join('\n');
}

async function main() {
  const settings = readSettings(process.env);
  const workDir = mkdtempSync(join(tmpdir(), 'lcb-profile-'));
  const supervisor = createSupervisor(workDir);
  process.once('exit', () => { supervisor.killAllSync(); });
  process.once('SIGINT', () => { supervisor.killAllSync(); process.exit(1); });
  const meta = { date: new Date().toISOString(), loadStart: loadavg()[0].toFixed(2), loadEnd: '' };
  const runs = [];
  try {
    const backends = await startBackends(supervisor, 50);
    for (let round = 1; round <= settings.rounds; round++) {
      for (const target of settings.targets) {
        const r = await profileOne({ supervisor, settings, backends, workDir, round, target });
        console.log(`round ${round} ${target.padEnd(12)} ${r.rps.toFixed(0).padStart(6)} req/s  CPU ${r.cpuUsPerRequest.toFixed(1)} µs/req  errors ${r.errors}`);
        runs.push(r);
      }
    }
  } finally {
    await supervisor.stopAll();
  }
  meta.loadEnd = loadavg()[0].toFixed(2);
  const resultsDir = join(ROOT, 'bench/results');
  const stamp = `profile-${meta.date.replace(/[:.]/g, '-')}`;
  const keep = join(resultsDir, stamp);
  mkdirSync(keep, { recursive: true });
  for (const r of runs) {
    r.profiles = r.profiles.map((p, i) => {
      const to = join(keep, settings.profiler === 'perf' ? `${r.target}-round${r.round}.perf.txt` : `${r.target}-round${r.round}-thread${i}.cpuprofile`);
      writeFileSync(to, readFileSync(p));
      return relative(ROOT, to);
    });
  }
  const markdown = render(settings, runs, meta);
  writeFileSync(`${keep}.md`, markdown);
  writeFileSync(`${keep}.json`, JSON.stringify({ settings, meta, runs }, null, 1));
  console.log(`\n${markdown}\nprofile: wrote ${relative(ROOT, keep)}.md, .json and the .cpuprofile files in ${relative(ROOT, keep)}/`);
  rmSync(workDir, { recursive: true, force: true });
}

await main();
