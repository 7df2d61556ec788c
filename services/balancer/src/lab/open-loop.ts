/**
 * The project's one open-loop engine, under the lab (runner.ts), the end-to-end load tool
 * (e2e/load/open-loop.ts) and the fault-table soak: it decides when each request leaves and
 * records how it went; the user's `send` makes the request (any client, any path).
 *
 * Open loop: every request leaves at its due time, whether or not earlier ones have answered, and
 * its latency counts from that due time, not from when it left. A closed loop (N clients, each
 * waiting for its answer) sends less exactly when the server stalls and so never records the wait
 * it caused (coordinated omission); here a stall, or a late client, shows in every request that
 * was due during it.
 *
 * Bounded: nothing is due at or after `durationMs`, an optional cap on open requests ends the ones
 * beyond it at once (not sent), and stop()/abort() end a run early. Transport-free on purpose: the
 * lab lives inside the product, and e2e imports this file by relative path without the product
 * depending on e2e.
 */
import { setMaxListeners } from 'node:events';

/** When request `seq` (0, 1, ...) is due, in ms from the start, ascending; undefined once there are no more. */
export type Schedule = (seq: number) => number | undefined;

/** A constant rate: `ratePerSecond` for `durationMs`, that is ⌊durationMs × rate / 1000⌋ requests, evenly apart. */
export function evenly(ratePerSecond: number, durationMs: number): Schedule {
  const gapMs = 1000 / ratePerSecond;
  const total = Math.max(0, Math.floor((durationMs * ratePerSecond) / 1000));
  return (seq) => (seq < total ? seq * gapMs : undefined);
}

/** The engine's part of a request's record. Times are ms since the run started. */
export interface OpenLoopTimes {
  readonly seq: number;
  /** When the schedule said it should go: its latency counts from here. */
  readonly dueAt: number;
  /** When it was handed to `send` (after dueAt only if this process was late). */
  sentAt: number;
  /** 0 while it is open. */
  endAt: number;
  /** endAt - dueAt. */
  latencyMs: number;
}

/** One request of a run: the engine's times and how it ended (written by `send`, or by `failed`). */
export interface OpenLoopRecord extends OpenLoopTimes {
  status?: number;
  /** Why it failed (absent: it did not); the user's names for it. */
  failure?: string;
  /** The error's own code (ECONNRESET, TimeoutError, OPEN_LOOP_OVER_CAP, ...), or more, for a report. */
  detail?: string;
}

/** What a request due beyond `maxOutstanding` ends with: it is never sent. */
export class OverCap extends Error {
  readonly code = 'OPEN_LOOP_OVER_CAP';
  constructor(cap: number) {
    super(`more than ${cap} requests open: not sent`);
  }
}

/** A code for any thrown thing: Node's string code, else the error's name (a DOMException's code is a number), else its text. */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code !== '') return code;
  const name = err instanceof Error ? err.name : '';
  return name || String(err);
}

export interface OpenLoopRunOptions<R extends OpenLoopRecord> {
  readonly schedule: Schedule;
  /** Nothing due at or after this is sent: the run's bound, whatever the schedule says. */
  readonly durationMs: number;
  /** Most requests open at once; a request due beyond it ends at once through `failed` with OverCap (default: no cap). */
  readonly maxOutstanding?: number;
  /** A due request's record: the engine's times and the user's own fields (its path, ...). */
  readonly record: (times: OpenLoopTimes) => R;
  /** Makes the request and notes on `record` how it went (status, failure); `signal` fires on abort(). */
  readonly send: (record: R, signal: AbortSignal) => Promise<void>;
  /** Notes on `record` why it ended without `send` finishing: OverCap, or what `send` threw. */
  readonly failed: (record: R, error: unknown) => void;
  /** Hears each request as it ends (times and outcome filled in). */
  readonly onEnd?: (record: R) => void;
}

/** A run in progress. */
export interface OpenLoopRun<R extends OpenLoopRecord> {
  /** ms since the run started: the records' clock. */
  readonly now: () => number;
  /** Every request due so far, in order (they leave in order); open ones have endAt 0. */
  readonly records: readonly R[];
  /** Requests sent and not ended yet. */
  open(): number;
  /** Sends no more; resolves once every open request ended. Idempotent. */
  stop(): Promise<readonly R[]>;
  /** stop(), and fires the signal the open requests were sent with. Idempotent. */
  abort(): Promise<readonly R[]>;
  /** Resolves once the schedule is over (or stopped) and every request ended. */
  readonly done: Promise<readonly R[]>;
}

/** Starts a run at once: whatever is due at 0 leaves before this returns. */
export function startOpenLoopRun<R extends OpenLoopRecord>(options: OpenLoopRunOptions<R>): OpenLoopRun<R> {
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  const cap = options.maxOutstanding ?? Number.POSITIVE_INFINITY;
  const controller = new AbortController();
  // Every open request listens on this one signal: hundreds at once are expected, not a leak.
  setMaxListeners(0, controller.signal);
  const records: R[] = [];
  let open = 0;
  let scheduling = true;
  let timer: NodeJS.Timeout | undefined;
  let resolveDone: (records: readonly R[]) => void = () => undefined;
  const done = new Promise<readonly R[]>((resolve) => {
    resolveDone = resolve;
  });
  const settleIfDone = (): void => {
    if (!scheduling && open === 0) resolveDone(records);
  };

  const end = (record: R): void => {
    record.endAt = now();
    record.latencyMs = record.endAt - record.dueAt;
    options.onEnd?.(record);
  };
  const sendOne = async (record: R): Promise<void> => {
    open++;
    try {
      await options.send(record, controller.signal);
    } catch (err) {
      options.failed(record, err);
    } finally {
      open--;
      end(record);
      settleIfDone();
    }
  };
  const dispatch = (dueAt: number): void => {
    const record = options.record({ seq: records.length, dueAt, sentAt: now(), endAt: 0, latencyMs: 0 });
    records.push(record);
    if (open < cap) {
      void sendOne(record);
      return;
    }
    options.failed(record, new OverCap(cap));
    end(record);
  };

  const finishScheduling = (): void => {
    scheduling = false;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    settleIfDone();
  };
  // Sends everything due so far, then sleeps until the next due time: a request this process sends
  // late (GC, a busy core) still carries its own due time.
  const tick = (): void => {
    timer = undefined;
    const t = now();
    while (scheduling) {
      const due = options.schedule(records.length);
      if (due === undefined || due >= options.durationMs) {
        finishScheduling();
        return;
      }
      if (due > t) {
        timer = setTimeout(tick, Math.max(0, due - now()));
        return;
      }
      dispatch(due);
    }
  };
  tick();

  const stop = (): Promise<readonly R[]> => {
    if (scheduling) finishScheduling();
    return done;
  };
  return {
    now,
    records,
    open: () => open,
    stop,
    abort() {
      const stopped = stop();
      controller.abort();
      return stopped;
    },
    done,
  };
}
