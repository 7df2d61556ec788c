/**
 * Whether a lab run can measure the policies on this cluster at all, decided before it starts.
 *
 * The generator holds at most `concurrency` requests open; past that it drops them. By Little's
 * law an open-loop run keeps rate × latency requests open on average, and with Poisson arrivals
 * the count open at a time is itself Poisson (an M/G/∞ queue), so its spread is the square root
 * of the mean. A run is refused when mean + 4 standard deviations is over the cap: its table
 * would measure the cap (hundreds of drops, every policy alike), not the policies.
 *
 * The latency comes from a probe: one request per image of the mix through this balancer's own
 * data port, just before the run. It measures what the run will meet (the backends' delays, the
 * `delayScale` asked for, the network, whatever else the cluster is doing) on any cluster,
 * including upstreams that are not our backends and say nothing about their delays. Each probe
 * waits long enough to know the answer (past `probeDeadlineMs` one image alone would put the run
 * over the cap) and at least 3 s, so that a refusal on a cluster of 1 s images names the real
 * latency and the rate that would fit.
 *
 * A fault scenario is judged, not refused: a policy that keeps sending the faulty replica its
 * share (round robin, random) holds more requests open there, and that is what the lab is for.
 * When even that would go over the cap the check warns that those rows will show drops. Pure.
 */
import type { Fault } from './scenario-relay.js';

/** One probe request: the image path, its weight in the mix, and how long it took. */
export interface ProbeSample {
  readonly path: string;
  readonly weight: number;
  /** Until the last byte; the deadline when it timed out. */
  readonly ms: number;
  /** Gave up at the deadline: the real latency is longer. */
  readonly timedOut: boolean;
}

/** The verdict on one spec, kept with the run's results (what the table came from). */
export interface CapacityCheck {
  /** Mix-weighted probe latency (a lower bound when a probe timed out). */
  readonly expectedLatencyMs: number;
  /** Requests open on average while healthy: rate × latency. */
  readonly expectedOpen: number;
  /** The same with the scenario on, under a policy that gives the faulty replica 1/N of the traffic. */
  readonly worstOpen: number;
  /** The generator's cap on open requests (the spec's concurrency). */
  readonly cap: number;
  /** The most open requests on average that stay under the cap (mean + 4 σ ≤ cap). */
  readonly openLimit: number;
  /** Available upstreams when checked. */
  readonly upstreams: number;
  readonly probe: readonly ProbeSample[];
  readonly warnings: readonly string[];
  /** Why the run cannot be measured; null when it may run. */
  readonly refusal: string | null;
}

/** What the check needs of a spec. */
export interface CapacitySpec {
  readonly rate: number;
  readonly concurrency: number;
  readonly mix: readonly number[];
  readonly delayScale: number;
  readonly scenario?: { readonly upstream: string; readonly fault: Fault };
}

/** Standard deviations of headroom over the mean number of open requests. */
const SIGMAS = 4;

/** The largest mean m with m + 4√m ≤ cap. */
export function openLimit(cap: number): number {
  const root = Math.sqrt(cap + (SIGMAS / 2) ** 2) - SIGMAS / 2;
  return root * root;
}

/** The smallest share of the mix any probed image has (weights > 0). */
const smallestShare = (mix: readonly number[]): number => {
  const total = mix.reduce((a, b) => a + b, 0);
  return Math.min(...mix.filter((w) => w > 0).map((w) => w / total));
};

/** A probe waits at least this long (unless the request timeout is shorter). */
export const PROBE_MIN_WAIT_MS = 3000;

/**
 * How long a probe waits: at least until an image that takes longer, at its share of the rate,
 * alone keeps more requests open than the cap allows (so a timeout is a refusal), and at least
 * PROBE_MIN_WAIT_MS; never past `timeoutMs` (the run's own request timeout).
 */
export function probeDeadlineMs(spec: CapacitySpec, timeoutMs: number): number {
  const needed = (1000 * openLimit(spec.concurrency)) / (spec.rate * smallestShare(spec.mix));
  return Math.min(timeoutMs, Math.max(PROBE_MIN_WAIT_MS, Math.ceil(needed)));
}

const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** The extra time a faulty replica holds each request it gets, and what to call the fault. */
function faultCost(fault: Fault, ratePerReplica: number, timeoutMs: number): { ms: number; what: string } {
  if (fault.hang === true) return { ms: timeoutMs, what: `a hanging replica (each request held until the ${timeoutMs / 1000} s timeout)` };
  const stall = typeof fault.cpuStallMs === 'number' ? fault.cpuStallMs : 0;
  const extra = typeof fault.extraLatencyMs === 'number' ? fault.extraLatencyMs : 0;
  // A stall blocks the replica's event loop: past 1000 / stall requests a second it never catches up.
  if (stall > 0 && ratePerReplica * stall >= 1000) return { ms: timeoutMs, what: `a ${stall} ms CPU stall per request (the replica falls behind for good)` };
  return { ms: stall + extra, what: stall > 0 ? `a ${stall} ms CPU stall per request` : `+${extra} ms on the replica` };
}

/** Judges a spec against its probe; `upstreams` is the number of available upstreams. */
export function assessCapacity(spec: CapacitySpec, probe: readonly ProbeSample[], upstreams: number, timeoutMs: number): CapacityCheck {
  const total = probe.reduce((sum, p) => sum + p.weight, 0);
  const latency = total === 0 ? 0 : probe.reduce((sum, p) => sum + p.weight * p.ms, 0) / total;
  const expectedOpen = (spec.rate * latency) / 1000;
  const limit = openLimit(spec.concurrency);
  const n = Math.max(1, upstreams);
  const fault = spec.scenario === undefined ? undefined : faultCost(spec.scenario.fault, spec.rate / n, timeoutMs);
  const worstOpen = fault === undefined ? expectedOpen : expectedOpen + (spec.rate * fault.ms) / n / 1000;

  let refusal: string | null = null;
  const probed = probe.map((p) => `${p.path} ${p.timedOut ? `over ${Math.round(p.ms)}` : Math.round(p.ms)} ms`).join(', ');
  if (probe.some((p) => p.timedOut && p.ms >= timeoutMs)) {
    refusal = `images take longer than the lab's ${timeoutMs / 1000} s request timeout (probed: ${probed}): every request would fail. Use faster images (delayScale, e.g. 0.001).`;
  } else if (expectedOpen > limit) {
    // A timed-out probe makes the latency a lower bound: the rate that fits is then an upper bound.
    const partial = probe.some((p) => p.timedOut);
    const maxRate = Math.floor((limit * 1000) / Math.max(latency, 1e-3));
    refusal =
      `${spec.rate} req/s × ${partial ? 'over ' : ''}${round(latency)} ms per request (probed: ${probed}) keeps ${partial ? 'more than' : 'about'} ${Math.round(expectedOpen)} requests open, ` +
      `and the lab holds at most ${spec.concurrency} (concurrency): the rest would be dropped and the table would measure the cap, not the policies. ` +
      `Lower the rate ${partial ? `below ${maxRate} req/s (less still, as the slowest images were not waited for)` : `to ${maxRate} req/s or less`}, ` +
      `raise concurrency (up to 1000), or use faster images (delayScale, e.g. 0.001 makes 1 s images take 1 ms).`;
  }
  const warnings: string[] = [];
  if (refusal === null && fault !== undefined && worstOpen > limit) {
    warnings.push(
      `With ${fault.what}, a policy that keeps sending it 1/${n} of the traffic (round robin, random) holds about ${Math.round(worstOpen)} requests open, ` +
        `more than the cap of ${spec.concurrency} allows: expect dropped requests in those rows (the Dropped column).`,
    );
  }
  return {
    expectedLatencyMs: round(latency, 2),
    expectedOpen: round(expectedOpen, 2),
    worstOpen: round(worstOpen, 2),
    cap: spec.concurrency,
    openLimit: round(limit, 2),
    upstreams,
    probe,
    warnings,
    refusal,
  };
}
