import { SLOW_MS, startOpenLoop, type LoadRun } from '../../load/open-loop.js';
import { describeSummary, perSecondTable, summarize, type Summary } from '../../load/report.js';
import { saveArtifact } from '../../lib/artifacts.js';
import type { HttpClient } from '../../lib/http.js';
import { waitFor } from '../../lib/wait.js';

/** The stream's image, as in the Compose suite: 1 ms, so latency under change is the cluster's own. */
export const STREAM_PATHS = ['/images/1'] as const;

/** Open-loop rate of the stream through nginx (GET/s), as in the Compose suite. */
export const STREAM_RATE = 200;

/** What the stream saw from the moment it started until it was stopped. */
export interface TrackedResult {
  readonly run: LoadRun;
  /** From the first mark (the event) on, as the Compose suite counts; the whole run without a mark. */
  readonly summary: Summary;
  /** Distinct X-Backend-Id values that answered. */
  readonly backends: ReadonlySet<string>;
}

/**
 * Open-loop GETs through nginx (a constant arrival rate, latency from each request's due time) that
 * also record when each backend (X-Backend-Id) served its first response.
 */
export interface TrackedStream {
  /** `<hostname>:8002` -> time (ms since epoch) of its first response in this stream. */
  readonly firstServed: ReadonlyMap<string, number>;
  /** Resolves once the stream has finished `requests` requests and seen `backends` backends; bounded. */
  flowing(requests: number, backends: number, timeoutMs?: number): Promise<void>;
  /** Notes a moment (the event's command, its end) for the per-second table. */
  mark(label: string): void;
  /** Resolves once every id in `ids` has served a response; bounded. */
  served(ids: readonly string[], timeoutMs?: number): Promise<void>;
  /** Stops sending, waits for the requests in flight, returns what users saw. Idempotent. */
  stop(): Promise<TrackedResult>;
}

/** 200 GET/s through `client`'s origin, for at most 4 minutes. */
export function startTrackedStream(client: HttpClient): TrackedStream {
  const loop = startOpenLoop({ origin: client.origin, ratePerSecond: STREAM_RATE, durationMs: 240_000, paths: STREAM_PATHS });
  const startedAt = Date.now() - loop.now();
  const firstServed = new Map<string, number>();
  /** Counts finished requests and notes first responses (records only ever grow). */
  const finished = (): number => {
    let n = 0;
    for (const r of loop.records) {
      if (r.endAt === 0) continue;
      n++;
      if (r.ok && r.replica !== undefined && !firstServed.has(r.replica)) firstServed.set(r.replica, startedAt + r.endAt);
    }
    return n;
  };
  const until = async (done: () => boolean, what: string, timeoutMs: number): Promise<void> => {
    await waitFor(() => Promise.resolve(done() || undefined), { what, timeoutMs, intervalMs: 50 });
  };
  let stopped: Promise<TrackedResult> | undefined;
  return {
    firstServed,
    flowing: (requests, backends, timeoutMs = 30_000) =>
      until(() => finished() >= requests && firstServed.size >= backends, `${requests} requests over ${backends} backends`, timeoutMs),
    mark: (label) => {
      loop.mark(label);
    },
    served: (ids, timeoutMs = 30_000) => until(() => (finished(), ids.every((id) => firstServed.has(id))), `responses from ${ids.join(', ')}`, timeoutMs),
    stop() {
      stopped ??= loop.stop().then((run) => {
        finished();
        // The warm-up before the event (new connections through docker-proxy and nginx) is not the
        // event's cost: the Compose suite also counts from its event mark.
        const summary = summarize(run.records, run.marks[0]?.at ?? 0);
        return { run, summary, backends: new Set(run.records.flatMap((r) => (r.replica === undefined ? [] : [r.replica]))) };
      });
      return stopped;
    },
  };
}

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** The first failures, for an assertion message. */
export const failureText = (result: TrackedResult): string =>
  JSON.stringify(result.run.records.filter((r) => !r.ok).slice(0, 10).map((r) => ({ at: Math.round(r.dueAt), path: r.path, failure: r.failure, detail: r.detail })), null, 1);

/** One line for the log: requests, failures, slow, percentiles. */
export const streamText = (result: TrackedResult): string => describeSummary(result.summary);

/** How long the stream flows before the event, as in the Compose suite (e2e/load/events.ts). */
export const WARMUP_MS = 3_000;

/** Most requests over SLOW_MS that an event may cost (the goal, as in the Compose suite). */
export const MAX_SLOW = 5;

export { SLOW_MS };

/** Keeps the stream's per-second table (perSecondTable: outcomes, percentiles, the client's lateness) in e2e/artifacts/<name>.txt. */
export async function savePerSecond(name: string, result: TrackedResult): Promise<void> {
  await saveArtifact(`${name}.txt`, `${name}\n${streamText(result)}\n\n${perSecondTable(result.run)}\n`);
}
