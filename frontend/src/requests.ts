/**
 * The page's own traffic: one image request (what the original page's button did) and bursts of
 * concurrent ones. Pure of DOM so the outcome logic can be tested; the UI lives in image-demo.ts.
 */
import { parseDecisionHeader, type Decision } from './decision.js';

/** The images the backends serve. */
export const IMAGE_IDS = [1, 2, 3, 4] as const;

/** The largest burst the page sends. */
export const MAX_BURST = 200;

/** Outcome of one request through the balancer. */
export type ImageOutcome =
  | {
      readonly ok: true;
      readonly imageId: number;
      readonly status: number;
      readonly upstream: string | undefined;
      readonly backend: string | undefined;
      readonly decision: Decision | undefined;
      readonly ms: number;
      readonly blob: Blob;
    }
  | {
      readonly ok: false;
      readonly imageId: number;
      /** 0 when no HTTP answer arrived. */
      readonly status: number;
      /** `error` of the JSON body (e.g. LB_NO_UPSTREAM), else HTTP_<status>, NETWORK_ERROR or TIMEOUT. */
      readonly code: string;
      readonly message: string;
      readonly upstream: string | undefined;
      readonly decision: Decision | undefined;
      readonly ms: number;
      /** The caller aborted: not an error to show. */
      readonly aborted: boolean;
    };

/** A random image id, 1–4 like the original page. */
export function randomImageId(random: () => number = Math.random): number {
  return IMAGE_IDS[Math.min(IMAGE_IDS.length - 1, Math.floor(random() * IMAGE_IDS.length))] ?? 1;
}

/** `/images/{id}?nocache=…`: the query makes every request unique so no cache answers for the balancer. */
export function imageUrl(id: number, now: number, salt = ''): string {
  return `/images/${id}?nocache=${now}${salt ? `-${salt}` : ''}`;
}

/** Reads the balancer's (or backend's) error body: `{ "error": CODE, "message": … }`. */
export function parseErrorBody(status: number, text: string): { code: string; message: string } {
  try {
    const body = JSON.parse(text) as unknown;
    if (typeof body === 'object' && body !== null && 'error' in body && typeof body.error === 'string') {
      const message = 'message' in body && typeof body.message === 'string' ? body.message : '';
      return { code: body.error, message };
    }
  } catch {
    // Not JSON (a proxy's HTML error page): fall back to the status.
  }
  return { code: `HTTP_${status}`, message: text.trim().slice(0, 200) };
}

/** Clamps what the user typed to a burst size of 1–200. */
export function clampBurst(value: unknown): number {
  const n = typeof value === 'number' ? value : Number.parseInt(String(value), 10);
  if (!Number.isFinite(n)) return 1;
  return Math.max(1, Math.min(MAX_BURST, Math.trunc(n)));
}

/** Options of {@link fetchImage}. */
/**
 * Requests of a burst the page has in flight at once. A browser opens at most six HTTP/1.1
 * connections to one site; the live stream holds one and a lab run's progress stream another.
 * The page queues the rest itself, so each request's timeout starts when it really starts, not
 * while it waits in the browser's own queue.
 */
export const BURST_PARALLEL = 4;

/**
 * Runs `task(0)`..`task(count - 1)` with at most `limit` running at a time, in index order;
 * resolves with the results in index order.
 */
export async function runLimited<T>(count: number, limit: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, count)) }, lane));
  return results;
}

export interface FetchImageOptions {
  readonly imageId: number;
  readonly url: string;
  readonly signal?: AbortSignal;
  /** Give up after this long (the slowest default image takes 10 s). */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
}

/** Fetches one image and reads it to the end, so its time covers the whole transfer. Never throws. */
export async function fetchImage(opts: FetchImageOptions): Promise<ImageOutcome> {
  const doFetch = opts.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
  const now = opts.now ?? (() => performance.now());
  const started = now();
  const timeout = new AbortController();
  const timer = setTimeout(() => {
    timeout.abort();
  }, opts.timeoutMs ?? 30_000);
  // One signal for both the caller's abort and the timeout (AbortSignal.any is too new for Safari 16).
  const onAbort = (): void => {
    timeout.abort();
  };
  if (opts.signal?.aborted) timeout.abort();
  opts.signal?.addEventListener('abort', onAbort);
  const signal = timeout.signal;
  let status = 0;
  let upstream: string | undefined;
  let decision: Decision | undefined;
  try {
    const res = await doFetch(opts.url, { cache: 'no-store', signal });
    status = res.status;
    upstream = res.headers.get('x-upstream') ?? undefined;
    decision = parseDecisionHeader(res.headers.get('x-lb-decision'));
    if (!res.ok) {
      const { code, message } = parseErrorBody(res.status, await res.text());
      return { ok: false, imageId: opts.imageId, status, code, message, upstream, decision, ms: now() - started, aborted: false };
    }
    const blob = await res.blob();
    return {
      ok: true,
      imageId: opts.imageId,
      status,
      upstream,
      backend: res.headers.get('x-backend-id') ?? undefined,
      decision,
      ms: now() - started,
      blob,
    };
  } catch (err) {
    const aborted = opts.signal?.aborted === true;
    const timedOut = !aborted && timeout.signal.aborted;
    return {
      ok: false,
      imageId: opts.imageId,
      status,
      code: aborted ? 'ABORTED' : timedOut ? 'TIMEOUT' : 'NETWORK_ERROR',
      message: err instanceof Error ? err.message : String(err),
      upstream,
      decision,
      ms: now() - started,
      aborted,
    };
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** Per-upstream counts of a burst, for the tally table. */
export interface BurstTally {
  readonly sent: number;
  readonly done: number;
  readonly ok: number;
  readonly failed: number;
  readonly byUpstream: ReadonlyMap<string, number>;
  readonly byReason: ReadonlyMap<string, number>;
  readonly byError: ReadonlyMap<string, number>;
}

/** Folds one outcome into a tally (immutable, so the UI can keep the previous one). */
export function addToTally(t: BurstTally, o: ImageOutcome): BurstTally {
  const bump = (m: ReadonlyMap<string, number>, k: string | undefined): ReadonlyMap<string, number> => {
    if (k === undefined) return m;
    const next = new Map(m);
    next.set(k, (next.get(k) ?? 0) + 1);
    return next;
  };
  return {
    sent: t.sent,
    done: t.done + 1,
    ok: t.ok + (o.ok ? 1 : 0),
    failed: t.failed + (o.ok ? 0 : 1),
    byUpstream: bump(t.byUpstream, o.upstream),
    byReason: bump(t.byReason, o.decision?.reason),
    byError: o.ok ? t.byError : bump(t.byError, o.code),
  };
}

/** An empty tally for `sent` requests. */
export function emptyTally(sent: number): BurstTally {
  return { sent, done: 0, ok: 0, failed: 0, byUpstream: new Map(), byReason: new Map(), byError: new Map() };
}
