/** Lab results as CSV: one row per policy and upstream, the policy's numbers repeated on each. Pure. */
import type { RunResult } from './runner.js';

const HEADER = [
  'policy', 'requests', 'errors', 'dropped', 'p50_ms', 'p99_ms', 'p999_ms', 'max_ms', 'bad_upstream', 'bad_share', 'jain',
  'upstream', 'upstream_requests', 'upstream_share', 'upstream_errors', 'max_in_flight', 'mean_in_flight',
];

/** Quotes a field only when it needs it (RFC 4180). */
const field = (v: string | number | null): string => {
  const s = v === null ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function toCsv(results: readonly RunResult[]): string {
  const lines = [HEADER.join(',')];
  for (const r of results) {
    const head = [r.policy, r.requests, r.errors, r.dropped, r.p50Ms, r.p99Ms, r.p999Ms, r.maxMs, r.badUpstream, r.badShare, r.jain];
    for (const u of r.upstreams) {
      lines.push([...head, u.id, u.requests, u.share, u.errors, u.maxInFlight, u.meanInFlight].map(field).join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}
