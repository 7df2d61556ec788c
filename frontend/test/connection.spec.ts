import assert from 'node:assert/strict';
import {
  createSnapshotStream,
  type ConnectionState,
  type SnapshotStream,
  type SourceLike,
  type StreamOptions,
} from '../src/connection.js';
import type { Snapshot } from '../src/snapshot.js';

/** An EventSource stand-in the test drives by hand. */
class FakeSource implements SourceLike {
  readyState = 0;
  onopen: ((ev: Event) => unknown) | null = null;
  onerror: ((ev: Event) => unknown) | null = null;
  closed = false;
  readonly url: string;
  private readonly listeners = new Map<string, ((ev: MessageEvent<string>) => void)[]>();
  constructor(url: string) {
    this.url = url;
  }
  addEventListener(type: string, listener: (ev: MessageEvent<string>) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  close(): void {
    this.closed = true;
    this.readyState = 2;
  }
  emit(type: string, data: string): void {
    this.readyState = 1;
    for (const l of this.listeners.get(type) ?? []) l({ data } as MessageEvent<string>);
  }
  /** The browser lost the connection and retries by itself. */
  dropAndRetry(): void {
    this.readyState = 0;
    this.onerror?.(new Event('error'));
  }
  /** The browser gave up (e.g. a 502 from the proxy instead of text/event-stream). */
  fail(): void {
    this.readyState = 2;
    this.onerror?.(new Event('error'));
  }
}

/** A manual clock with timers. */
function fakeClock() {
  let now = 0;
  let nextId = 1;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimer(fn: () => void, ms: number) {
      const id = nextId++;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimer(id: number) {
      timers.delete(id);
    },
    advance(ms: number) {
      const end = now + ms;
      for (let guard = 0; guard < 100_000; guard++) {
        let first: [number, { at: number; fn: () => void }] | undefined;
        for (const entry of timers) if (entry[1].at <= end && (!first || entry[1].at < first[1].at)) first = entry;
        if (!first) break;
        timers.delete(first[0]);
        now = first[1].at;
        first[1].fn();
      }
      now = end;
    },
    get pending() {
      return timers.size;
    },
  };
}

const snapshotText = (time: number): string => JSON.stringify({ time, upstreams: [{ id: 'a:1', inFlight: 0, requests: 0 }] });

function setup(extra: Partial<StreamOptions> = {}) {
  const clock = fakeClock();
  const sources: FakeSource[] = [];
  const states: ConnectionState[] = [];
  const infos: { retryAt?: number }[] = [];
  const snaps: Snapshot[] = [];
  const stream: SnapshotStream = createSnapshotStream({
    url: '/api/events',
    onSnapshot: (s) => snaps.push(s),
    onState: (s, info) => {
      states.push(s);
      infos.push(info);
    },
    retryDelaysMs: [500, 1000, 2000],
    ...extra,
    deps: {
      createSource: (url) => {
        const s = new FakeSource(url);
        sources.push(s);
        return s;
      },
      setTimer: (fn, ms) => clock.setTimer(fn, ms),
      clearTimer: (id) => {
        clock.clearTimer(id);
      },
      now: () => clock.now(),
    },
  });
  const current = (): FakeSource => {
    const s = sources.at(-1);
    assert.ok(s);
    return s;
  };
  return { clock, sources, states, infos, snaps, stream, current };
}

describe('createSnapshotStream', () => {
  it('is live once the first snapshot arrives, on the named `snapshot` event', () => {
    const t = setup();
    t.stream.start();
    assert.equal(t.current().url, '/api/events');
    assert.deepEqual(t.states, ['connecting']);
    t.current().emit('snapshot', snapshotText(1));
    t.current().emit('message', snapshotText(2));
    t.current().emit('snapshot', 'not json');
    assert.deepEqual(t.states, ['connecting', 'live']);
    assert.deepEqual(t.snaps.map((s) => s.time), [1, 2]);
    t.stream.stop();
  });

  it('shows reconnecting while the browser retries by itself, and live again after', () => {
    const t = setup();
    t.stream.start();
    t.current().emit('snapshot', snapshotText(1));
    t.current().dropAndRetry();
    assert.equal(t.stream.state, 'reconnecting');
    assert.equal(t.sources.length, 1, 'the browser reconnects itself: no new EventSource');
    t.current().emit('snapshot', snapshotText(2));
    assert.equal(t.stream.state, 'live');
    t.stream.stop();
  });

  it('opens a new EventSource with backoff after the browser gave up (proxy 502 during a balancer restart)', () => {
    const t = setup();
    t.stream.start();
    t.current().emit('snapshot', snapshotText(1));
    t.current().fail();
    assert.equal(t.stream.state, 'disconnected');
    assert.equal(t.infos.at(-1)?.retryAt, 500);
    assert.equal(t.sources[0]?.closed, true);
    t.clock.advance(499);
    assert.equal(t.sources.length, 1);
    t.clock.advance(1);
    assert.equal(t.sources.length, 2);
    assert.equal(t.stream.state, 'reconnecting');
    t.current().fail(); // still down: the next wait is longer
    assert.equal(t.infos.at(-1)?.retryAt, 500 + 1000);
    t.clock.advance(1000);
    assert.equal(t.sources.length, 3);
    t.current().emit('snapshot', snapshotText(2));
    assert.equal(t.stream.state, 'live');
    t.current().fail(); // a success resets the backoff
    assert.equal(t.infos.at(-1)?.retryAt, t.clock.now() + 500);
    t.stream.stop();
  });

  it('retryNow skips the wait', () => {
    const t = setup();
    t.stream.start();
    t.current().fail();
    assert.equal(t.stream.state, 'disconnected');
    t.stream.retryNow();
    assert.equal(t.sources.length, 2);
    assert.equal(t.stream.state, 'connecting');
    t.stream.stop();
  });

  it('marks a silent stream stale, then replaces the connection', () => {
    const t = setup({ staleAfterMs: 2000, replaceAfterMs: 10_000 });
    t.stream.start();
    t.current().emit('snapshot', snapshotText(1));
    t.clock.advance(1500);
    assert.equal(t.stream.state, 'live');
    t.clock.advance(1000);
    assert.equal(t.stream.state, 'stale');
    t.current().emit('snapshot', snapshotText(2));
    assert.equal(t.stream.state, 'live');
    t.clock.advance(10_500);
    assert.equal(t.sources.length, 2, 'a half-open connection is replaced');
    assert.equal(t.sources[0]?.closed, true);
    assert.equal(t.stream.state, 'reconnecting');
    t.clock.advance(10_500);
    assert.equal(t.sources.length, 3, 'and replaced again while it stays silent');
    t.stream.stop();
  });

  it('stop closes the source and every timer, and is idempotent', () => {
    const t = setup();
    t.stream.start();
    t.stream.start();
    assert.equal(t.sources.length, 1);
    t.current().fail();
    t.stream.stop();
    t.stream.stop();
    assert.equal(t.clock.pending, 0);
    t.clock.advance(60_000);
    assert.equal(t.sources.length, 1);
  });
});
