import type { ServerResponse } from 'node:http';
import { errorBody, statusOf } from '../errors.js';

/**
 * Server-Sent Events fan-out: one snapshot is serialised per tick and written to every listener.
 * The timer runs only while someone listens.
 */
export interface EventHub {
  /** Starts streaming to `res` (headers included) until the client leaves or stop() is called. */
  attach(res: ServerResponse): void;
  readonly listeners: number;
  /** Ends every stream and the timer. Idempotent. */
  stop(): void;
}

/** Creates a hub that sends `event: snapshot` with `snapshot()` every `intervalMs`. */
export function createEventHub(snapshot: () => unknown, intervalMs: number): EventHub {
  const clients = new Set<ServerResponse>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const frame = (): string => `event: snapshot\ndata: ${JSON.stringify(snapshot())}\n\n`;

  const broadcast = (): void => {
    const text = frame();
    for (const res of clients) {
      // A client that cannot keep up skips ticks instead of growing our memory.
      if (res.writableNeedDrain) continue;
      res.write(text);
    }
  };

  const detach = (res: ServerResponse): void => {
    clients.delete(res);
    if (clients.size === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  };

  return {
    attach(res) {
      if (stopped) {
        res.writeHead(statusOf.LB_SHUTTING_DOWN, { 'content-type': 'application/json' }).end(errorBody('LB_SHUTTING_DOWN', 'shutting down'));
        return;
      }
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        // nginx: do not buffer this response.
        'x-accel-buffering': 'no',
      });
      // retry: how long a browser's EventSource waits before reconnecting by itself.
      res.write(`retry: 1000\n${frame()}`);
      clients.add(res);
      res.once('close', () => {
        detach(res);
      });
      timer ??= setInterval(broadcast, intervalMs);
    },
    get listeners() {
      return clients.size;
    },
    stop() {
      stopped = true;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      for (const res of clients) res.end();
      clients.clear();
    },
  };
}
