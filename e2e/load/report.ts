/**
 * What a load run looked like to its users: per-second and per-window latency percentiles, slow
 * and failed requests by kind, and which replica answered. Pure functions of the records.
 *
 * A request's expected time is what the server is meant to take for it (an image's delay at the
 * cluster's delay scale, 0 when not known): slow means more than SLOW_MS beyond it, so that a 10 s
 * image answered in 10.1 s is on time and a 1 ms one answered in 0.6 s is not.
 */
import { SLOW_MS, type FailureKind, type LoadRun, type RequestRecord } from './open-loop.js';

/** Latency and outcome figures of a set of requests. */
export interface Summary {
  requests: number;
  ok: number;
  failed: number;
  /** Requests (ok or not) whose latency from their due time exceeded their expected time by more than SLOW_MS. */
  slow: number;
  /** Requests sent twice after a keep-alive connection closed under them (see RequestRecord.resent). */
  resent: number;
  p50: number;
  p99: number;
  max: number;
  /** The same percentiles of each request's latency beyond its expected time. */
  beyond: { p50: number; p99: number; max: number };
  /** Requests whose expected time was known (the others count from 0). */
  withExpected: number;
  /**
   * The most this process sent a request after its due time (ms). Latency counts from the due time,
   * so when the load tool itself is starved of CPU (it shares the machine with the cluster), that
   * shows here: a slow second with a large `late` was slow in the client too, not only in the cluster.
   */
  late: number;
  failedByKind: Partial<Record<FailureKind, number>>;
  /** `504 LB_UPSTREAM_TIMEOUT`, `reset ECONNRESET`, ... -> failed requests (see failureLabel). */
  failedBy: Record<string, number>;
  /** X-Backend-Id -> requests it answered. */
  byReplica: Record<string, number>;
}

/** One second of a run, by due time. */
export interface SecondSummary extends Summary {
  /** Seconds since the run started. */
  second: number;
}

/** Nearest-rank percentile of an ascending array (0 when empty). */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? 0;
}

/** A request's latency beyond what it was expected to take (its whole latency when that is not known); 0 when within. */
export const beyondExpected = (r: RequestRecord): number => Math.max(0, r.latencyMs - (r.expectedMs ?? 0));

/**
 * What went wrong, for counting alike failures together: the status and the answer's own code
 * (`504 LB_UPSTREAM_TIMEOUT`, `502` without a JSON code), or the kind and the client's error code
 * (`reset ECONNRESET`, `timeout UND_ERR_HEADERS_TIMEOUT`).
 */
export function failureLabel(r: RequestRecord): string {
  if (r.failure === 'status') return r.detail ?? String(r.status ?? '?');
  const kind = r.failure ?? 'unknown';
  return r.detail === undefined || r.detail === kind ? kind : `${kind} ${r.detail}`;
}

/** Summarises the records whose due time is in [fromMs, toMs). */
export function summarize(records: readonly RequestRecord[], fromMs = 0, toMs = Infinity): Summary {
  const chosen = records.filter((r) => r.dueAt >= fromMs && r.dueAt < toMs);
  const latencies = chosen.map((r) => r.latencyMs).sort((a, b) => a - b);
  const beyond = chosen.map(beyondExpected).sort((a, b) => a - b);
  const failedByKind: Partial<Record<FailureKind, number>> = {};
  const failedBy: Record<string, number> = {};
  const byReplica: Record<string, number> = {};
  let ok = 0;
  for (const r of chosen) {
    if (r.ok) ok++;
    else {
      if (r.failure !== undefined) failedByKind[r.failure] = (failedByKind[r.failure] ?? 0) + 1;
      const label = failureLabel(r);
      failedBy[label] = (failedBy[label] ?? 0) + 1;
    }
    if (r.replica !== undefined) byReplica[r.replica] = (byReplica[r.replica] ?? 0) + 1;
  }
  return {
    requests: chosen.length,
    ok,
    failed: chosen.length - ok,
    slow: beyond.filter((l) => l > SLOW_MS).length,
    resent: chosen.filter((r) => r.resent === true).length,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? 0,
    beyond: { p50: percentile(beyond, 50), p99: percentile(beyond, 99), max: beyond.at(-1) ?? 0 },
    withExpected: chosen.filter((r) => r.expectedMs !== undefined).length,
    late: chosen.reduce((m, r) => Math.max(m, r.sentAt - r.dueAt), 0),
    failedByKind,
    failedBy,
    byReplica,
  };
}

/** One summary per second of due time, from the first to the last second that has requests. */
export function perSecond(records: readonly RequestRecord[]): SecondSummary[] {
  const last = records.reduce((m, r) => Math.max(m, r.dueAt), -1);
  const seconds: SecondSummary[] = [];
  for (let s = 0; s <= Math.floor(last / 1000); s++) seconds.push({ second: s, ...summarize(records, s * 1000, (s + 1) * 1000) });
  return seconds;
}

/** `12 ms` or `1.25 s`. */
export const ms = (n: number): string => (n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${Math.round(n)} ms`);

/** `7 failed: 504 LB_UPSTREAM_TIMEOUT ×5, reset ECONNRESET ×2` (most frequent first), or `0 failed`. */
export function describeFailures(s: Summary): string {
  const labels = Object.entries(s.failedBy)
    .sort(([a, m], [b, n]) => n - m || a.localeCompare(b))
    .map(([label, n]) => `${label} ×${n}`);
  return `${s.failed} failed${labels.length > 0 ? `: ${labels.join(', ')}` : ''}`;
}

/**
 * One line: requests, failed, slow, p50/p99/max, the part beyond the expected time (when the
 * requests had one), and how late the client itself sent.
 */
export function describeSummary(s: Summary): string {
  const beyond = s.withExpected > 0 ? `, beyond expected p50 ${ms(s.beyond.p50)}, p99 ${ms(s.beyond.p99)}, max ${ms(s.beyond.max)}` : '';
  return `${s.requests} requests, ${describeFailures(s)}; ${s.slow} over ${SLOW_MS} ms${s.withExpected > 0 ? ' beyond expected' : ''}, ${s.resent} resent, p50 ${ms(s.p50)}, p99 ${ms(s.p99)}, max ${ms(s.max)}${beyond}, client late ≤ ${ms(s.late)}`;
}

/** A per-second table for a person (and for the artifacts of a failed test). */
export function perSecondTable(run: LoadRun): string {
  const marksBySecond = new Map<number, string[]>();
  for (const m of run.marks) {
    const s = Math.floor(m.at / 1000);
    marksBySecond.set(s, [...(marksBySecond.get(s) ?? []), m.label]);
  }
  // The wall-clock start lines the table up with `docker events`, container logs and host samples.
  // slow and +p99 count beyond each request's expected time (its image's delay).
  const lines = [`second 0 = ${new Date(run.startedAtEpoch).toISOString()}`, '  s   req   ok fail slow    p50     p99     max    +p99    late  replicas  marks'];
  for (const s of perSecond(run.records)) {
    const replicas = Object.keys(s.byReplica).length;
    lines.push(
      `${String(s.second).padStart(3)} ${String(s.requests).padStart(5)} ${String(s.ok).padStart(4)} ${String(s.failed).padStart(4)} ${String(s.slow).padStart(4)} ${ms(s.p50).padStart(7)} ${ms(s.p99).padStart(7)} ${ms(s.max).padStart(7)} ${ms(s.beyond.p99).padStart(7)} ${ms(s.late).padStart(7)}  ${String(replicas).padStart(8)}  ${(marksBySecond.get(s.second) ?? []).join(', ')}`,
    );
  }
  return lines.join('\n');
}
