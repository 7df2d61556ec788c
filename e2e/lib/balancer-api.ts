import type { HttpClient } from './http.js';

/** The balancer's admin Snapshot (`GET /api/upstreams`), as docs/contracts.md defines it. */
export interface UpstreamView {
  id: string;
  weight: number;
  /** This balancer's own in-flight requests on the upstream. */
  inFlight: number;
  /** inFlight plus the live peers' latest reports: what the picker compares. */
  inFlightCluster: number;
  requests: number;
  errors: number;
  state: 'up' | 'down' | 'unproven' | 'draining';
  available: boolean;
  source: string;
}

export interface Snapshot {
  time: number;
  /** The balancer replica (its host name). */
  instance: string;
  tieBreak: string;
  explain: boolean;
  totals: { requests: number; inFlight: number; errors: number };
  imbalance: number;
  upstreams: UpstreamView[];
  decisions: { time: number; chosen: string; reason: string }[];
  /** The other balancers this one shares counts with (empty without peers). */
  peers: PeerView[];
}

/** A peer balancer as one balancer sees it. */
export interface PeerView {
  /** `host:port` its reports come from. */
  address: string;
  /** Instance id of its latest report; null before one. */
  id: string | null;
  /** Time since that report arrived; null before one. */
  ageMs: number | null;
  state: 'live' | 'dropped';
}

/** The Snapshot of the balancer behind `client`: nginx's /api/* or one replica's admin port. */
export const readSnapshot = (client: HttpClient): Promise<Snapshot> => client.json<Snapshot>('/api/upstreams', 5_000);

/** One candidate of an `X-Lb-Decision` header: in-flight as seen at decision time. */
export interface Candidate {
  id: string;
  inFlight: number;
  weight: number;
}

export interface Decision {
  chosen: string;
  reason: string;
  candidates: Candidate[];
}

/**
 * Parses `chosen=<id>; reason=<reason>; candidates=<id>/<inFlight>/<weight>,...`.
 * Throws on anything else, so a format drift fails the tests instead of passing them vacuously.
 */
export function parseDecision(header: string): Decision {
  const fields = new Map<string, string>();
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const chosen = fields.get('chosen');
  const reason = fields.get('reason');
  const list = fields.get('candidates');
  if (!chosen || !reason || list === undefined) throw new Error(`malformed X-Lb-Decision: ${header}`);
  const candidates = list
    .split(',')
    .filter(Boolean)
    .map((text): Candidate => {
      const [id, inFlight, weight] = text.trim().split('/');
      const c = { id: id ?? '', inFlight: Number(inFlight), weight: Number(weight) };
      if (!c.id || !Number.isInteger(c.inFlight) || !Number.isFinite(c.weight)) throw new Error(`malformed candidate "${text}" in ${header}`);
      return c;
    });
  return { chosen, reason, candidates };
}
