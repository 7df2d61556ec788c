/**
 * The footer's line about the other balancers: with shared counts, each peer and the age of its
 * latest report, so a reader sees that "all" in the in-flight column is fresh (a few ms) or that a
 * peer dropped out and its requests no longer count.
 */
import type { PeerSnapshot } from './snapshot.js';

export interface PeersLine {
  /** `none`, or each peer: `<host> 12 ms` when live, `<host> dropped` when not. */
  readonly text: string;
  /** Each peer in full: address, state, age. */
  readonly title: string;
  /** Some peer is dropped: its counts do not count. */
  readonly degraded: boolean;
}

/** The host part of `host:port` (an IPv6 address keeps its brackets). */
const hostOf = (address: string): string => {
  const colon = address.lastIndexOf(':');
  return colon > 0 ? address.slice(0, colon) : address;
};

const ageText = (ageMs: number | null): string => (ageMs === null ? 'never heard' : `${Math.round(ageMs)} ms`);

export function describePeers(peers: readonly PeerSnapshot[]): PeersLine {
  if (peers.length === 0) return { text: 'none', title: 'this balancer shares its in-flight counts with no other (no --peer / --peers-dns)', degraded: false };
  const text = peers.map((p) => `${hostOf(p.address)} ${p.state === 'live' ? ageText(p.ageMs) : p.state}`).join(' · ');
  const title = peers.map((p) => `${p.address}: ${p.state}, latest report ${p.ageMs === null ? 'never heard' : `${ageText(p.ageMs)} ago`}`).join('\n');
  return { text, title, degraded: peers.some((p) => p.state !== 'live') };
}
