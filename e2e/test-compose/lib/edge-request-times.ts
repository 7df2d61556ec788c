import { run } from '../../lib/exec.js';
import { waitFor } from '../../lib/wait.js';
import type { Compose } from './compose.js';

/**
 * How long nginx itself took for each image request that ended within a window: its
 * `$request_time` (`rt=` in nginx/nginx.conf's log format), from the request's first byte at
 * nginx to the answer's last, so the balancer, the backends and the network between them, and
 * nothing before nginx. On this machine a client of 127.0.0.1:8080 reaches nginx through
 * Docker's userland proxy (docker-proxy), a child of dockerd in dockerd's CPU cgroup: while
 * Docker tears containers down, that hop alone has held requests for most of a second that
 * nginx then answered in under 0.45 s.
 */
export interface EdgeRequestTimes {
  /** Request times in ms, one per logged image request in the window. */
  readonly ms: readonly number[];
}

const LINE = /\[(\d{2})\/(\w{3})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})\] "GET \/images\/\S+ HTTP\/[\d.]+" \d{3} \d+ rt=([\d.]+)/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The epoch ms of an nginx `$time_local` (second resolution) and its request time in ms, or undefined. */
export function parseEdgeLine(line: string): { endedAt: number; ms: number } | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  const [, day, mon, year, hh, mm, ss, zone, rt] = m;
  const month = MONTHS.indexOf(mon ?? '');
  if (month < 0) return undefined;
  const iso = `${year}-${String(month + 1).padStart(2, '0')}-${day}T${hh}:${mm}:${ss}${(zone ?? '+0000').slice(0, 3)}:${(zone ?? '+0000').slice(3)}`;
  return { endedAt: Date.parse(iso), ms: Number(rt) * 1000 };
}

/**
 * Reads the frontend container's log for image requests that ended in [fromEpochMs, toEpochMs]
 * (whole seconds, as nginx logs them). nginx flushes its buffered log once a second, so this
 * polls until `expected` lines are in (or 10 s have passed: then it returns what it found, and
 * the caller's count check says how many were missing).
 */
export async function edgeRequestTimes(compose: Compose, fromEpochMs: number, toEpochMs: number, expected: number): Promise<EdgeRequestTimes> {
  const [frontend] = (await compose.containers('frontend')).filter((c) => c.status === 'running');
  if (!frontend) throw new Error('no running frontend container');
  const from = Math.floor(fromEpochMs / 1000) * 1000;
  const inWindow = async (): Promise<number[]> => {
    // --since is when Docker received the (buffered) lines: two seconds of slack.
    const logs = await run('docker', ['logs', '--since', String((fromEpochMs - 2_000) / 1000), frontend.id], { timeoutMs: 30_000 });
    return `${logs.stdout}\n${logs.stderr}`
      .split('\n')
      .flatMap((l) => parseEdgeLine(l) ?? [])
      .filter((l) => l.endedAt >= from && l.endedAt <= toEpochMs)
      .map((l) => l.ms);
  };
  let ms: number[] = [];
  await waitFor(
    async () => {
      ms = await inWindow();
      return ms.length >= expected ? true : undefined;
    },
    { what: `nginx to log ${expected} image requests`, timeoutMs: 10_000, intervalMs: 500 },
  ).catch(() => undefined);
  return { ms };
}
