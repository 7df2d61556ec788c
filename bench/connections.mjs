// Issue 7: "10,000 concurrent keep-alive client connections held with RSS < 200 MB".
// For each target (our balancer, and nginx and HAProxy for comparison, started by targets.mjs as
// for the wrk bench): open 10,000 keep-alive client connections from a separate load process, one
// GET on each, keep them all open; read the target's RSS while they idle; one more GET on every
// connection (proves they were held, not closed and reopened); RSS again; close everything.
// Writes bench/CONNECTIONS.md (full run) or bench/results/connections-<date>.md, and the JSON.
//
//   make bench-connections                 (builds first; about 2 minutes)
//   BENCH_CONNS=1000 node bench/connections.mjs   (quick self-test)
//
// Settings (env):
//   BENCH_CONNS              client connections to hold                          (10000)
//   BENCH_CONNS_TARGETS      comma list of nginx,haproxy,plain,balancer,balancer-w1,balancer-wN (all);
//                            also before,before-w1 with BENCH_BEFORE_MAIN (see run.mjs)
//   BENCH_CONNS_HOLD_S       how long all connections stay idle before the second request (15):
//                            longer than the balancer's default client keep-alive (5 s) and
//                            header (10 s) timeouts, so a target that drops idle clients shows it
//   BENCH_CONNS_IDLE_S       idle keep-alive timeout given to every target, seconds (120); the
//                            balancer's default is 5 s and would close the first connections
//                            before the last are open, nginx's 75 s, HAProxy's here 60 s
//   BENCH_CONNS_CONCURRENCY  connections being opened / requests in flight at once (200); paced
//                            so no accept queue overflows and the upstream pools stay small
//   BENCH_CONNS_RSS_LIMIT_MB the goal for our balancer's peak RSS                  (200)
//   BENCH_CONNS_REPORT       where to write the Markdown (default: see above)
//
// Exit codes: 0 every connection held and every balancer target under the RSS goal; 1 a tool is
// missing, a process died, a connection failed or the goal was missed (the report is still
// written, marked FAILED); 2 bad settings.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { backendStats, freePort, http, intSetting, startBackends, waitUntil } from './common.mjs';
import { nodeForWorkerTargets } from './node-runtime.mjs';
import { assertAlive, createSupervisor, processTreeMemory } from './processes.mjs';
import { BALANCER_TARGETS, BEFORE_MAIN, BEFORE_TARGETS, WORKER_TARGETS, TARGET_NAMES, TARGET_NOTES, createTargetStarter } from './targets.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BENCH = join(ROOT, 'bench');
const BALANCER_MAIN = join(ROOT, 'services/balancer/dist/main.js');
const LOAD_SCRIPT = join(BENCH, 'connections-load.mjs');
/** `direct` has no proxy to measure. */
const CONNS_TARGETS = TARGET_NAMES.filter((t) => t !== 'direct');
const DEFAULTS = Object.freeze({ count: 10_000, holdS: 15, idleS: 120, concurrency: 200, rssLimitMb: 200 });
/** Longest a phase (open all, or one more request on all) may take before the run is failed. */
const PHASE_TIMEOUT_MS = 90_000;
const MIB = 2 ** 20;

// ---------------------------------------------------------------------------------------------
// settings and preflight

function readSettings(env) {
  const problems = [];
  const int = intSetting(env, problems);
  const targetsRaw = env.BENCH_CONNS_TARGETS;
  const wanted = targetsRaw ? targetsRaw.split(',').map((s) => s.trim()).filter(Boolean) : CONNS_TARGETS;
  // The `before` targets (another build, BENCH_BEFORE_MAIN) only when named.
  const known = [...CONNS_TARGETS, ...(BEFORE_MAIN === null ? [] : BEFORE_TARGETS)];
  for (const t of wanted) if (!known.includes(t)) problems.push(`BENCH_CONNS_TARGETS: unknown "${t}" (known: ${known.join(', ')})`);
  if (wanted.length === 0) problems.push('BENCH_CONNS_TARGETS is empty');
  const settings = {
    count: int('BENCH_CONNS', DEFAULTS.count, 1),
    holdS: int('BENCH_CONNS_HOLD_S', DEFAULTS.holdS, 0),
    idleS: int('BENCH_CONNS_IDLE_S', DEFAULTS.idleS, 1),
    concurrency: int('BENCH_CONNS_CONCURRENCY', DEFAULTS.concurrency, 1),
    rssLimitMb: int('BENCH_CONNS_RSS_LIMIT_MB', DEFAULTS.rssLimitMb, 1),
    targets: known.filter((t) => wanted.includes(t)),
    report: env.BENCH_CONNS_REPORT,
    fullRun: false,
  };
  settings.fullRun = Object.entries(DEFAULTS).every(([k, v]) => settings[k] === v) && settings.targets.join() === CONNS_TARGETS.join();
  if (settings.holdS >= settings.idleS) problems.push('BENCH_CONNS_HOLD_S must be below BENCH_CONNS_IDLE_S, or the targets close the idle connections by design');
  if (problems.length > 0) {
    console.error(`bench connections: bad settings:\n  ${problems.join('\n  ')}`);
    process.exit(2);
  }
  return settings;
}

/** Soft and hard RLIMIT_NOFILE of this process, from /proc/self/limits. */
function fdLimits() {
  const line = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const value = (v) => (v === 'unlimited' ? Infinity : Number(v));
  return { soft: value(line[1]), hard: value(line[2]) };
}

/** The first line a tool prints for `-v`, or null if it is not installed. */
function toolVersion(command) {
  const out = spawnSync(command, ['-v'], { encoding: 'utf8' });
  if (out.error) return null;
  return `${out.stdout}${out.stderr}`.trim().split('\n')[0] ?? '';
}

/** Exits 1 with the fix when something is missing or a limit is too low; returns what was found. */
function preflight(settings) {
  const fail = (message) => {
    console.error(`bench connections: ${message}`);
    process.exit(1);
  };
  const versions = { node: process.version, nginx: null, haproxy: null };
  for (const tool of ['nginx', 'haproxy']) {
    if (!settings.targets.includes(tool)) continue;
    const version = toolVersion(tool);
    if (version === null) fail(`${tool} is not installed. Install (Debian/Ubuntu, as root): apt-get install -y nginx haproxy`);
    versions[tool] = version.replace(/^nginx version: /, '').replace(/^HAProxy version (\S+).*$/, 'HAProxy $1');
  }
  if (settings.targets.some((t) => BALANCER_TARGETS.includes(t)) && !existsSync(BALANCER_MAIN)) {
    fail(`${relative(ROOT, BALANCER_MAIN)} does not exist. Build it first: npm run build -w @lcb/balancer (make bench-connections does)`);
  }
  try {
    nodeForWorkerTargets({
      wanted: settings.targets.filter((t) => WORKER_TARGETS.includes(t)),
      others: `BENCH_CONNS_TARGETS=${settings.targets.filter((t) => !WORKER_TARGETS.includes(t)).join(',')}`,
      balancerMain: BALANCER_MAIN,
    });
  } catch (err) {
    fail(err.message);
  }

  // Every target and the load process get the hard limit as their soft one (prlimit). Raising the
  // hard limit itself needs CAP_SYS_RESOURCE, which a container may not have (this one did not).
  const fd = fdLimits();
  const nofile = Math.min(fd.hard, 1_048_576);
  const needed = settings.count + 1000;
  if (nofile < needed) fail(`the fd hard limit is ${fd.hard}, ${settings.count} connections need about ${needed}: raise it (ulimit -Hn) or lower BENCH_CONNS`);

  // One source address to one target port: each client connection takes an ephemeral port.
  const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const ephemeral = high - low + 1;
  if (ephemeral < settings.count + 2000) fail(`only ${ephemeral} ephemeral ports (net.ipv4.ip_local_port_range ${low} ${high}) for ${settings.count} connections`);
  return { versions, fd, nofile, ephemeral: `${low}–${high}` };
}

// ---------------------------------------------------------------------------------------------
// measuring

/** Server-side sockets in ESTABLISHED state on local port `port` (IPv4), from /proc/net/tcp. */
function establishedOnPort(port) {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let n = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
    const fields = line.trim().split(/\s+/);
    // fields: sl, local_address, rem_address, st (01 = ESTABLISHED), ...
    if (fields[1]?.endsWith(hexPort) && fields[3] === '01') n += 1;
  }
  return n;
}

/** Collects the load process's `WORD {json}` lines into `messages[WORD]`. */
function collectMessages(proc) {
  const messages = {};
  createInterface({ input: proc.child.stdout }).on('line', (line) => {
    const match = /^([A-Z]+) (\{.*\})$/.exec(line);
    if (match) messages[match[1]] = JSON.parse(match[2]);
  });
  return messages;
}

/** Waits for the load process's message `word`, failing at once if any process in `procs` died. */
async function nextMessage(messages, word, procs) {
  let message;
  await waitUntil(`the load process to report ${word}`, () => {
    assertAlive(procs);
    message = messages[word];
    return message !== undefined;
  }, PHASE_TIMEOUT_MS);
  return message;
}

/** One target: start it, hold the connections, measure, stop it. */
async function measureTarget({ supervisor, startTarget, backends, settings, limits, name }) {
  const started = await startTarget(name);
  const procs = [...backends.map((b) => b.proc), started.proc];
  const url = `http://127.0.0.1:${started.port}/tiny`;
  let load = null;
  try {
    await waitUntil(`${name} to answer ${url}`, async () => {
      assertAlive(procs);
      if (started.readyUrl && (await http('GET', started.readyUrl)).status !== 200) return false;
      return (await http('GET', url)).status === 200;
    });
    const before = processTreeMemory(started.proc.pid);

    const startedAt = Date.now();
    const loadArgs = [LOAD_SCRIPT, '--port', String(started.port), '--count', String(settings.count), '--path', '/tiny',
      '--concurrency', String(settings.concurrency)];
    load = supervisor.spawnProcess(`load-${name}`, 'prlimit', [`--nofile=${limits.nofile}:${limits.nofile}`, '--', process.execPath, ...loadArgs],
      { pipeStdout: true, pipeStdin: true });
    procs.push(load);
    // Writing to a load process that just died fails with EPIPE; its death is reported by
    // assertAlive in the next wait, with its log, which says more than EPIPE.
    load.child.stdin.on('error', () => undefined);
    const messages = collectMessages(load);
    const opened = await nextMessage(messages, 'OPENED', procs);
    const openedAt = Date.now();

    // Idle: every response was read by the client; wait until the backends agree nothing is in flight.
    await waitUntil('backends to go idle', async () => (await backendStats(backends)).every((s) => s.inFlight === 0), 10_000);
    // The hold itself: nothing to wait for but the clock, while watching that nothing dies.
    const holdUntil = openedAt + settings.holdS * 1000;
    await waitUntil(`the ${settings.holdS} s idle hold`, () => {
      assertAlive(procs);
      return Date.now() >= holdUntil;
    }, settings.holdS * 1000 + 5000);
    const establishedIdle = establishedOnPort(started.port);
    const idle = processTreeMemory(started.proc.pid);

    load.child.stdin.write('second\n');
    const second = await nextMessage(messages, 'SECOND', procs);
    const heldMs = Date.now() - startedAt;
    const establishedAfter = establishedOnPort(started.port);
    const after = processTreeMemory(started.proc.pid);

    load.child.stdin.write('close\n');
    await waitUntil('the load process to exit', () => load.exit !== null, 30_000);
    return {
      target: name,
      count: settings.count,
      opened,
      second,
      establishedIdle,
      establishedAfter,
      heldMs,
      rssBefore: before.rssBytes,
      rssIdle: idle.rssBytes,
      rssAfter: after.rssBytes,
      rssPeak: after.peakBytes,
      processes: after.processes,
    };
  } finally {
    await load?.stop();
    await started.proc.stop();
  }
}

/** Problems that fail the run: connections not held, or our balancer over the RSS goal. */
function resultProblems(r, settings) {
  const problems = [];
  if (r.opened.failed > 0) problems.push(`${r.target}: ${r.opened.failed} of ${r.count} connections failed on the first request ${JSON.stringify(r.opened.reasons)}`);
  if (r.second.failed > 0) problems.push(`${r.target}: ${r.second.failed} of ${r.opened.ok} held connections failed on the second request ${JSON.stringify(r.second.reasons)}`);
  if (BALANCER_TARGETS.includes(r.target) && r.rssPeak >= settings.rssLimitMb * MIB) {
    problems.push(`${r.target}: peak RSS ${(r.rssPeak / MIB).toFixed(1)} MB is not under the goal of ${settings.rssLimitMb} MB`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// report

function runtimeOf(target, versions) {
  if (target === 'nginx') return versions.nginx;
  if (target === 'haproxy') return versions.haproxy;
  return `node ${versions.node}`;
}

function renderMarkdown({ meta, settings, results, failures }) {
  const mb = (bytes) => (bytes / MIB).toFixed(1);
  const out = ['# Benchmark: 10,000 idle keep-alive client connections', '',
    'Written by `bench/connections.mjs` (`make bench-connections`); rerun it rather than editing this file.',
    'Issue 7 asks for "10,000 concurrent keep-alive client connections held with RSS < 200 MB".', ''];
  if (failures.length > 0) out.push('**THIS RUN FAILED** (the harness exited 1):', '', ...failures.map((f) => `- ${f}`), '');
  out.push(
    `- Date: ${meta.date}`,
    `- Command: \`${meta.command}\``,
    `- Machine: ${meta.machine.nproc} CPUs (nproc), ${meta.machine.memGiB} GiB RAM, Linux ${meta.machine.kernel}; load average ${meta.machine.loadStart} at start`,
    `- Limits: fd limit ${meta.nofile} (soft = hard) for every target and the load process, set with \`prlimit\` (this shell: soft ${meta.fd.soft}, hard ${meta.fd.hard}); ephemeral ports ${meta.ephemeral}, one source address (127.0.0.1)`,
    `- Load: a separate node process (\`bench/connections-load.mjs\`, raw node:net) opens ${settings.count} connections to the target, at most ${settings.concurrency} being opened at a time, sends \`GET /tiny\` (HTTP/1.1 keep-alive) on each and reads the whole response; keeps all open and idle for ${settings.holdS} s after the last one answered; then one more \`GET /tiny\` on every connection, again at most ${settings.concurrency} at a time`,
    `- Idle timeout: every target is told to keep idle client connections ${settings.idleS} s (balancer \`--client-keep-alive-timeout-ms ${settings.idleS * 1000}\`, its default being 5 s; nginx \`keepalive_timeout ${settings.idleS}s\`, default 75 s; HAProxy \`timeout client ${settings.idleS}s\`), longer than the whole hold ("held for" below); nginx \`worker_connections\` and HAProxy \`maxconn\` are raised to ${settings.count + 1000}; HAProxy runs with \`no strict-limits\` because it wants 2 fds per connection, more than the fd limit, while idle clients need one`,
    '- Backends: 4 × `bench/origin.mjs`, the same for every target; each target is started fresh as for the wrk bench (see RESULTS.md for its settings)',
    '',
    'Targets:', '',
    ...settings.targets.map((t) => `- **${t}**: ${TARGET_NOTES[t]}`),
    '',
    'RSS is VmRSS summed over the target\'s process tree (nginx: master + worker; the balancer: one process, all its threads), from',
    `/proc/<pid>/status: **before** the load connects, **idle** at the end of the ${settings.holdS} s hold (every connection open, no request in flight), **after** the`,
    'second request on every connection; **peak** is VmHWM (the high-water mark since start, summed the same way). "Per connection"',
    'is (idle − before) ÷ connections held. "Server sockets" counts ESTABLISHED sockets on the target\'s port in /proc/net/tcp',
    '(the kernel\'s view, independent of what the client saw). The goal applies to our balancer; its verdict is on the peak.',
    '',
  );
  const head = ['target', 'runtime', 'held', 'server sockets idle / after', 'failures 1st / 2nd', 'held for',
    'RSS before MB', 'RSS idle MB', 'RSS after 2nd MB', 'peak MB', 'per connection KiB', `peak < ${settings.rssLimitMb} MB`];
  out.push(`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`);
  for (const r of results) {
    const held = r.second.ok;
    const perConnection = r.opened.ok > 0 ? `${((r.rssIdle - r.rssBefore) / 1024 / r.opened.ok).toFixed(1)}` : '—';
    const verdict = BALANCER_TARGETS.includes(r.target) ? (r.rssPeak < settings.rssLimitMb * MIB ? 'pass' : '**FAIL**') : '(n/a)';
    out.push(`| ${[`**${r.target}**`, runtimeOf(r.target, meta.versions), `${held} of ${r.count}`, `${r.establishedIdle} / ${r.establishedAfter}`,
      `${r.opened.failed} / ${r.second.failed}`, `${(r.heldMs / 1000).toFixed(1)} s`, mb(r.rssBefore), mb(r.rssIdle), mb(r.rssAfter), mb(r.rssPeak),
      perConnection, verdict].join(' | ')} |`);
  }
  out.push('', `Raw numbers: \`${meta.jsonPath}\` (gitignored).`, '');
  return out.join('\n');
}

function commandLine() {
  const vars = Object.keys(process.env).filter((k) => k.startsWith('BENCH_CONNS')).sort().map((k) => `${k}=${process.env[k]}`);
  return [...vars, 'node bench/connections.mjs'].join(' ');
}

// ---------------------------------------------------------------------------------------------
// main

async function main() {
  const settings = readSettings(process.env);
  const { versions, fd, nofile, ephemeral } = preflight(settings);
  const meta = {
    date: new Date().toISOString(),
    command: commandLine(),
    machine: {
      nproc: availableParallelism(),
      memGiB: (totalmem() / 2 ** 30).toFixed(1),
      kernel: release(),
      loadStart: loadavg().map((l) => l.toFixed(2)).join(' '),
    },
    versions,
    fd,
    nofile,
    ephemeral,
    jsonPath: '',
  };
  const workDir = mkdtempSync(join(tmpdir(), 'lcb-conns-'));
  const supervisor = createSupervisor(workDir);
  process.once('exit', () => { supervisor.killAllSync(); });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      console.error(`\nbench connections: ${signal}; stopping everything (logs kept in ${workDir})`);
      supervisor.killAllSync();
      process.exit(1);
    });
  }
  console.log(`bench connections: ${settings.count} connections × ${settings.targets.join(', ')}; fd limit ${nofile} for targets and load; logs in ${workDir}`);

  const limits = { clientConnections: settings.count, nofile, clientIdleTimeoutS: settings.idleS };
  const results = [];
  let ok = false;
  try {
    // slowMs 0: only /tiny is used here.
    const backends = await startBackends(supervisor, 0);
    const startTarget = createTargetStarter({ supervisor, workDir, backends, balancerMain: BALANCER_MAIN, freePort, limits });
    for (const name of settings.targets) {
      const r = await measureTarget({ supervisor, startTarget, backends, settings, limits, name });
      results.push(r);
      console.log(`  ${name.padEnd(11)} held ${r.second.ok}/${r.count} (failures ${r.opened.failed}/${r.second.failed}, server sockets ${r.establishedIdle}/${r.establishedAfter})`
        + `  RSS before ${(r.rssBefore / MIB).toFixed(1)} idle ${(r.rssIdle / MIB).toFixed(1)} after ${(r.rssAfter / MIB).toFixed(1)} peak ${(r.rssPeak / MIB).toFixed(1)} MB`
        + `  (opened in ${(r.opened.ms / 1000).toFixed(1)} s, held ${(r.heldMs / 1000).toFixed(1)} s)`);
    }
    ok = true;
  } catch (err) {
    console.error(`\nbench connections: FAILED: ${err.stack ?? err}\nlogs kept in ${workDir}`);
  } finally {
    await supervisor.stopAll();
  }
  if (!ok) return 1;

  const failures = results.flatMap((r) => resultProblems(r, settings));
  const resultsDir = join(BENCH, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = `connections-${meta.date.replace(/[:.]/g, '-')}`;
  const jsonPath = join(resultsDir, `${stamp}.json`);
  meta.jsonPath = relative(ROOT, jsonPath);
  const report = settings.report ?? (settings.fullRun ? join(BENCH, 'CONNECTIONS.md') : join(resultsDir, `${stamp}.md`));
  writeFileSync(jsonPath, `${JSON.stringify({ meta, settings, results, failures }, null, 2)}\n`);
  const markdown = renderMarkdown({ meta, settings, results, failures });
  writeFileSync(report, markdown);
  console.log(`\n${markdown.slice(markdown.indexOf('| target'))}`);
  console.log(`bench connections: wrote ${report} and ${jsonPath}`);
  if (failures.length > 0) {
    console.error(`\nbench connections: FAILED:\n  ${failures.join('\n  ')}\nlogs kept in ${workDir}`);
    return 1;
  }
  rmSync(workDir, { recursive: true, force: true });
  return 0;
}

process.exitCode = await main();
