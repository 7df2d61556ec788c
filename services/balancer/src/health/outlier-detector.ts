import type { FailureReason } from '../errors.js';
import type { Registry } from '../upstreams/registry.js';
import type { Upstream } from '../upstreams/upstream.js';

/**
 * Passive health: the data path reports how each attempt went; the registry counts failures in a
 * sliding window and ejects (upstreams/verdicts.ts: Envoy's outlier detection, nginx's
 * max_fails). This detector only brings an ejected upstream back when its ejection ends, when no
 * active checks will (with them, probes decide), and stops reporting once stopped.
 */
export interface OutlierDetector {
  recordFailure(upstream: Upstream, reason: FailureReason | 'status'): void;
  recordSuccess(upstream: Upstream): void;
  stop(): void;
}

/** Where the data path reports how each attempt went: the detector, or a thread that forwards to it. */
export type OutcomeSink = Pick<OutlierDetector, 'recordFailure' | 'recordSuccess'>;

/** Creates the detector; its timers end with stop(). */
export function createOutlierDetector(registry: Registry): OutlierDetector {
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;

  return {
    recordFailure(u, reason) {
      if (stopped) return;
      const ejectedForMs = registry.reportFailure(u, reason);
      if (ejectedForMs === undefined) return;
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!stopped) registry.ejectionOver(u);
      }, ejectedForMs);
      timers.add(timer);
    },
    recordSuccess(u) {
      if (!stopped) registry.reportSuccess(u);
    },
    stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}
