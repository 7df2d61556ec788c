/**
 * The cluster under change: each event (scale up, scale down, a balancer restart or upgrade, a
 * killed replica, a replica that keeps stalling) happens while open-loop traffic flows through
 * nginx, and the outcome is what the users of that traffic saw. Shared by the Compose end-to-end
 * suite, which asserts on the outcomes, and `make chaos`, which prints them.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Compose, ContainerInfo } from '../test-compose/lib/compose.js';
import { run } from '../test-compose/lib/exec.js';
import { expectedByPath, readBackendDelays, type BackendDelays } from './delays.js';
import { SLOW_MS, startOpenLoop, type LoadRun, type OpenLoopOptions, type RequestRecord } from './open-loop.js';
import { describeFailures, ms, perSecond, summarize, type SecondSummary, type Summary } from './report.js';

/** What an event needs of a running Compose cluster. */
export interface ChaosCluster {
  /** nginx's origin on the host (the page, /images/*). */
  readonly web: string;
  readonly compose: Compose;
  /** Waits until N backends run and every balancer routes to exactly them; returns them. */
  waitForBackends(replicas: number, timeoutMs?: number): Promise<ContainerInfo[]>;
}

export interface LoadSettings {
  /** Requests per second through nginx (default 200). */
  readonly rate?: number;
  /**
   * Traffic before the event, so the window starts from a steady state: 3 s, or the longest
   * expected time of the paths if longer (10 s images fill the in-flight set in 10 s).
   */
  readonly warmupMs?: number;
  /** Traffic after the cluster settled, so late failures count too (default 3 s). */
  readonly tailMs?: number;
  /** Paths cycled through (default /images/1; MIXED_IMAGES for all four). */
  readonly paths?: readonly string[];
}

/** What users saw during one event. */
export interface EventOutcome {
  readonly name: string;
  /** The traffic through nginx. */
  readonly run: LoadRun;
  /** The requests due from the event's start to the end of the run, and those still open when it began. */
  readonly window: Summary;
  /** The backends' delays during the event (each request's expected time). */
  readonly delays: BackendDelays;
  /** A slower stream straight to a replica that stays, over the same seconds (when there is one). */
  readonly direct?: LoadRun;
  /** Per second of the window: through nginx, and straight to the surviving replica. */
  readonly seconds: readonly { second: number; web: SecondSummary; direct?: SecondSummary }[];
  /** The stalled replica's share of the window's answers (stall events only). */
  readonly stalledShare?: number;
  /** How long the event's own command took (ms). */
  readonly actionMs: number;
}

const DIRECT_RATE = 20;
const MAX_RUN_MS = 240_000;
/** Where every backend replica listens inside the Compose network. */
const BACKEND_PORT_IN_NETWORK = 8002;

/**
 * What users saw from the event's start on: the requests due from then, and the ones due before
 * but still open when it began (a 10 s image sent 5 s earlier is in flight while replicas leave).
 */
export function eventWindow(records: readonly RequestRecord[], eventAt: number, endAt: number): Summary {
  return summarize(records.filter((r) => r.dueAt >= eventAt || r.endAt > eventAt), 0, endAt);
}

/** Compose's replica number of a container (1, 2, ...). */
const numberOf = (c: ContainerInfo): number => Number(c.labels['com.docker.compose.container-number'] ?? Infinity);

/**
 * Runs `action` while open-loop traffic flows through nginx (and, when `directTo` is given, a
 * slower stream straight to that replica), and returns what both saw from the action's start.
 */
async function underLoad(
  cluster: ChaosCluster,
  name: string,
  settings: LoadSettings,
  directTo: ContainerInfo | undefined,
  action: () => Promise<void>,
  observe?: (outcome: { run: LoadRun; eventAt: number; endAt: number }) => Partial<EventOutcome>,
): Promise<EventOutcome> {
  const paths = settings.paths ?? ['/images/1'];
  const delays = await readBackendDelays(cluster.compose);
  const expectedMs = expectedByPath(delays);
  const web = startOpenLoop({ origin: cluster.web, ratePerSecond: settings.rate ?? 200, durationMs: MAX_RUN_MS, paths, expectedMs });
  const direct = directTo?.ip
    ? startOpenLoop({ origin: `http://${directTo.ip}:${BACKEND_PORT_IN_NETWORK}`, ratePerSecond: DIRECT_RATE, durationMs: MAX_RUN_MS, paths, expectedMs })
    : undefined;
  let actionMs: number;
  try {
    await sleep(settings.warmupMs ?? Math.max(3_000, ...paths.map((p) => expectedMs[p] ?? 0)));
    web.mark('event');
    const started = performance.now();
    await action();
    actionMs = performance.now() - started;
    web.mark('settled');
    await sleep(settings.tailMs ?? 3_000);
  } finally {
    await Promise.all([web.stop(), direct?.stop()]);
  }
  const [webRun, directRun] = await Promise.all([web.done, direct?.done]);
  const eventAt = webRun.marks.find((m) => m.label === 'event')?.at ?? 0;
  const endAt = Math.max(...webRun.records.map((r) => r.dueAt)) + 1;
  // Both runs started within a millisecond of each other: their seconds line up.
  const webSeconds = perSecond(webRun.records).filter((s) => s.second * 1000 >= Math.floor(eventAt / 1000) * 1000);
  const directSeconds = directRun ? new Map(perSecond(directRun.records).map((s) => [s.second, s])) : undefined;
  return {
    name,
    run: webRun,
    window: eventWindow(webRun.records, eventAt, endAt),
    delays,
    ...(directRun ? { direct: directRun } : {}),
    seconds: webSeconds.map((s) => {
      const d = directSeconds?.get(s.second);
      return d ? { second: s.second, web: s, direct: d } : { second: s.second, web: s };
    }),
    actionMs,
    ...(observe?.({ run: webRun, eventAt, endAt }) ?? {}),
  };
}

/** `up -d --no-recreate --scale backend=N backend`, then waits until every balancer routes to N. */
async function scaleTo(cluster: ChaosCluster, replicas: number): Promise<void> {
  await cluster.compose.compose(['up', '-d', '--no-recreate', '--scale', `backend=${replicas}`, 'backend'], 300_000);
  await cluster.waitForBackends(replicas, 120_000);
}

/** Scale up or down from `from` to `to` backends under load. */
export async function scaleEvent(cluster: ChaosCluster, from: number, to: number, settings: LoadSettings = {}): Promise<EventOutcome> {
  const before = await cluster.waitForBackends(from, 120_000);
  // Compose removes the highest-numbered replicas first: the lowest one stays either way.
  const survivor = [...before].sort((a, b) => numberOf(a) - numberOf(b))[0];
  return underLoad(cluster, `scale ${from}→${to}`, settings, survivor, () => scaleTo(cluster, to));
}

/** Waits until every balancer answers again and routes to the same `replicas` backends. */
const balancersBack = (cluster: ChaosCluster, replicas: number): Promise<ContainerInfo[]> => cluster.waitForBackends(replicas, 120_000);

/**
 * `docker restart` of one balancer replica (the lowest-numbered) under load: it stops accepting,
 * finishes what it has and starts again, while the others take every request. (`docker compose
 * restart balancer` would restart every replica at once.)
 */
export async function restartBalancerEvent(cluster: ChaosCluster, replicas: number, settings: LoadSettings = {}): Promise<EventOutcome> {
  const before = await cluster.waitForBackends(replicas, 120_000);
  const [victim] = (await cluster.compose.containers('balancer')).filter((c) => c.status === 'running').sort((a, b) => numberOf(a) - numberOf(b));
  if (victim === undefined) throw new Error('no running balancer to restart');
  return underLoad(cluster, 'restart a balancer', settings, before[0], async () => {
    // -t: the stop_grace_period of docker-compose.yml, above the balancer's 15 s drain.
    await run('docker', ['restart', '-t', '20', victim.id], { timeoutMs: 120_000 });
    await balancersBack(cluster, replicas);
  });
}

/**
 * `scripts/roll-balancers.sh --build` (`make roll-balancers`) under load: the image rebuilt, new
 * replicas started beside the old ones, then each old one stopped once the new ones are ready, as
 * an upgrade does.
 */
export async function upgradeBalancerEvent(cluster: ChaosCluster, replicas: number, settings: LoadSettings = {}): Promise<EventOutcome> {
  const before = await cluster.waitForBackends(replicas, 120_000);
  return underLoad(cluster, 'upgrade the balancers (rolling)', settings, before[0], async () => {
    await cluster.compose.command('bash', ['scripts/roll-balancers.sh', '--build'], 600_000);
    await balancersBack(cluster, replicas);
  });
}

/** `docker kill` of one backend under load; the balancers must route around it. Leaves N-1 running. */
export async function killReplicaEvent(cluster: ChaosCluster, replicas: number, settings: LoadSettings = {}): Promise<EventOutcome> {
  const before = [...(await cluster.waitForBackends(replicas, 120_000))].sort((a, b) => numberOf(a) - numberOf(b));
  const victim = before.at(-1);
  if (victim === undefined) throw new Error('no backend to kill');
  return underLoad(cluster, 'docker kill a replica', settings, before[0], async () => {
    await run('docker', ['kill', victim.id], { timeoutMs: 60_000 });
    await cluster.waitForBackends(replicas - 1, 120_000);
  });
}

/** The Node process of a container run with `init: true` (the child of docker-init). */
async function appPid(container: ContainerInfo): Promise<number> {
  const inspected = await run('docker', ['inspect', '-f', '{{.State.Pid}}', container.id], { timeoutMs: 30_000 });
  const initPid = Number(inspected.stdout.trim());
  const children = (await readFile(`/proc/${initPid}/task/${initPid}/children`, 'utf8')).trim().split(/\s+/).map(Number);
  const pid = children[0];
  if (pid === undefined || !Number.isInteger(pid) || pid <= 0) throw new Error(`no process under docker-init ${initPid} in ${container.hostname}`);
  return pid;
}

export interface StallPattern {
  /** How long the process is frozen each time (default 50 ms). */
  readonly stallMs?: number;
  /** One stall this often (default every 100 ms: frozen half the time). */
  readonly everyMs?: number;
  /** How long the stalls go on (default 10 s). */
  readonly durationMs?: number;
}

/**
 * One replica freezes for `stallMs` out of every `everyMs` (SIGSTOP / SIGCONT from the host, like
 * a long GC pause or a CPU-starved container), over and over, under load. Needs permission to
 * signal the container's process (root, as in CI).
 */
export async function stallReplicaEvent(cluster: ChaosCluster, replicas: number, pattern: StallPattern = {}, settings: LoadSettings = {}): Promise<EventOutcome> {
  const { stallMs = 50, everyMs = 100, durationMs = 10_000 } = pattern;
  const before = [...(await cluster.waitForBackends(replicas, 120_000))].sort((a, b) => numberOf(a) - numberOf(b));
  const victim = before[0];
  if (victim === undefined) throw new Error('no backend to stall');
  const pid = await appPid(victim);
  try {
    process.kill(pid, 0);
  } catch (err) {
    throw new Error(`cannot signal ${victim.hostname}'s process ${pid} (${(err as { code?: string }).code ?? String(err)}): the stall event needs root`, { cause: err });
  }
  const stalledId = `${victim.hostname}:${BACKEND_PORT_IN_NETWORK}`;
  return underLoad(
    cluster,
    `one replica stalls ${stallMs} ms every ${everyMs} ms`,
    { ...settings, tailMs: 0 },
    undefined,
    async () => {
      const end = performance.now() + durationMs;
      try {
        while (performance.now() < end) {
          process.kill(pid, 'SIGSTOP');
          await sleep(stallMs);
          process.kill(pid, 'SIGCONT');
          await sleep(everyMs - stallMs);
        }
      } finally {
        process.kill(pid, 'SIGCONT');
      }
    },
    ({ run: r, eventAt, endAt }) => {
      const answered = r.records.filter((x) => x.dueAt >= eventAt && x.dueAt < endAt && x.replica !== undefined);
      return { stalledShare: answered.length === 0 ? 0 : answered.filter((x) => x.replica === stalledId).length / answered.length };
    },
  );
}

/**
 * Worst per-second p99 beyond the expected time in the window through nginx, and of the direct
 * stream in the same seconds (beyond it: with mixed images a second's plain p99 is the 10 s image's).
 */
export function worstSecond(outcome: EventOutcome): { web: number; direct: number | undefined } {
  const web = Math.max(0, ...outcome.seconds.map((s) => s.web.beyond.p99));
  const direct = outcome.direct ? Math.max(0, ...outcome.seconds.map((s) => s.direct?.beyond.p99 ?? 0)) : undefined;
  return { web, direct };
}

/** `20 GET/s, /images/1..4 (1.00 s–10.00 s)`: the rate, the paths and their expected times. */
export function describeStream(options: OpenLoopOptions): string {
  const ids = options.paths.map((p) => /^\/images\/(\d+)$/.exec(p)?.[1]).map(Number);
  const consecutive = ids.length > 1 && ids.every((id, i) => Number.isInteger(id) && id === (ids[0] ?? 0) + i);
  const paths = consecutive ? `/images/${ids[0] ?? ''}..${ids.at(-1) ?? ''}` : [...new Set(options.paths)].join(' ');
  const expected = options.paths.flatMap((p) => {
    const t = options.expectedMs?.[p];
    return t === undefined ? [] : [t];
  });
  const [low, high] = [Math.min(...expected), Math.max(...expected)];
  const times = expected.length === 0 ? '' : ` (${low === high ? ms(low) : `${ms(low)}–${ms(high)}`})`;
  return `${options.ratePerSecond} GET/s, ${paths}${times}`;
}

/** The events as a table for a person: one row per event, what users saw from its start on. */
export function eventTable(outcomes: readonly EventOutcome[]): string {
  const rows = [
    `slow: more than ${ms(SLOW_MS)} beyond the request's expected time (its image's delay at the backends' delay scale); +p99, +max: latency beyond that time.`,
    '',
    '| event | stream (expected) | requests | failed | slow | resent | p50 | p99 | max | +p99 | +max | worst second +p99 (direct to a replica) | client late ≤ | note |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const o of outcomes) {
    const w = o.window;
    const worst = worstSecond(o);
    const note = o.stalledShare === undefined ? `command ${ms(o.actionMs)}` : `stalled replica's share ${(o.stalledShare * 100).toFixed(1)} %`;
    rows.push(
      `| ${o.name} | ${describeStream(o.run.options)} | ${w.requests} | ${describeFailures(w)} | ${w.slow} | ${w.resent} | ${ms(w.p50)} | ${ms(w.p99)} | ${ms(w.max)} | ${ms(w.beyond.p99)} | ${ms(w.beyond.max)} | ${ms(worst.web)}${worst.direct === undefined ? '' : ` (${ms(worst.direct)})`} | ${ms(w.late)} | ${note} |`,
    );
  }
  return rows.join('\n');
}
