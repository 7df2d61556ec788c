/**
 * Open-loop load through nginx or a balancer: a constant arrival rate whatever the server does,
 * each request's latency counted from the moment it was *due* (coordinated omission avoided; see
 * the engine, services/balancer/src/lab/open-loop.ts, which this file drives). What is this tool's
 * own: the paths in turn, the timeouts, the one resend, and the names of failures.
 *
 * Used by the Compose and Swarm end-to-end suites (which assert on the result) and by
 * `make chaos` (which prints it for a person). Only for 127.0.0.0/8 or the project's own
 * containers; every run is bounded by its duration plus the client timeout.
 */
import { Agent, request } from 'undici';
import { OverCap, errorCode, evenly, startOpenLoopRun } from '../../services/balancer/src/lab/open-loop.js';
import type { OpenLoopRecord } from '../../services/balancer/src/lab/open-loop.js';

/** What went wrong with a request that did not end in a 2xx. */
export type FailureKind = 'status' | 'timeout' | 'connect-timeout' | 'refused' | 'reset' | 'truncated' | 'other';

/**
 * One request of a run: the engine's times (ms since the run started; latency counts from dueAt,
 * sentAt is later only if this process was late) and what this tool notes of it.
 */
export interface RequestRecord extends OpenLoopRecord {
  readonly path: string;
  ok: boolean;
  failure?: FailureKind;
  /** The client's error code (ECONNRESET, ...), or the status and the answer's own code (`504 LB_UPSTREAM_TIMEOUT`), for the report. */
  detail?: string;
  /** How long the server is meant to take for this path (its own delay), when known: slow means slower than this. */
  expectedMs?: number;
  /** X-Backend-Id of the replica that answered. */
  replica?: string;
  /**
   * Sent a second time after the server closed a kept-alive connection before answering (as
   * browsers and curl do; see `send`). Counted apart so that it never hides in the totals.
   */
  resent?: boolean;
}

export interface OpenLoopOptions {
  /** `http://127.0.0.1:PORT` (loopback or a project container only). */
  readonly origin: string;
  readonly ratePerSecond: number;
  readonly durationMs: number;
  /** Cycled in order. */
  readonly paths: readonly string[];
  /**
   * Path -> how long the server is meant to take for it (an image's delay), kept on each request:
   * a request is slow when it exceeds this by more than SLOW_MS, and its timeout runs beyond it.
   */
  readonly expectedMs?: Readonly<Record<string, number>>;
  /** Client timeout per request, from its due time, plus twice its expected time (default 10 s). */
  readonly timeoutMs?: number;
  /** Safety cap on requests outstanding at once; beyond it a request fails as `other` (default 4096). */
  readonly maxOutstanding?: number;
}

/** A run in progress. */
export interface OpenLoop {
  /** ms since the run started (same clock as the records). */
  now(): number;
  /** Notes a moment (an event started, ended) on the run's clock, for the report. */
  mark(label: string): void;
  /** The requests sent so far, in the order they were sent; finished ones have `endAt` > 0. */
  readonly records: readonly RequestRecord[];
  /** Stops scheduling (if not done yet) and resolves once every outstanding request ended. Idempotent. */
  stop(): Promise<LoadRun>;
  /** Resolves when the scheduled duration is over and every request ended. */
  readonly done: Promise<LoadRun>;
}

/** A finished run. */
export interface LoadRun {
  readonly options: OpenLoopOptions;
  /** Wall-clock time (ms since epoch) of the run's t = 0. */
  readonly startedAtEpoch: number;
  readonly records: readonly RequestRecord[];
  readonly marks: readonly { label: string; at: number }[];
}

/** Over this beyond its expected time a request is "slow" (what a person notices on a page). */
export const SLOW_MS = 500;

/** Most of an error answer read for its code: the cluster's are JSON of a few dozen bytes. */
const ERROR_BODY_BYTES = 4096;

/** The `error` code of a JSON error answer (`{"error":"LB_UPSTREAM_TIMEOUT","message":...}`), if it is one. */
export function errorCodeOf(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    const code = typeof parsed === 'object' && parsed !== null ? (parsed as { error?: unknown }).error : undefined;
    return typeof code === 'string' && code !== '' ? code : undefined;
  } catch {
    return undefined;
  }
}

const kindOf = (err: unknown): { failure: FailureKind; detail: string } => {
  // Node's own errors carry a string code; DOMException's is a legacy number (23 for a timeout).
  const raw = (err as { code?: unknown }).code;
  const code = typeof raw === 'string' ? raw : '';
  const name = err instanceof Error ? err.name : '';
  const detail = errorCode(err);
  if (err instanceof OverCap) return { failure: 'other', detail: 'client cap on outstanding requests' };
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return { failure: 'connect-timeout', detail };
  if (code === 'ECONNREFUSED') return { failure: 'refused', detail };
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || name === 'TimeoutError' || code === 'ETIMEDOUT') return { failure: 'timeout', detail };
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return { failure: 'reset', detail };
  if (code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') return { failure: 'truncated', detail };
  return { failure: 'other', detail };
};

/** The first `limit` bytes of a body as text, read to its end (so that a cut shows as an error). */
async function readHead(body: AsyncIterable<Buffer>, limit: number): Promise<string> {
  const kept: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size < limit) kept.push(chunk.subarray(0, limit - size));
    size += chunk.length;
  }
  return Buffer.concat(kept).toString('utf8');
}

/**
 * Sends one GET of a run on `agent` and notes how it went: each on any free keep-alive connection
 * or a new one (no client-side queue: connections are not capped).
 */
const sendWith = (agent: Agent, origin: string, timeoutMs: number) => async (record: RequestRecord): Promise<void> => {
  // The timeout runs from the due time: a request the client sent late has less time left. A
  // 10 s image gets twice its 10 s on top: when its replica is killed, the balancer redoes it
  // from the start elsewhere (one killed at 9.9 s answers at about 20 s: nginx logged 499 at
  // rt=20.002 while the balancer still served it), and that is slow, not lost.
  const budget = Math.max(1, Math.ceil(timeoutMs + 2 * (record.expectedMs ?? 0) - (record.sentAt - record.dueAt)));
  const signal = AbortSignal.timeout(budget);
  const get = () =>
    request(new URL(record.path, origin), { method: 'GET', dispatcher: agent, headersTimeout: budget, bodyTimeout: budget, signal });
  let res;
  try {
    res = await get();
  } catch (err) {
    // A server may close an idle keep-alive connection just as the next request goes out on
    // it (nginx does for every idle connection when it reloads). Nothing of the request was
    // processed, so browsers and curl send a GET again, once, on a new connection; so does
    // this client. Only a reset before any byte of the answer qualifies.
    if (kindOf(err).failure !== 'reset' || signal.aborted) throw err;
    record.resent = true;
    res = await get();
  }
  const ok = res.statusCode >= 200 && res.statusCode < 300;
  // Read to the end: a body cut short is a failure, not a success. An error answer's own
  // code (`LB_UPSTREAM_TIMEOUT`) says more than its status.
  let errorBody = '';
  if (ok) await res.body.dump({ limit: Number.MAX_SAFE_INTEGER });
  else errorBody = await readHead(res.body, ERROR_BODY_BYTES);
  record.status = res.statusCode;
  const replica = res.headers['x-backend-id'];
  if (typeof replica === 'string') record.replica = replica;
  record.ok = ok;
  if (!ok) {
    record.failure = 'status';
    const code = errorCodeOf(errorBody);
    record.detail = code === undefined ? String(res.statusCode) : `${res.statusCode} ${code}`;
  }
};

/** Starts a run at once: `ratePerSecond` GETs of `paths` in turn for `durationMs`, on the open-loop engine. */
export function startOpenLoop(options: OpenLoopOptions): OpenLoop {
  const timeoutMs = options.timeoutMs ?? 10_000;
  // Keep-alive shorter than the servers' (nginx 75 s, the balancer 5 s), so the client never
  // reuses a connection that the server is closing at that moment.
  const agent = new Agent({ connections: null, keepAliveTimeout: 2_000, keepAliveMaxTimeout: 2_000, connectTimeout: timeoutMs });
  const marks: { label: string; at: number }[] = [];
  const run = startOpenLoopRun<RequestRecord>({
    schedule: evenly(options.ratePerSecond, options.durationMs),
    durationMs: options.durationMs,
    maxOutstanding: options.maxOutstanding ?? 4096,
    record: (times) => {
      const path = options.paths[times.seq % options.paths.length] ?? '/';
      const expectedMs = options.expectedMs?.[path];
      return { ...times, path, ok: false, ...(expectedMs === undefined ? {} : { expectedMs }) };
    },
    send: sendWith(agent, options.origin, timeoutMs),
    failed: (record, err) => Object.assign(record, kindOf(err)),
  });
  const startedAtEpoch = Date.now() - run.now();
  const finishRun = async (): Promise<LoadRun> => {
    const records = await run.done;
    await agent.close();
    return { options, startedAtEpoch, records: records.slice(), marks };
  };
  const done = finishRun();

  return {
    now: run.now,
    records: run.records,
    mark(label) {
      marks.push({ label, at: run.now() });
    },
    stop() {
      void run.stop();
      return done;
    },
    done,
  };
}
