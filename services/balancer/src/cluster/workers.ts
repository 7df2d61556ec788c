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

/** How many data-path threads to run for `requested` (0 = one per CPU available). */
export function planWorkers(requested: number, nodeVersion: string, cpus: number = availableParallelism()): WorkerPlan {
  const wanted = requested === 0 ? cpus : requested;
  if (wanted <= 1) return { count: 1 };
  if (!supportsReusePort(nodeVersion)) {
    return {
      count: 1,
      note: `--workers ${requested === 0 ? `auto (${wanted})` : wanted} needs Node >= 22.12 for reusePort; Node ${nodeVersion} runs the data path on 1 thread`,
    };
  }
  return { count: wanted };
}
