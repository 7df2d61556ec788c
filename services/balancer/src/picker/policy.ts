/**
 * The selection policies the balancer can run, one name each, and the one dispatch from a name to
 * its pure picker. Least-connections is the default; the others are there to compare it with
 * (the algorithm lab) or for operators who want them.
 */
import { pickLeastConnections } from './least-connections.js';
import type { Candidate, Pick, PickOptions } from './least-connections.js';
import { pickPeakEwma } from './peak-ewma.js';
import { pickRandom } from './random.js';
import { pickRoundRobin } from './round-robin.js';
import { pickTwoChoices } from './two-choices.js';

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

/** Picks with the named policy; undefined when there is no candidate. */
export function pickWith<T extends Candidate>(policy: PolicyName, candidates: readonly T[], options: PolicyOptions<T>): Pick<T> | undefined {
  switch (policy) {
    case 'least-connections':
      return pickLeastConnections(candidates, { tieBreak: options.tieBreak, random: options.random, turn: options.turn, latencyMs: options.recentLatencyMs });
    case 'round-robin':
      return pickRoundRobin(candidates, options.turn);
    case 'random':
      return pickRandom(candidates, options.random);
    case 'p2c':
      return pickTwoChoices(candidates, options.random);
    case 'peak-ewma':
      return pickPeakEwma(candidates, options.random, options.latencyMs);
  }
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
