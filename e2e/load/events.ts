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
import { startOpenLoop, type LoadRun } from './open-loop.js';
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
  /** Traffic before the event, so the window starts from a steady state (default 3 s). */
  readonly warmupMs?: number;
  /** Traffic after the cluster settled, so late failures count too (default 3 s). */
  readonly tailMs?: number;
  /** Paths cycled through (default the fast image). */
  readonly paths?: readonly string[];
}

/** What users saw during one event. */
export interface EventOutcome {
  readonly name: string;
  /** The traffic through nginx. */
  readonly run: LoadRun;
  /** From the event's start to the end of the run. */
  readonly window: Summary;
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
  const web = startOpenLoop({ origin: cluster.web, ratePerSecond: settings.rate ?? 200, durationMs: MAX_RUN_MS, paths });
  const direct = directTo?.ip
    ? startOpenLoop({ origin: `http://${directTo.ip}:${BACKEND_PORT_IN_NETWORK}`, ratePerSecond: DIRECT_RATE, durationMs: MAX_RUN_MS, paths })
    : undefined;
  let actionMs: number;
  try {
    await sleep(settings.warmupMs ?? 3_000);
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
    window: summarize(webRun.records, eventAt, endAt),
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

/** Waits until both balancers answer again and route to the same `replicas` backends. */
const balancersBack = (cluster: ChaosCluster, replicas: number): Promise<ContainerInfo[]> => cluster.waitForBackends(replicas, 120_000);

/** `docker compose restart balancer` (the active one) under load. */
export async function restartBalancerEvent(cluster: ChaosCluster, replicas: number, settings: LoadSettings = {}): Promise<EventOutcome> {
  const before = await cluster.waitForBackends(replicas, 120_000);
  return underLoad(cluster, 'restart balancer', settings, before[0], async () => {
    await cluster.compose.compose(['restart', 'balancer'], 120_000);
    await balancersBack(cluster, replicas);
  });
}

/**
 * `docker compose up -d --build --no-deps --force-recreate balancer` under load: a new container
 * (and usually a new address) from a freshly built image, as an upgrade does.
 */
export async function upgradeBalancerEvent(cluster: ChaosCluster, replicas: number, settings: LoadSettings = {}): Promise<EventOutcome> {
  const before = await cluster.waitForBackends(replicas, 120_000);
  return underLoad(cluster, 'upgrade balancer', settings, before[0], async () => {
    await cluster.compose.compose(['up', '-d', '--build', '--no-deps', '--force-recreate', 'balancer'], 600_000);
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

/** Worst per-second p99 of the window through nginx, and of the direct stream in the same seconds. */
export function worstSecond(outcome: EventOutcome): { web: number; direct: number | undefined } {
  const web = Math.max(0, ...outcome.seconds.map((s) => s.web.p99));
  const direct = outcome.direct ? Math.max(0, ...outcome.seconds.map((s) => s.direct?.p99 ?? 0)) : undefined;
  return { web, direct };
}

/** The events as a table for a person: one row per event, what users saw from its start on. */
export function eventTable(outcomes: readonly EventOutcome[]): string {
  const rows = [
    '| event | requests | failed | over 0.5 s | resent | p50 | p99 | max | worst second p99 (direct to a replica) | client late ≤ | note |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const o of outcomes) {
    const w = o.window;
    const worst = worstSecond(o);
    const note = o.stalledShare === undefined ? `command ${ms(o.actionMs)}` : `stalled replica's share ${(o.stalledShare * 100).toFixed(1)} %`;
    rows.push(
      `| ${o.name} | ${w.requests} | ${describeFailures(w)} | ${w.slow} | ${w.resent} | ${ms(w.p50)} | ${ms(w.p99)} | ${ms(w.max)} | ${ms(worst.web)}${worst.direct === undefined ? '' : ` (${ms(worst.direct)})`} | ${ms(w.late)} | ${note} |`,
    );
  }
  return rows.join('\n');
}
