/**
 * The types every selection policy shares: what a candidate is, how a pick is reported and the
 * options least-connections' tie-break reads. No policy owns them; each policy imports them.
 */

/** What the picker needs to know about an upstream. */
export interface Candidate {
  readonly id: string;
  /** Requests in flight on it through this balancer. */
  readonly inFlight: number;
  /**
   * Requests in flight on it through every balancer that shares counts (this one's plus its live
   * peers' latest reports); absent = inFlight. What the load-reading policies compare (load.ts).
   */
  readonly inFlightCluster?: number;
  /** Effective weight, > 0. */
  readonly weight: number;
}

export type TieBreak = 'rotation' | 'random' | 'latency';

/**
 * Why the chosen candidate won; shown in `X-Lb-Decision`. Least-connections gives the first
 * five, each other policy its own name.
 */
export type PickReason =
  | 'only-candidate'
  | 'least-loaded'
  | 'tie-rotation'
  | 'tie-random'
  | 'tie-latency'
  | 'round-robin'
  | 'random'
  | 'two-choices'
  | 'peak-ewma';

export interface PickOptions {
  /** 'latency' without a `latencyMs` source behaves as 'rotation'. */
  readonly tieBreak: TieBreak;
  /** A uniform random number in [0, 1); used when tieBreak is 'random'. */
  readonly random: () => number;
  /** A counter the caller increments on every pick; used when tieBreak is 'rotation'. */
  readonly turn: number;
}

export interface Pick<T extends Candidate> {
  readonly chosen: T;
  readonly reason: PickReason;
}
