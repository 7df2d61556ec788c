/**
 * Turns the stream of Snapshots into what the charts and rows need: requests per second per
 * upstream (derived from the monotonic `requests` totals) and in-flight over time, in fixed time
 * buckets. Pure: no DOM, no clock (the Snapshot's own `time` is the clock), so it runs under mocha.
 */
import type { Snapshot } from './snapshot.js';

/** Options of {@link createTrafficHistory}. */
export interface HistoryOptions {
  /** Width of one chart point. Snapshots arrive every 100 ms; 500 ms keeps 15 minutes at 1800 points. */
  readonly stepMs?: number;
  /** How much history is kept. */
  readonly capacityMs?: number;
  /** Requests per second are averaged over this much time, so one request does not look like a spike of 10/s. */
  readonly rateWindowMs?: number;
}

/** Columns in the shape uPlot wants: x in seconds, one array per series, null where there is no value. */
export interface SeriesColumns {
  readonly ids: readonly string[];
  readonly x: number[];
  /** Keyed like `ids`; `TOTAL_ID` holds the sum over all upstreams. */
  readonly series: ReadonlyMap<string, (number | null)[]>;
}

/** Key of the sum series in {@link SeriesColumns} of requests per second. */
export const TOTAL_ID = '__total__';

/** What {@link createTrafficHistory} returns. */
export interface TrafficHistory {
  /** Feeds one Snapshot. Snapshots older than the last one are ignored; a large step back restarts the history. */
  ingest(snapshot: Snapshot): void;
  /** Current requests per second of one upstream (0 when unknown). */
  rate(id: string): number;
  /** Current requests per second over all upstreams. */
  totalRate(): number;
  /** Highest in-flight count of one upstream over the last `windowMs` (including now). */
  peakInFlight(id: string, windowMs: number): number;
  /** Requests-per-second columns for the last `windowMs`. */
  rateColumns(windowMs: number): SeriesColumns;
  /** In-flight columns (the highest value inside each bucket, so short spikes are not lost) for the last `windowMs`. */
  inFlightColumns(windowMs: number): SeriesColumns;
  /** Number of stored buckets (for tests and for skipping redraws). */
  readonly length: number;
  /** Changes whenever the stored columns change; cheap way for the charts to skip a redraw. */
  readonly version: number;
  /** Forgets everything. */
  clear(): void;
}

interface RateState {
  samples: { time: number; requests: number }[];
  rate: number;
}

interface Column {
  rps: (number | null)[];
  inFlight: (number | null)[];
}

/** Creates an empty history. */
export function createTrafficHistory(opts: HistoryOptions = {}): TrafficHistory {
  const stepMs = opts.stepMs ?? 500;
  const capacityMs = opts.capacityMs ?? 15 * 60_000;
  const rateWindowMs = opts.rateWindowMs ?? 1000;

  const rates = new Map<string, RateState>();
  const totalRate: RateState = { samples: [], rate: 0 };
  // Finished buckets.
  let xs: number[] = [];
  let columns = new Map<string, Column>();
  let totalRps: (number | null)[] = [];
  // The bucket being filled: values are folded in until a Snapshot of a later bucket arrives.
  let openBucket: number | undefined;
  let openRps = new Map<string, number>();
  let openInFlight = new Map<string, number>();
  let openTotal = 0;
  let lastTime: number | undefined;
  let version = 0;

  function updateRate(state: RateState, time: number, requests: number): number {
    const last = state.samples.at(-1);
    // A lower total means the balancer restarted and counts from 0 again: start over.
    if (last && requests < last.requests) state.samples = [];
    state.samples.push({ time, requests });
    // Keep one sample at or before the start of the window, so the rate covers the whole window.
    while (state.samples.length > 2 && (state.samples[1]?.time ?? time) <= time - rateWindowMs) state.samples.shift();
    const first = state.samples[0];
    if (!first || time <= first.time) {
      state.rate = 0;
    } else {
      state.rate = ((requests - first.requests) * 1000) / (time - first.time);
    }
    return state.rate;
  }

  function closeBucket(): void {
    if (openBucket === undefined) return;
    const x = (openBucket * stepMs) / 1000;
    const prevX = xs.at(-1);
    // A gap (disconnected, tab asleep) gets one empty row so the lines break instead of bridging it.
    const gap = prevX !== undefined && x - prevX > (2 * stepMs) / 1000;
    const rows = gap ? 2 : 1;
    for (let r = 0; r < rows; r++) {
      const isGapRow = gap && r === 0;
      xs.push(isGapRow ? x - stepMs / 1000 : x);
      totalRps.push(isGapRow ? null : openTotal);
      for (const [id, col] of columns) {
        col.rps.push(isGapRow ? null : (openRps.get(id) ?? null));
        col.inFlight.push(isGapRow ? null : (openInFlight.get(id) ?? null));
      }
    }
    for (const id of openRps.keys()) {
      if (!columns.has(id)) {
        const pad = xs.length - 1;
        columns.set(id, {
          rps: [...new Array<null>(pad).fill(null), openRps.get(id) ?? null],
          inFlight: [...new Array<null>(pad).fill(null), openInFlight.get(id) ?? null],
        });
      }
    }
    trim(x);
    openRps = new Map();
    openInFlight = new Map();
    openTotal = 0;
    openBucket = undefined;
    version++;
  }

  function trim(nowX: number): void {
    const minX = nowX - capacityMs / 1000;
    let drop = 0;
    while (drop < xs.length && (xs[drop] ?? 0) < minX) drop++;
    if (drop === 0) return;
    xs = xs.slice(drop);
    totalRps = totalRps.slice(drop);
    const next = new Map<string, Column>();
    for (const [id, col] of columns) {
      const rps = col.rps.slice(drop);
      const inFlight = col.inFlight.slice(drop);
      // An upstream that left before the oldest point we keep has nothing left to draw.
      if (inFlight.some((v) => v !== null) || rps.some((v) => v !== null)) next.set(id, { rps, inFlight });
    }
    columns = next;
  }

  function reset(): void {
    rates.clear();
    totalRate.samples = [];
    totalRate.rate = 0;
    xs = [];
    columns = new Map();
    totalRps = [];
    openBucket = undefined;
    openRps = new Map();
    openInFlight = new Map();
    openTotal = 0;
    lastTime = undefined;
    version++;
  }

  function slice(windowMs: number, pick: (c: Column) => (number | null)[], withTotal: boolean): SeriesColumns {
    const newest = xs.at(-1);
    const minX = newest === undefined ? 0 : newest - windowMs / 1000;
    let from = 0;
    while (from < xs.length && (xs[from] ?? 0) < minX) from++;
    const series = new Map<string, (number | null)[]>();
    const ids: string[] = [];
    for (const [id, col] of columns) {
      const values = pick(col).slice(from);
      if (values.some((v) => v !== null)) {
        ids.push(id);
        series.set(id, values);
      }
    }
    if (withTotal) series.set(TOTAL_ID, totalRps.slice(from));
    return { ids, x: xs.slice(from), series };
  }

  return {
    ingest(s) {
      if (lastTime !== undefined && s.time < lastTime) {
        // Older than what we have: a reordered message, or a balancer whose clock is behind ours.
        if (lastTime - s.time < 2 * stepMs) return;
        reset();
      }
      lastTime = s.time;
      const bucket = Math.floor(s.time / stepMs);
      if (openBucket !== undefined && bucket !== openBucket) closeBucket();
      openBucket = bucket;
      const present = new Set<string>();
      for (const u of s.upstreams) {
        present.add(u.id);
        let st = rates.get(u.id);
        if (!st) {
          st = { samples: [], rate: 0 };
          rates.set(u.id, st);
        }
        openRps.set(u.id, updateRate(st, s.time, u.requests));
        openInFlight.set(u.id, Math.max(openInFlight.get(u.id) ?? 0, u.inFlight));
      }
      // An upstream that came back later starts a fresh rate instead of one across its absence.
      for (const id of rates.keys()) if (!present.has(id)) rates.delete(id);
      openTotal = updateRate(totalRate, s.time, s.totals.requests);
    },
    rate: (id) => rates.get(id)?.rate ?? 0,
    totalRate: () => totalRate.rate,
    peakInFlight(id, windowMs) {
      let peak = openInFlight.get(id) ?? 0;
      const col = columns.get(id);
      const newest = xs.at(-1);
      if (col && newest !== undefined) {
        const minX = newest - windowMs / 1000;
        for (let i = xs.length - 1; i >= 0 && (xs[i] ?? 0) >= minX; i--) peak = Math.max(peak, col.inFlight[i] ?? 0);
      }
      return peak;
    },
    rateColumns: (windowMs) => slice(windowMs, (c) => c.rps, true),
    inFlightColumns: (windowMs) => slice(windowMs, (c) => c.inFlight, false),
    get length() {
      return xs.length;
    },
    get version() {
      return version;
    },
    clear: reset,
  };
}
