/**
 * The `/api/events` subscription and its visible state.
 *
 * EventSource reconnects by itself after a network error (the balancer sends `retry: 1000`), but it
 * gives up for good when the answer is not a 200 `text/event-stream`, which is exactly what the
 * proxy in front (nginx or the launcher) sends while the balancer restarts: a 502. So this wrapper
 * re-creates the EventSource itself with a backoff once the browser has given up, and a watchdog
 * marks a silent stream as stale and later replaces it (a half-open connection never errors).
 */
import { parseSnapshotText, type Snapshot } from './snapshot.js';

/** What the page shows about the stream. */
export type ConnectionState = 'connecting' | 'live' | 'stale' | 'reconnecting' | 'disconnected';

/** Details that come with a state change. */
export interface ConnectionInfo {
  /** Milliseconds (per `now()`) when the next own retry starts; only while `disconnected`. */
  readonly retryAt?: number;
  /** Time of the last Snapshot received, per `now()`. */
  readonly lastMessageAt?: number;
}

/** The subset of EventSource this module uses, so tests can pass a fake. */
export interface SourceLike {
  readonly readyState: number;
  onopen: ((ev: Event) => unknown) | null;
  onerror: ((ev: Event) => unknown) | null;
  addEventListener(type: string, listener: (ev: MessageEvent<string>) => void): void;
  close(): void;
}

/** Environment of the stream; the defaults are the browser's. */
export interface StreamDeps {
  createSource(url: string): SourceLike;
  setTimer(fn: () => void, ms: number): number;
  clearTimer(id: number): void;
  now(): number;
}

/** Options of {@link createSnapshotStream}. */
export interface StreamOptions {
  readonly url: string;
  readonly onSnapshot: (s: Snapshot) => void;
  readonly onState: (state: ConnectionState, info: ConnectionInfo) => void;
  /** No Snapshot for this long while live: show `stale`. The balancer sends every 100 ms. */
  readonly staleAfterMs?: number;
  /** Stale for this long: drop the connection and open a new one. */
  readonly replaceAfterMs?: number;
  /** Delays before the own retries after the browser gave up; the last one repeats. */
  readonly retryDelaysMs?: readonly number[];
  readonly deps?: Partial<StreamDeps>;
}

/** What {@link createSnapshotStream} returns. */
export interface SnapshotStream {
  /** Opens the stream (idempotent). */
  start(): void;
  /** Closes the stream and every timer (idempotent). */
  stop(): void;
  /** Skips the wait of a pending retry. */
  retryNow(): void;
  readonly state: ConnectionState;
}

const CONNECTING = 0;
const CLOSED = 2;

const browserDeps = (): StreamDeps => ({
  createSource: (url) => new EventSource(url),
  setTimer: (fn, ms) => window.setTimeout(fn, ms),
  clearTimer: (id) => {
    window.clearTimeout(id);
  },
  now: () => Date.now(),
});

/** Creates the stream; nothing happens until `start()`. */
export function createSnapshotStream(opts: StreamOptions): SnapshotStream {
  const deps: StreamDeps = { ...browserDeps(), ...opts.deps };
  const staleAfterMs = opts.staleAfterMs ?? 2000;
  const replaceAfterMs = opts.replaceAfterMs ?? 10_000;
  const retryDelays = opts.retryDelaysMs?.length ? opts.retryDelaysMs : [500, 1000, 2000, 5000];

  let source: SourceLike | undefined;
  let state: ConnectionState = 'connecting';
  let running = false;
  let everLive = false;
  let failures = 0;
  let lastMessageAt: number | undefined;
  let retryTimer: number | undefined;
  let retryAt: number | undefined;
  let watchdog: number | undefined;
  let openedAt = 0;

  function setState(next: ConnectionState): void {
    if (next === state && next !== 'disconnected') return;
    state = next;
    opts.onState(state, { retryAt: state === 'disconnected' ? retryAt : undefined, lastMessageAt });
  }

  function onMessage(ev: MessageEvent<string>): void {
    const snap = parseSnapshotText(ev.data);
    if (!snap) return;
    lastMessageAt = deps.now();
    failures = 0;
    everLive = true;
    setState('live');
    opts.onSnapshot(snap);
  }

  function closeSource(): void {
    if (!source) return;
    source.onopen = null;
    source.onerror = null;
    source.close();
    source = undefined;
  }

  function open(): void {
    closeSource();
    const s = deps.createSource(opts.url);
    openedAt = deps.now();
    source = s;
    // The balancer names its events `snapshot`; plain `message` events are accepted too.
    s.addEventListener('snapshot', onMessage);
    s.addEventListener('message', onMessage);
    s.onerror = () => {
      if (s !== source) return;
      if (s.readyState === CLOSED) {
        scheduleRetry();
      } else if (s.readyState === CONNECTING) {
        setState(everLive ? 'reconnecting' : 'connecting');
      }
    };
  }

  function scheduleRetry(): void {
    closeSource();
    const delay = retryDelays[Math.min(failures, retryDelays.length - 1)] ?? 1000;
    failures++;
    retryAt = deps.now() + delay;
    if (retryTimer !== undefined) deps.clearTimer(retryTimer);
    retryTimer = deps.setTimer(() => {
      retryTimer = undefined;
      retryAt = undefined;
      if (!running) return;
      setState(everLive ? 'reconnecting' : 'connecting');
      open();
    }, delay);
    setState('disconnected');
  }

  function checkSilence(): void {
    watchdog = deps.setTimer(checkSilence, 500);
    if (state === 'disconnected') return;
    const silent = deps.now() - Math.max(lastMessageAt ?? 0, openedAt);
    if (silent >= replaceAfterMs) {
      // Open a fresh connection; the old one may be half-open and would never report an error.
      setState(everLive ? 'reconnecting' : 'connecting');
      open();
    } else if (silent >= staleAfterMs && state === 'live') {
      setState('stale');
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      opts.onState(state, {});
      open();
      watchdog = deps.setTimer(checkSilence, 500);
    },
    stop() {
      if (!running) return;
      running = false;
      closeSource();
      if (retryTimer !== undefined) deps.clearTimer(retryTimer);
      if (watchdog !== undefined) deps.clearTimer(watchdog);
      retryTimer = undefined;
      watchdog = undefined;
    },
    retryNow() {
      if (!running || retryTimer === undefined) return;
      deps.clearTimer(retryTimer);
      retryTimer = undefined;
      retryAt = undefined;
      setState(everLive ? 'reconnecting' : 'connecting');
      open();
    },
    get state() {
      return state;
    },
  };
}
