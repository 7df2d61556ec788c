import type { FailureReason } from '../errors.js';
import type { UpstreamFields, UpstreamState } from './upstream.js';

/** Longest ejection, however often an upstream keeps failing. */
const MAX_EJECTION_MS = 300_000;

/** How probe and passive results turn into state (rise/fall, outlier ejection), from the config. */
export interface HealthRules {
  /** Passing probes in a row that bring a down upstream back. */
  readonly rise: number;
  /** Failing probes in a row that take an up upstream down. */
  readonly fall: number;
  /** Whether active probes run: they then alone decide when an ejected upstream is back. */
  readonly activeChecks: boolean;
  /** Passive failures within the window that eject an upstream. */
  readonly passiveFailures: number;
  readonly passiveWindowMs: number;
  /** The first ejection; it doubles with every ejection in a row. */
  readonly passiveDownMs: number;
}

/** A state change to make, and why. */
export interface Verdict {
  readonly state: UpstreamState;
  readonly why: string;
  /** Set when an outlier ejection ends on a timer (no active checks): its length. */
  readonly ejectedForMs?: number;
}

/**
 * One active probe's result, with the reason of a failure in the words of the log line.
 * `timedOut`: no answer within the probe timeout (connect, headers or body), as opposed to an
 * answer with a failing status or a refused or closed connection.
 */
export type ProbeResult = { readonly ok: true } | { readonly ok: false; readonly why: string; readonly timedOut: boolean };

/**
 * Counts a probe result (rise/fall): one pass proves an unproven upstream; `rise` passes in a row
 * bring a down one back once its outlier ejection is over; `fall` failures take an up one down.
 * Every probe also says whether the upstream still answers at all (`unresponsive`), whatever its state.
 */
export function afterProbe(f: UpstreamFields, result: ProbeResult, rules: HealthRules, now: number): Verdict | undefined {
  f.unresponsive = !result.ok && result.timedOut;
  if (result.ok) {
    f.probeFailures = 0;
    f.probeSuccesses++;
    if (f.state === 'unproven') return { state: 'up', why: 'first health probe passed' };
    if (f.state === 'down' && f.probeSuccesses >= rules.rise && now >= f.ejectedUntil) return { state: 'up', why: `${rules.rise} health probes passed` };
    return undefined;
  }
  f.probeSuccesses = 0;
  f.probeFailures++;
  if (f.state === 'up' && f.probeFailures >= rules.fall) return { state: 'down', why: `${rules.fall} health probes failed: ${result.why}` };
  return undefined;
}

/**
 * Counts a passive failure (Envoy's outlier detection, nginx's max_fails) in a sliding window;
 * past the threshold the upstream is ejected for a time that doubles with every ejection in a
 * row. A refused connection takes it out at once; with active checks on, its probes alone decide
 * when it is back, so it is not held out longer than they say.
 */
export function afterPassiveFailure(f: UpstreamFields, reason: FailureReason | 'status', rules: HealthRules, now: number): Verdict | undefined {
  if (f.state !== 'up') return undefined;
  if (reason === 'connect') {
    // Refused and timed-out connects look alike here: the next probe tells which (afterProbe).
    f.unresponsive = false;
    if (rules.activeChecks) return { state: 'down', why: 'connection failed' };
    return eject(f, 'connection failed', rules, now);
  }
  const since = now - rules.passiveWindowMs;
  if (f.failureTimes.length > 0 && (f.failureTimes[0] ?? 0) < since) f.failureTimes = f.failureTimes.filter((t) => t >= since);
  f.failureTimes.push(now);
  const failures = f.failureTimes.length;
  if (failures < rules.passiveFailures) return undefined;
  // Ejected on a timeout: its requests got no answer in time. Any other failure came with an
  // answer or a closed connection from a process that still runs or is gone.
  f.unresponsive = reason === 'timeout';
  return eject(f, `${failures} failures (${reason}) within ${rules.passiveWindowMs} ms`, rules, now);
}

/** A full ejection period of good answers forgives the earlier ejections; true when it did. */
export function afterPassiveSuccess(f: UpstreamFields, rules: HealthRules, now: number): boolean {
  if (f.ejections === 0 || now <= f.ejectedUntil + rules.passiveDownMs) return false;
  f.ejections = 0;
  return true;
}

function eject(f: UpstreamFields, why: string, rules: HealthRules, now: number): Verdict {
  const ms = Math.min(MAX_EJECTION_MS, rules.passiveDownMs * 2 ** f.ejections);
  f.ejections++;
  f.ejectedUntil = now + ms;
  f.failureTimes = [];
  const verdict = { state: 'down', why: `${why} (ejected for ${ms} ms)` } as const;
  // With active checks, probes bring it back once the ejection is over; without, a timer does.
  return rules.activeChecks ? verdict : { ...verdict, ejectedForMs: ms };
}
