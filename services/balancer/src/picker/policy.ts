/**
 * The selection policies the balancer can run, one name each, and the one dispatch from a name to
 * its pure picker. Least-connections is the default; the others are there to compare it with
 * (the algorithm lab) or for operators who want them.
 */
import { pickLeastConnections } from './least-connections.js';
import { pickTwoChoices } from './p2c.js';
import { pickPeakEwma } from './peak-ewma.js';
import { pickRandom } from './random.js';
import { pickRoundRobin } from './round-robin.js';
import type { Candidate, Pick, PickOptions } from './types.js';

/** Every policy, in the order the page and the lab show them. */
export const POLICIES = ['least-connections', 'round-robin', 'random', 'p2c', 'peak-ewma'] as const;

export type PolicyName = (typeof POLICIES)[number];

/** True for a known policy name. */
export function isPolicy(name: string): name is PolicyName {
  return (POLICIES as readonly string[]).includes(name);
}

/** What every policy may use; each reads only its part. */
export interface PolicyOptions<T extends Candidate> extends PickOptions {
  /** Current latency estimate of a candidate in ms (peak-EWMA only; 0 = never measured). */
  readonly latencyMs: (candidate: T) => number;
  /**
   * The same with a short memory (least-connections' 'latency' tie-break): a replica that stalls
   * over and over keeps it high, one slow answer (a big image, a cold connection) is forgotten
   * within seconds.
   */
  readonly recentLatencyMs: (candidate: T) => number;
}

/** One selection policy: a pure picker reading its part of the options; undefined when there is no candidate. */
export interface Policy {
  pick<T extends Candidate>(candidates: readonly T[], options: PolicyOptions<T>): Pick<T> | undefined;
}

/** Every policy by name: adding one here (and to POLICIES) is all the dispatch needs. */
export const POLICY_TABLE: Readonly<Record<PolicyName, Policy>> = {
  'least-connections': {
    pick: (candidates, options) =>
      pickLeastConnections(candidates, { tieBreak: options.tieBreak, random: options.random, turn: options.turn, latencyMs: options.recentLatencyMs }),
  },
  'round-robin': { pick: (candidates, options) => pickRoundRobin(candidates, options.turn) },
  random: { pick: (candidates, options) => pickRandom(candidates, options.random) },
  p2c: { pick: (candidates, options) => pickTwoChoices(candidates, options.random) },
  'peak-ewma': { pick: (candidates, options) => pickPeakEwma(candidates, options.random, options.latencyMs) },
};

/** Picks with the named policy; undefined when there is no candidate. */
export function pickWith<T extends Candidate>(policy: PolicyName, candidates: readonly T[], options: PolicyOptions<T>): Pick<T> | undefined {
  return POLICY_TABLE[policy].pick(candidates, options);
}

/**
 * The policy in force on one thread, switchable at runtime (admin API on the main thread, a
 * message on each worker). A holder rather than a module variable: two balancers in one process
 * each have their own.
 */
export interface PolicySetting {
  readonly current: PolicyName;
  set(policy: PolicyName): void;
}

/** Creates a setting that starts at `initial`; `onChange` hears every actual change. */
export function createPolicySetting(initial: PolicyName, onChange: (policy: PolicyName) => void = () => undefined): PolicySetting {
  let current = initial;
  return {
    get current() {
      return current;
    },
    set(policy) {
      if (policy === current) return;
      current = policy;
      onChange(policy);
    },
  };
}
