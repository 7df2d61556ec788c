/**
 * The Prometheus side of count sharing: reports sent, received and refused, each peer's report
 * age, how many peers count, and every upstream's in-flight as seen across the balancers. On the
 * registry of the thread that owns the peers (the main one): the gauges read at scrape time.
 */
import { Counter, Gauge } from 'prom-client';
import type { Registry as PromRegistry } from 'prom-client';
import type { UpstreamTable } from '../upstreams/registry.js';
import type { PeerView, Verdict } from './peer-table.js';
import type { ReportDefect } from './report.js';

/** Why a datagram on the peer port did not count (the `reason` label). */
export type RefusedReport = ReportDefect | Exclude<Verdict, 'accepted' | 'self'>;
const REFUSED: readonly RefusedReport[] = ['too_large', 'malformed', 'unknown_sender', 'stale'];

export interface PeerMetrics {
  recordSent(): void;
  recordReceived(): void;
  recordRefused(reason: RefusedReport): void;
}

/** Registers the peer metrics on `registry`; `peers()` is read at scrape time. */
export function createPeerMetrics(registry: PromRegistry, upstreams: UpstreamTable, peers: () => readonly PeerView[], sharing: () => boolean): PeerMetrics {
  const sent = new Counter({ name: 'lb_peer_reports_sent_total', help: 'In-flight reports sent to peer balancers (one per peer per --peer-interval-ms).', registers: [registry] });
  const received = new Counter({ name: 'lb_peer_reports_received_total', help: 'Peer reports accepted (from a known peer address, well formed, newer than the one held).', registers: [registry] });
  const refused = new Counter({
    name: 'lb_peer_reports_rejected_total',
    help: 'Datagrams on the peer port that did not count, by reason (too_large, malformed, unknown_sender: not from a configured or resolved peer, stale: not newer than the report held).',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  for (const reason of REFUSED) refused.inc({ reason }, 0);
  new Gauge({
    name: 'lb_peer_sharing',
    help: '1 while this balancer shares in-flight counts (sends reports, picks on the peers\' counts too); 0 without peers or switched off (PUT /api/peers, --peer-sharing off).',
    registers: [registry],
    collect() {
      this.set(sharing() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'lb_peers_live',
    help: 'Peer balancers whose latest report is within --peer-timeout-ms: their counts add to this balancer\'s.',
    registers: [registry],
    collect() {
      this.set(peers().filter((p) => p.state === 'live').length);
    },
  });
  new Gauge({
    name: 'lb_peer_report_age_seconds',
    help: 'Time since the latest report of each peer balancer arrived, by its address (none before its first).',
    labelNames: ['peer'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const p of peers()) if (p.ageMs !== null) this.set({ peer: p.address }, p.ageMs / 1000);
    },
  });
  new Gauge({
    name: 'lb_upstream_in_flight_cluster',
    help: 'Requests in flight on each upstream across the balancers: this one\'s own (lb_upstream_in_flight) plus the live peers\' latest reports; what the load-reading policies compare.',
    labelNames: ['upstream'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const u of upstreams.list()) this.set({ upstream: u.id }, u.inFlightCluster);
    },
  });
  return {
    recordSent() {
      sent.inc();
    },
    recordReceived() {
      received.inc();
    },
    recordRefused(reason) {
      refused.inc({ reason });
    },
  };
}
