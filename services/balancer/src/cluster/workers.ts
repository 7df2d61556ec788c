import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * Several threads can accept on one port only through SO_REUSEPORT, which Node exposes from
 * 22.12 (and 23.1). Node 20 silently ignores the option (a second bind fails with EADDRINUSE),
 * so there the data path stays on one thread. Handing accepted sockets to threads is not
 * possible in Node (only child processes can receive handles), and processes cannot share the
 * in-flight counts that least-connections needs exact.
 */
export function supportsReusePort(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

export interface WorkerPlan {
  /** Data-path threads; 1 = on the main thread, no workers. */
  readonly count: number;
  /** Why fewer threads than asked for run, for the log. */
  readonly note?: string;
}

/** Reads a file as text, or undefined when it cannot be read. */
export type ReadText = (path: string) => string | undefined;

const readText: ReadText = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** CPUs a cgroup quota allows, from cgroup v2 `cpu.max` ("max 100000", "150000 100000"); undefined = no limit. */
export function parseCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  return quotaToCpus(Number(quota), Number(period));
}

/** CPUs from cgroup v1 `cpu.cfs_quota_us` (-1 = no limit) and `cpu.cfs_period_us`. */
export function parseCfsQuota(quota: string, period: string): number | undefined {
  return quotaToCpus(Number(quota.trim()), Number(period.trim()));
}

function quotaToCpus(quota: number, period: number): number | undefined {
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined;
  return quota / period;
}

/**
 * The CPU limit of this process's cgroup (a container's `--cpus`, a Kubernetes CPU limit), if
 * any: cgroup v2 first, then v1, each at the process's own cgroup path and at the mount root
 * (where a container sees its own cgroup).
 */
export function cgroupCpuLimit(read: ReadText = readText): number | undefined {
  const own = read('/proc/self/cgroup') ?? '';
  const pathOf = (match: (controllers: string[]) => boolean): string | undefined => {
    for (const line of own.split('\n')) {
      const [, controllers = '', path] = line.split(':');
      if (path !== undefined && match(controllers.split(','))) return path === '/' ? '' : path;
    }
    return undefined;
  };
  const v2 = pathOf((c) => c.length === 1 && c[0] === '');
  for (const dir of [v2 === undefined ? undefined : `/sys/fs/cgroup${v2}`, '/sys/fs/cgroup']) {
    const text = dir === undefined ? undefined : read(`${dir}/cpu.max`);
    if (text !== undefined) return parseCpuMax(text);
  }
  const v1 = pathOf((c) => c.includes('cpu'));
  for (const dir of [v1 === undefined ? undefined : `/sys/fs/cgroup/cpu${v1}`, '/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpu,cpuacct']) {
    const quota = dir === undefined ? undefined : read(`${dir}/cpu.cfs_quota_us`);
    const period = dir === undefined ? undefined : read(`${dir}/cpu.cfs_period_us`);
    if (quota !== undefined && period !== undefined) return parseCfsQuota(quota, period);
  }
  return undefined;
}

/**
 * CPUs available to the process: its CPU affinity, capped by a cgroup CPU limit (rounded down,
 * at least 1). A container limited to 1 CPU on a 16-core node gets 1 thread, not 16 (each costs
 * memory: a pod's memory limit is sized for what its CPU limit can serve).
 */
export function cpusAvailable(read: ReadText = readText): number {
  const affinity = availableParallelism();
  const limit = cgroupCpuLimit(read);
  return limit === undefined ? affinity : Math.max(1, Math.min(affinity, Math.floor(limit)));
}

/**
 * Data-path threads for `--workers auto`: one per CPU available but one, and at least one. The CPU
 * left over is not idle on a proxy: the kernel's TCP work for every proxied request (both sockets'
 * system calls and the loopback or NIC processing behind them) is about a third of the request's
 * CPU (bench/PROFILE.md), and clients or backends on the same host need CPU too. On a 2-CPU
 * machine shared with its load and backends, a second thread cost more CPU per request than it
 * gave (bench/RESULTS.md: balancer-w1 against balancer-wN); with 4 or more CPUs, 3 or more
 * threads can each have a CPU of their own.
 */
export function autoWorkers(cpus: number): number {
  return Math.max(1, cpus - 1);
}

/** How many data-path threads to run for `requested` (0 = auto: see autoWorkers). */
export function planWorkers(requested: number, nodeVersion: string, cpus: number = cpusAvailable()): WorkerPlan {
  const wanted = requested === 0 ? autoWorkers(cpus) : requested;
  if (wanted <= 1) return { count: 1 };
  if (!supportsReusePort(nodeVersion)) {
    return {
      count: 1,
      note: `--workers ${requested === 0 ? `auto (${wanted})` : wanted} needs Node >= 22.12 for reusePort; Node ${nodeVersion} runs the data path on 1 thread`,
    };
  }
  return { count: wanted };
}
