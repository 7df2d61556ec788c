/**
 * The algorithm lab as the page sees it: the balancer's `/api/lab` status (checked by hand, like
 * the snapshot), the scenario presets the buttons apply, and the results table's rows. Pure.
 */

/** The selection policies, in the balancer's order (GET /api/policy lists them too). */
export const POLICIES = ['least-connections', 'round-robin', 'random', 'p2c', 'peak-ewma'] as const;

/** A fault the backends understand (services/backend/src/scenario.ts checks the fields). */
export type Fault = Readonly<Partial<Record<'extraLatencyMs' | 'errorRate' | 'cpuStallMs', number> & Record<'hang' | 'resetMidBody', boolean>>>;

/** The scenario buttons: a label and the fault each applies to the chosen replica. */
export const SCENARIOS: Readonly<Record<string, { readonly label: string; readonly fault: Fault }>> = Object.freeze({
  slow: { label: '+50 ms latency', fault: { extraLatencyMs: 50 } },
  errors: { label: '20 % errors', fault: { errorRate: 0.2 } },
  hang: { label: 'hang', fault: { hang: true } },
  reset: { label: 'reset mid-body', fault: { resetMidBody: true } },
  stall: { label: '200 ms CPU stall', fault: { cpuStallMs: 200 } },
});

/**
 * The lab's "balancers" dimension (issue 25): through this balancer alone, or with every other
 * request through a live peer, the two picking on their own counts or on shared ones.
 */
export const BALANCER_MODES: readonly { readonly value: string; readonly label: string }[] = Object.freeze([
  { value: 'one', label: 'one (this balancer)' },
  { value: 'two-isolated', label: 'two, counts isolated' },
  { value: 'two-sharing', label: 'two, counts shared' },
]);

/** One upstream in one run's result: its id and its figures. */
export type LabUpstream = { readonly id: string } & Readonly<Record<'requests' | 'share' | 'errors' | 'maxInFlight' | 'meanInFlight', number>>;

/** One policy's result. */
export interface LabResult {
  readonly policy: string;
  /** One balancer, two isolated or two sharing ('one' from a balancer older than the dimension). */
  readonly balancers: string;
  /** Time-averaged max ÷ mean in-flight over the backends, from the lab's records; null when not measured so. */
  readonly spread: number | null;
  readonly requests: number;
  /** Sent and failed (5xx, reset, timeout). */
  readonly errors: number;
  /** Never sent: over the lab's cap on open requests. */
  readonly dropped: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly badUpstream: string | null;
  readonly badShare: number | null;
  readonly jain: number;
  readonly upstreams: readonly LabUpstream[];
}

export interface LabProgress {
  readonly policy: string;
  readonly index: number;
  readonly of: number;
  readonly elapsedMs: number;
  readonly durationMs: number;
  readonly completed: number;
  readonly errors: number;
  readonly dropped: number;
  /** The balancer's unmeasured first second before the first policy. */
  readonly warmUp: boolean;
}

/** What a run was asked for: the settings its table came from. */
export interface LabSpec {
  readonly rate: number;
  readonly durationMs: number;
  readonly delayScale: number;
  readonly concurrency: number;
  readonly scenario: { readonly upstream: string; readonly fault: Fault } | null;
  readonly balancers: string;
}

/** The balancer's capacity check of a run (services/balancer/src/lab/capacity.ts). */
export interface LabCheck {
  readonly expectedLatencyMs: number;
  readonly expectedOpen: number;
  readonly cap: number;
  readonly warnings: readonly string[];
}

/** `/api/lab` and every `lab` event of `/api/lab/events`. */
export interface LabStatus {
  readonly state: 'idle' | 'running' | 'done' | 'failed' | 'cancelled';
  readonly kind: string | null;
  readonly progress: LabProgress | null;
  readonly results: readonly LabResult[];
  readonly error: string | null;
  readonly spec: LabSpec | null;
  /** Available upstreams when the run started. */
  readonly clusterSize: number | null;
  readonly check: LabCheck | null;
  readonly finishedAt: number | null;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown, fallback = 0): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const STATES = new Set(['idle', 'running', 'done', 'failed', 'cancelled']);

function parseUpstream(v: unknown): LabUpstream | undefined {
  if (!isObj(v) || typeof v.id !== 'string') return undefined;
  return { id: v.id, requests: num(v.requests), share: num(v.share), errors: num(v.errors), maxInFlight: num(v.maxInFlight), meanInFlight: num(v.meanInFlight) };
}

function parseResult(v: unknown): LabResult | undefined {
  if (!isObj(v) || typeof v.policy !== 'string') return undefined;
  const upstreams = Array.isArray(v.upstreams) ? v.upstreams.map(parseUpstream).filter((u): u is LabUpstream => u !== undefined) : [];
  return {
    policy: v.policy,
    balancers: str(v.balancers) ?? 'one',
    spread: typeof v.spread === 'number' ? v.spread : null,
    requests: num(v.requests),
    errors: num(v.errors),
    dropped: num(v.dropped),
    p50Ms: num(v.p50Ms),
    p99Ms: num(v.p99Ms),
    p999Ms: num(v.p999Ms),
    badUpstream: str(v.badUpstream),
    badShare: typeof v.badShare === 'number' ? v.badShare : null,
    jain: num(v.jain, 1),
    upstreams,
  };
}

function parseFault(v: unknown): Fault {
  if (!isObj(v)) return {};
  return Object.fromEntries(Object.entries(v).filter(([, x]) => typeof x === 'number' || typeof x === 'boolean'));
}

function parseSpec(v: unknown): LabSpec | null {
  if (!isObj(v) || typeof v.rate !== 'number' || typeof v.durationMs !== 'number') return null;
  const sc = isObj(v.scenario) && typeof v.scenario.upstream === 'string' ? { upstream: v.scenario.upstream, fault: parseFault(v.scenario.fault) } : null;
  return { rate: v.rate, durationMs: v.durationMs, delayScale: num(v.delayScale, 1), concurrency: num(v.concurrency), scenario: sc, balancers: str(v.balancers) ?? 'one' };
}

function parseCheck(v: unknown): LabCheck | null {
  if (!isObj(v)) return null;
  const warnings = Array.isArray(v.warnings) ? v.warnings.filter((w): w is string => typeof w === 'string') : [];
  return { expectedLatencyMs: num(v.expectedLatencyMs), expectedOpen: num(v.expectedOpen), cap: num(v.cap), warnings };
}

/** Validates a lab status; undefined when it is not one. */
export function parseLabStatus(v: unknown): LabStatus | undefined {
  if (!isObj(v) || typeof v.state !== 'string' || !STATES.has(v.state)) return undefined;
  const p = isObj(v.progress) ? v.progress : undefined;
  return {
    state: v.state as LabStatus['state'],
    kind: str(v.kind),
    progress: p
      ? { policy: str(p.policy) ?? '', index: num(p.index), of: num(p.of), elapsedMs: num(p.elapsedMs), durationMs: num(p.durationMs), completed: num(p.completed), errors: num(p.errors), dropped: num(p.dropped), warmUp: p.warmUp === true }
      : null,
    results: Array.isArray(v.results) ? v.results.map(parseResult).filter((r): r is LabResult => r !== undefined) : [],
    error: str(v.error),
    spec: parseSpec(v.spec),
    clusterSize: isObj(v.cluster) && typeof v.cluster.size === 'number' ? v.cluster.size : null,
    check: parseCheck(v.check),
    finishedAt: typeof v.finishedAt === 'number' ? v.finishedAt : null,
  };
}

/** The lab panel's line when the balancer runs without the lab, naming the knob that turns it on. */
export const LAB_OFF_TEXT = 'Lab off: start the balancer with LB_LAB=1 (or --lab) to run traffic and switch fault scenarios.';

/**
 * What an answer of `/api/lab` says: the lab's status, `'off'` when the balancer runs without the
 * lab (404 `LB_LAB_DISABLED`), undefined for anything else (an old balancer, a proxy's error page).
 */
export function readLabAnswer(ok: boolean, body: unknown): LabStatus | 'off' | undefined {
  if (ok) return parseLabStatus(body);
  return isObj(body) && body.error === 'LB_LAB_DISABLED' ? 'off' : undefined;
}

const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;
const ms = (x: number): string => x.toFixed(1);

/** The cells of one results row, in the table's column order. */
export function resultCells(r: LabResult): string[] {
  const bad = r.badUpstream === null ? undefined : r.upstreams.find((u) => u.id === r.badUpstream);
  return [
    r.policy,
    r.balancers,
    ms(r.p50Ms),
    ms(r.p99Ms),
    ms(r.p999Ms),
    String(r.errors),
    String(r.dropped),
    r.badShare === null ? '–' : pct(r.badShare),
    bad === undefined ? '–' : `${bad.maxInFlight} / ${bad.meanInFlight.toFixed(2)}`,
    r.spread === null ? '–' : r.spread.toFixed(2),
    r.jain.toFixed(3),
  ];
}

/** The line that says whether this balancer shares its counts, and with whom (from the live snapshot). */
export function describeSharing(sharing: boolean | undefined, peers: readonly { readonly state: string; readonly ageMs: number | null }[] | undefined): string {
  if (peers === undefined || peers.length === 0) return 'Count sharing: no peers (one balancer).';
  const live = peers.filter((p) => p.state === 'live');
  const ages = live.map((p) => p.ageMs).filter((a): a is number => a !== null);
  const heard = `${live.length} of ${peers.length} ${peers.length === 1 ? 'peer' : 'peers'} live${ages.length > 0 ? ` (latest report ${Math.max(...ages)} ms old at most)` : ''}`;
  return sharing === false
    ? `Count sharing: off (this balancer picks on its own counts and sends none; PUT /api/peers turns it on) · ${heard}.`
    : `Count sharing: on · ${heard}.`;
}

/** The progress line under the lab buttons. */
export function describeProgress(s: LabStatus): string {
  switch (s.state) {
    case 'idle':
      return 'Idle. Set a rate and a duration, then run under the current policy or compare them all.';
    case 'running': {
      const p = s.progress;
      if (p === null) return 'Starting…';
      if (p.warmUp) return `Warming up under ${p.policy}, not measured: ${(p.elapsedMs / 1000).toFixed(1)} of ${(p.durationMs / 1000).toFixed(0)} s`;
      const step = s.kind === 'compare' ? `${p.policy} (${p.index} of ${p.of})` : p.policy;
      const dropped = p.dropped > 0 ? ` · ${p.dropped} dropped` : '';
      return `${step}: ${(p.elapsedMs / 1000).toFixed(1)} of ${(p.durationMs / 1000).toFixed(0)} s · ${p.completed} answered · ${p.errors} errors${dropped}`;
    }
    case 'done':
      return `Done: ${s.results.length} ${s.results.length === 1 ? 'run' : 'runs'}.`;
    case 'cancelled':
      return `Cancelled after ${s.results.length} ${s.results.length === 1 ? 'run' : 'runs'}.`;
    case 'failed':
      return `Failed: ${s.error ?? 'unknown error'}`;
  }
}

/** The share of time a run has covered, 0..1, for the progress bar (a comparison counts every policy). */
export function progressFraction(s: LabStatus): number {
  const p = s.progress;
  if (s.state !== 'running' || p === null || p.durationMs <= 0 || p.of <= 0) return s.state === 'done' ? 1 : 0;
  if (p.warmUp) return 0;
  return Math.min(1, (p.index - 1 + Math.min(1, p.elapsedMs / p.durationMs)) / p.of);
}

/** The image speeds the lab form offers: `?delayScale=` for the backends. */
export const IMAGE_SPEEDS: readonly { readonly scale: number; readonly label: string }[] = Object.freeze([
  { scale: 0.001, label: 'milliseconds (delays ÷ 1000)' },
  { scale: 1, label: "the cluster's own delays" },
]);

const sameFault = (a: Fault, b: Fault): boolean => {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.join() === kb.join() && ka.every((k) => a[k as keyof Fault] === b[k as keyof Fault]);
};

/** The preset key (of SCENARIOS) a fault came from; '' for none or one the page does not offer. */
export function scenarioKeyOf(fault: Fault | undefined): string {
  if (fault === undefined) return '';
  return Object.entries(SCENARIOS).find(([, s]) => sameFault(s.fault, fault))?.[0] ?? '';
}

/** One line naming what a fault does, for the settings caption. */
function describeFault(fault: Fault): string {
  const key = scenarioKeyOf(fault);
  const preset = key === '' ? undefined : SCENARIOS[key];
  return preset?.label ?? JSON.stringify(fault);
}

/** The settings a results table came from, as the caption above it says them. */
export function describeSettings(s: LabStatus): string {
  const spec = s.spec;
  if (spec === null) return '';
  const images = spec.delayScale === 1 ? "the cluster's own image delays" : `images at ${spec.delayScale} × their delays`;
  const scenario = spec.scenario === null ? 'all replicas healthy' : `${describeFault(spec.scenario.fault)} on ${spec.scenario.upstream}`;
  const parts = [`${spec.rate} req/s for ${Number((spec.durationMs / 1000).toFixed(1))} s`, images, scenario];
  if (s.clusterSize !== null) parts.push(`${s.clusterSize} ${s.clusterSize === 1 ? 'replica' : 'replicas'}`);
  if (s.check !== null) parts.push(`~${s.check.expectedOpen} of at most ${s.check.cap} requests open`);
  return parts.join(' · ');
}
