/**
 * How evenly requests were in flight over the backends during a run, from the lab's own record of
 * each request (when it left, when it ended, which backend answered): independent of any
 * balancer's counters, so one balancer, two isolated ones and two sharing ones are measured alike.
 * Pure.
 *
 * The spread is the snapshot's imbalance (max ÷ mean in-flight over the backends) taken at every
 * instant and averaged over the time anything was in flight: least-connections keeps it near 1,
 * two balancers that each count only their own requests pile onto the same backend now and then.
 * Instants with nothing in flight are left out (there is nothing to spread).
 */

/** One request's time on one backend, in ms on the run's clock. */
export interface InFlightInterval {
  readonly upstream: string;
  readonly start: number;
  readonly end: number;
}

export interface UpstreamLoad {
  readonly max: number;
  /** Time-averaged in-flight over the run's window (first start to last end). */
  readonly mean: number;
}

export interface SpreadResult {
  /** Time-averaged max ÷ mean in-flight over the backends while any request was in flight; 1 for none. */
  readonly spread: number;
  readonly upstreams: ReadonlyMap<string, UpstreamLoad>;
}

/**
 * The spread of `intervals` over `upstreams` (the cluster: a backend that got nothing counts as 0
 * in the mean) and any other backend the intervals name.
 */
export function inFlightSpread(intervals: readonly InFlightInterval[], upstreams: readonly string[]): SpreadResult {
  const ids = [...new Set([...upstreams, ...intervals.map((i) => i.upstream)])];
  const n = ids.length;
  const events: { t: number; delta: 1 | -1; upstream: string }[] = [];
  for (const i of intervals) {
    if (!(i.end > i.start)) continue;
    events.push({ t: i.start, delta: 1, upstream: i.upstream }, { t: i.end, delta: -1, upstream: i.upstream });
  }
  // Ends before starts at the same instant: a request that ends as another begins is not two at once.
  events.sort((a, b) => a.t - b.t || a.delta - b.delta);
  const count = new Map(ids.map((id) => [id, 0]));
  const area = new Map(ids.map((id) => [id, 0]));
  const peak = new Map(ids.map((id) => [id, 0]));
  const since = new Map(ids.map((id) => [id, 0]));
  /** How many backends have each in-flight count: the maximum moves by one at a time. */
  const freq: number[] = [n];
  let max = 0;
  let total = 0;
  let weighted = 0;
  let busy = 0;
  let last = events[0]?.t ?? 0;
  const first = last;
  for (const e of events) {
    const dt = e.t - last;
    if (dt > 0 && total > 0) {
      weighted += dt * (max / (total / n));
      busy += dt;
    }
    last = e.t;
    const c = count.get(e.upstream) ?? 0;
    area.set(e.upstream, (area.get(e.upstream) ?? 0) + c * (e.t - (since.get(e.upstream) ?? first)));
    since.set(e.upstream, e.t);
    const next = c + e.delta;
    count.set(e.upstream, next);
    freq[c] = (freq[c] ?? 0) - 1;
    freq[next] = (freq[next] ?? 0) + 1;
    total += e.delta;
    if (next > max) max = next;
    else if (c === max && (freq[c] ?? 0) === 0) max = c - 1;
    peak.set(e.upstream, Math.max(peak.get(e.upstream) ?? 0, next));
  }
  const window = last - first;
  const loads = new Map(ids.map((id): [string, UpstreamLoad] => [id, { max: peak.get(id) ?? 0, mean: window > 0 ? (area.get(id) ?? 0) / window : 0 }]));
  return { spread: busy > 0 ? weighted / busy : 1, upstreams: loads };
}
