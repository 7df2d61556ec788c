/**
 * The one definition of a candidate, read by the data path (plain requests and upgrades), the wait
 * queue's wake-ups and the snapshot (so the page) alike: an upstream in the available set (the up
 * ones, or the panic set in panic mode: see availableOf) with room under its in-flight cap.
 * Each candidate carries its load as the policies read it: its own in-flight and, when peers share
 * counts, inFlightCluster (this balancer's plus the live peers' reports; see src/peers/). The cap
 * and room are this balancer's own.
 */
import type { Upstream } from './upstream.js';

/**
 * The candidates among `available` (registry.available()), less those in `tried`. The common case
 * (no cap reached, nothing tried) returns `available` itself and allocates nothing.
 */
export function candidatesOf(available: readonly Upstream[], tried?: ReadonlySet<Upstream>): readonly Upstream[] {
  let full = false;
  for (const u of available) {
    if (!u.hasRoom) {
      full = true;
      break;
    }
  }
  if (!full && tried === undefined) return available;
  return available.filter((u) => !(tried?.has(u) ?? false) && u.hasRoom);
}
