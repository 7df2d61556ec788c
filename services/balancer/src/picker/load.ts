/**
 * A candidate's load as every load-reading policy counts it (least-connections, p2c, peak-EWMA):
 * its in-flight across the balancers when it carries that figure (peers share their counts: see
 * src/peers/peers.ts), else its own. The pickers stay pure: the figure comes with the candidate.
 */
import type { Candidate } from './types.js';

export function inFlightOf(candidate: Candidate): number {
  return candidate.inFlightCluster ?? candidate.inFlight;
}
