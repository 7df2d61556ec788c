/**
 * Lab results as CSV: one row per policy and upstream, the policy's numbers repeated on each, and
 * on every row the settings the run came from (a CSV alone says what was measured). Pure.
 */
import type { LabStatus } from './runner.js';

const HEADER = [
  'policy', 'balancers', 'spread', 'attribution', 'requests', 'errors', 'dropped', 'p50_ms', 'p99_ms', 'p999_ms', 'max_ms', 'bad_upstream', 'bad_share', 'jain',
  'upstream', 'upstream_requests', 'upstream_share', 'upstream_errors', 'max_in_flight', 'mean_in_flight',
  'rate', 'duration_ms', 'delay_scale', 'concurrency', 'seed', 'cluster_size', 'scenario',
];

/** Quotes a field only when it needs it (RFC 4180). */
const field = (v: string | number | null): string => {
  const s = v === null ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function toCsv(status: Pick<LabStatus, 'results' | 'spec' | 'cluster'>): string {
  const lines = [HEADER.join(',')];
  const { spec, cluster } = status;
  const setup = [spec?.rate ?? null, spec?.durationMs ?? null, spec?.delayScale ?? null, spec?.concurrency ?? null, spec?.seed ?? null, cluster?.size ?? null, spec?.scenario === undefined ? null : JSON.stringify(spec.scenario.fault)];
  for (const r of status.results) {
    const head = [r.policy, r.balancers, r.spread, r.attribution, r.requests, r.errors, r.dropped, r.p50Ms, r.p99Ms, r.p999Ms, r.maxMs, r.badUpstream, r.badShare, r.jain];
    for (const u of r.upstreams) {
      lines.push([...head, u.id, u.requests, u.share, u.errors, u.maxInFlight, u.meanInFlight, ...setup].map(field).join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}
