/**
 * The balancer's Snapshot (docs/contracts.md, `GET /api/upstreams` and every `/api/events` message),
 * checked by hand rather than with a schema library: the page bundle stays small, and a message that
 * does not fit is dropped instead of breaking the view.
 */

/** Health state of one upstream, as the balancer reports it. */
export type UpstreamState = 'up' | 'down' | 'unproven' | 'draining';

/** One upstream in a Snapshot. */
export interface UpstreamSnapshot {
  readonly id: string;
  readonly weight: number;
  /** In flight through this balancer. */
  readonly inFlight: number;
  /** In flight across the balancers that share counts (absent from a balancer older than peers). */
  readonly inFlightCluster?: number;
  readonly requests: number;
  readonly errors: number;
  /** Unknown states from a newer balancer are passed through and shown as they are. */
  readonly state: UpstreamState | (string & {});
  readonly available: boolean;
  readonly source: string;
  /** Upgraded (WebSocket) connections, counted in inFlight too; shown apart. */
  readonly longLived: number;
  /** Cap on in-flight requests; 0 = none. */
  readonly maxInFlight: number;
  /** Present while an operator drain runs (deadline in ms epoch, for a live countdown). */
  readonly drain?: { readonly deadline: number; readonly drained: boolean };
}

/** One routing decision from the balancer's ring buffer. */
export interface DecisionSnapshot {
  readonly time: number;
  readonly chosen: string;
  readonly reason: string;
}

/** A balancer this one shares its in-flight counts with. */
export interface PeerSnapshot {
  /** Where its reports come from (`host:port`, UDP). */
  readonly address: string;
  /** Milliseconds since its latest report; null before its first. */
  readonly ageMs: number | null;
  /** `live`: its counts count; `dropped`: silent longer than the peer timeout, or never heard. */
  readonly state: 'live' | 'dropped' | (string & {});
}

/** What the balancer sends ten times a second. */
export interface Snapshot {
  readonly time: number;
  /** The balancer replica this view watches (each replica has its own counts). */
  readonly instance: string;
  readonly tieBreak: string;
  /** The selection policy in force ('' from a balancer older than policies). */
  readonly policy: string;
  readonly explain: boolean;
  /** No upstream passes its checks and the balancer spreads requests over all of them (panic mode). */
  readonly panic: boolean;
  readonly totals: { readonly requests: number; readonly inFlight: number; readonly errors: number };
  readonly imbalance: number;
  readonly upstreams: readonly UpstreamSnapshot[];
  readonly decisions: readonly DecisionSnapshot[];
  /** The peers (empty without sharing, or from a balancer older than peers). */
  readonly peers: readonly PeerSnapshot[];
  /** This balancer sends its counts and picks on the peers' too (absent from an older balancer). */
  readonly sharing?: boolean;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function parseUpstream(v: unknown): UpstreamSnapshot | undefined {
  if (!isObj(v)) return undefined;
  const id = str(v.id);
  const inFlight = num(v.inFlight);
  const requests = num(v.requests);
  if (id === undefined || id === '' || inFlight === undefined || requests === undefined) return undefined;
  const state = str(v.state) ?? 'unproven';
  const inFlightCluster = num(v.inFlightCluster);
  return {
    id,
    weight: num(v.weight) ?? 1,
    inFlight,
    ...(inFlightCluster === undefined ? {} : { inFlightCluster }),
    requests,
    errors: num(v.errors) ?? 0,
    state,
    available: typeof v.available === 'boolean' ? v.available : state === 'up',
    source: str(v.source) ?? 'static',
    longLived: num(v.longLived) ?? 0,
    maxInFlight: num(v.maxInFlight) ?? 0,
    ...(isObj(v.drain) && num(v.drain.deadline) !== undefined
      ? { drain: { deadline: num(v.drain.deadline) ?? 0, drained: v.drain.drained === true } }
      : {}),
  };
}

function parseDecision(v: unknown): DecisionSnapshot | undefined {
  if (!isObj(v)) return undefined;
  const time = num(v.time);
  const chosen = str(v.chosen);
  if (time === undefined || chosen === undefined) return undefined;
  return { time, chosen, reason: str(v.reason) ?? '' };
}

function parsePeer(v: unknown): PeerSnapshot | undefined {
  if (!isObj(v)) return undefined;
  const address = str(v.address);
  const state = str(v.state);
  if (address === undefined || address === '' || state === undefined) return undefined;
  return { address, ageMs: num(v.ageMs) ?? null, state };
}

/**
 * Validates one Snapshot. Returns undefined when the message is not a Snapshot at all (no time or no
 * upstream list); single malformed upstreams or decisions are skipped, optional fields get defaults.
 */
export function parseSnapshot(v: unknown): Snapshot | undefined {
  if (!isObj(v)) return undefined;
  const time = num(v.time);
  if (time === undefined || !Array.isArray(v.upstreams)) return undefined;
  const upstreams: UpstreamSnapshot[] = [];
  const seen = new Set<string>();
  for (const raw of v.upstreams) {
    const u = parseUpstream(raw);
    // Row elements are keyed by id: a duplicate would make two rows fight over one element.
    if (u && !seen.has(u.id)) {
      seen.add(u.id);
      upstreams.push(u);
    }
  }
  const decisions: DecisionSnapshot[] = [];
  if (Array.isArray(v.decisions)) {
    for (const raw of v.decisions) {
      const d = parseDecision(raw);
      if (d) decisions.push(d);
    }
  }
  const peers: PeerSnapshot[] = [];
  if (Array.isArray(v.peers)) {
    for (const raw of v.peers) {
      const p = parsePeer(raw);
      if (p) peers.push(p);
    }
  }
  const totals = isObj(v.totals) ? v.totals : {};
  return {
    time,
    instance: str(v.instance) ?? '',
    tieBreak: str(v.tieBreak) ?? '',
    policy: str(v.policy) ?? '',
    explain: v.explain === true,
    panic: v.panic === true,
    totals: {
      requests: num(totals.requests) ?? upstreams.reduce((s, u) => s + u.requests, 0),
      inFlight: num(totals.inFlight) ?? upstreams.reduce((s, u) => s + u.inFlight, 0),
      errors: num(totals.errors) ?? upstreams.reduce((s, u) => s + u.errors, 0),
    },
    imbalance: num(v.imbalance) ?? 1,
    upstreams,
    decisions,
    peers,
    ...(typeof v.sharing === 'boolean' ? { sharing: v.sharing } : {}),
  };
}

/** Parses the text of one SSE `data:` field; undefined for anything that is not a Snapshot. */
export function parseSnapshotText(text: string): Snapshot | undefined {
  try {
    return parseSnapshot(JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}
