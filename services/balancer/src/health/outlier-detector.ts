import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { FailureReason } from '../errors.js';
import type { Registry } from '../upstreams/registry.js';
import type { Upstream } from '../upstreams/upstream.js';

const CONNECT_FAILED = 'connection failed';

/** Longest ejection, however often an upstream keeps failing. */
const MAX_EJECTION_MS = 300_000;

/**
 * Passive health (Envoy's outlier detection, nginx's max_fails): failures seen by the proxy are
 * counted in a sliding window; past the threshold the upstream is ejected for a time that doubles
 * with every ejection in a row. A refused connection takes the upstream out at once (the request
 * is retried elsewhere); with active checks on, its probes alone decide when it is back. After
 * an ejection the upstream comes back on its own, or, with active checks on, once probes pass.
 */
export interface OutlierDetector {
  recordFailure(upstream: Upstream, reason: FailureReason | 'status'): void;
  recordSuccess(upstream: Upstream): void;
  stop(): void;
}

/** Where the data path reports how each attempt went: the detector, or a thread that forwards to it. */
export type OutcomeSink = Pick<OutlierDetector, 'recordFailure' | 'recordSuccess'>;

/** Creates the detector; its timers end with stop(). */
export function createOutlierDetector(registry: Registry, config: Config, logger: Logger): OutlierDetector {
  const activeChecks = config.health.intervalMs > 0;
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;

  const eject = (u: Upstream, why: string): void => {
    if (activeChecks && why === CONNECT_FAILED) {
      // Probes will tell when it listens again; holding it out longer only slows recovery.
      registry.setState(u, 'down', why);
      return;
    }
    const ms = Math.min(MAX_EJECTION_MS, config.passiveDownMs * 2 ** u.ejections);
    u.ejections++;
    u.ejectedUntil = Date.now() + ms;
    u.failureTimes = [];
    registry.setState(u, 'down', `${why} (ejected for ${ms} ms)`);
    if (activeChecks) return; // probes bring it back once the ejection is over
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!stopped && u.state === 'down' && !u.removed) registry.setState(u, 'up', 'passive ejection over');
    }, ms);
    timers.add(timer);
  };

  return {
    recordFailure(u, reason) {
      if (stopped || u.state !== 'up') return;
      if (reason === 'connect') {
        eject(u, CONNECT_FAILED);
        return;
      }
      const now = Date.now();
      const since = now - config.passiveWindowMs;
      let times = u.failureTimes;
      if (times.length > 0 && (times[0] ?? 0) < since) times = u.failureTimes = times.filter((t) => t >= since);
      times.push(now);
      if (times.length >= config.passiveFailures) {
        eject(u, `${times.length} failures (${reason}) within ${config.passiveWindowMs} ms`);
      }
    },
    recordSuccess(u) {
      // A full ejection period of good answers forgives the earlier ejections.
      if (u.ejections > 0 && Date.now() > u.ejectedUntil + config.passiveDownMs) {
        u.ejections = 0;
        logger.debug({ upstream: u.id }, 'ejection count reset');
      }
    },
    stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}
