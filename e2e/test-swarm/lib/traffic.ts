import { setTimeout as sleep } from 'node:timers/promises';
import type { HttpClient } from '../../test-compose/lib/http.js';
import { startStream, type Stream, type StreamResult } from '../../test-compose/lib/stream.js';

/** Image paths of the steady stream: 50, 150 and 250 ms with the e2e delays. */
export const STREAM_PATHS = ['/images/1', '/images/2', '/images/3'] as const;

/** A steady stream of GETs that also records when each backend (X-Backend-Id) served its first response. */
export interface TrackedStream extends Stream {
  /** `<hostname>:8002` -> time (ms since epoch) of its first response in this stream. */
  readonly firstServed: ReadonlyMap<string, number>;
  /** Resolves once the stream has finished `requests` requests and seen `backends` backends; bounded. */
  flowing(requests: number, backends: number, timeoutMs?: number): Promise<void>;
  /** Resolves once every id in `ids` has served a response; bounded. */
  served(ids: readonly string[], timeoutMs?: number): Promise<void>;
}

/** 4 sequential workers through `client`, at most 3 minutes and 30 000 requests. */
export function startTrackedStream(client: HttpClient): TrackedStream {
  const firstServed = new Map<string, number>();
  const tracking: HttpClient = {
    origin: client.origin,
    async get(path, timeoutMs) {
      const res = await client.get(path, timeoutMs);
      const id = res.headers['x-backend-id'];
      if (res.status === 200 && id !== undefined && !firstServed.has(id)) firstServed.set(id, Date.now());
      return res;
    },
    json: (path, timeoutMs) => client.json(path, timeoutMs),
    close: () => client.close(),
  };
  const stream = startStream(tracking, { workers: 4, paths: STREAM_PATHS, maxMs: 180_000, maxRequests: 30_000 });

  const until = async (done: () => boolean, what: string, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(50);
    }
  };

  return {
    get finished() {
      return stream.finished;
    },
    get backendsSeen() {
      return stream.backendsSeen;
    },
    firstServed,
    stop: (): Promise<StreamResult> => stream.stop(),
    flowing: (requests, backends, timeoutMs = 30_000) =>
      until(() => stream.finished >= requests && stream.backendsSeen >= backends, `${requests} requests over ${backends} backends`, timeoutMs),
    served: (ids, timeoutMs = 30_000) => until(() => ids.every((id) => firstServed.has(id)), `responses from ${ids.join(', ')}`, timeoutMs),
  };
}

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

export const failureText = (result: StreamResult): string => JSON.stringify(result.failures.slice(0, 10), null, 1);
