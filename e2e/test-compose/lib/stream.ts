import type { HttpClient } from './http.js';

/** A request of the stream that did not end in a 200. */
export interface StreamFailure {
  at: number;
  path: string;
  /** HTTP status, or the client error message. */
  outcome: string;
}

export interface StreamResult {
  ok: number;
  failed: number;
  failures: StreamFailure[];
  /** Distinct X-Backend-Id values seen. */
  backends: Set<string>;
}

export interface Stream {
  /** Requests finished so far (ok + failed). */
  readonly finished: number;
  /** Distinct X-Backend-Id values seen so far. */
  readonly backendsSeen: number;
  /** Stops issuing, waits for the requests in flight, returns the counts. Idempotent. */
  stop(): Promise<StreamResult>;
}

export interface StreamOptions {
  /** Concurrent sequential loops. */
  workers: number;
  /** Paths cycled through by each loop. */
  paths: readonly string[];
  /** Hard bounds: the stream stops by itself after this long or this many requests. */
  maxMs: number;
  maxRequests: number;
}

/**
 * A steady stream of GETs: `workers` loops, each sending its next request when the previous one
 * ends. Bounded in time and count, so it stops even if nobody calls `stop()`.
 */
export function startStream(client: HttpClient, options: StreamOptions): Stream {
  const result: StreamResult = { ok: 0, failed: 0, failures: [], backends: new Set() };
  const deadline = Date.now() + options.maxMs;
  let issued = 0;
  let stopped = false;

  const worker = async (w: number): Promise<void> => {
    for (let i = 0; !stopped && Date.now() < deadline && issued < options.maxRequests; i++) {
      issued++;
      const path = `${options.paths[(w + i) % options.paths.length] ?? '/'}?stream=${w}-${i}`;
      try {
        const res = await client.get(path, 20_000);
        const id = res.headers['x-backend-id'];
        if (id !== undefined) result.backends.add(id);
        if (res.status === 200) result.ok++;
        else {
          result.failed++;
          result.failures.push({ at: Date.now(), path, outcome: `${res.status} ${res.body.toString('utf8').slice(0, 160)}` });
        }
      } catch (err) {
        result.failed++;
        result.failures.push({ at: Date.now(), path, outcome: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
      }
    }
  };
  const done = Promise.all(Array.from({ length: options.workers }, (_, w) => worker(w)));

  return {
    get finished() {
      return result.ok + result.failed;
    },
    get backendsSeen() {
      return result.backends.size;
    },
    async stop() {
      stopped = true;
      await done;
      return result;
    },
  };
}
