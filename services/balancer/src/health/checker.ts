import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Registry } from '../upstreams/registry.js';
import type { Upstream } from '../upstreams/upstream.js';

/**
 * Active health checks: a probe of `path` every interval; `fall` failures in a row take an up
 * upstream down, `rise` successes bring a down one back (one success for a new, unproven one).
 * An upstream ejected by passive outlier detection stays down until its ejection ends.
 */
export interface HealthChecker {
  /**
   * Starts probing. Resolves once the first probe of every upstream known now has ended (passed,
   * failed or timed out, so within the probe timeout): a balancer that listens before that would
   * answer 503 for upstreams it simply has not checked yet.
   */
  start(): Promise<void>;
  /** Probes every unproven upstream now instead of at the next tick (after discovery added some). */
  probeUnproven(): void;
  stop(): void;
}

/** Creates the checker; nothing runs until start(). */
export function createHealthChecker(registry: Registry, config: Config, logger: Logger): HealthChecker {
  const { path, intervalMs, timeoutMs, rise, fall } = config.health;
  const active = intervalMs > 0;
  /** The probe in progress per upstream: a second caller waits for it instead of sending another. */
  const probing = new Map<Upstream, Promise<void>>();
  let ticker: NodeJS.Timeout | undefined;
  let stopped = false;

  const passed = (u: Upstream): void => {
    u.probeFailures = 0;
    u.probeSuccesses++;
    if (u.state === 'unproven') registry.setState(u, 'up', 'first health probe passed');
    else if (u.state === 'down' && u.probeSuccesses >= rise && Date.now() >= u.ejectedUntil) registry.setState(u, 'up', `${rise} health probes passed`);
  };

  const failed = (u: Upstream, why: string): void => {
    u.probeSuccesses = 0;
    u.probeFailures++;
    if (u.state === 'up' && u.probeFailures >= fall) registry.setState(u, 'down', `${fall} health probes failed: ${why}`);
  };

  const probe = (u: Upstream): Promise<void> => {
    if (u.state === 'draining') return Promise.resolve();
    const running = probing.get(u);
    if (running !== undefined) return running;
    const started = probeOnce(u).finally(() => {
      probing.delete(u);
    });
    probing.set(u, started);
    return started;
  };

  const probeOnce = async (u: Upstream): Promise<void> => {
    try {
      const res = await u.pool.request({
        path,
        method: 'GET',
        headers: { 'user-agent': 'lb-health-check' },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.body.dump();
      if (stopped || u.removed) return;
      if (res.statusCode >= 200 && res.statusCode < 400) passed(u);
      else failed(u, `status ${res.statusCode}`);
    } catch (err) {
      if (stopped || u.removed) return;
      failed(u, err instanceof Error ? ((err as { code?: string }).code ?? err.message) : String(err));
    }
  };

  const tick = (): Promise<void> => Promise.all(registry.list().map(probe)).then(() => undefined);

  return {
    start() {
      if (!active || ticker !== undefined || stopped) return Promise.resolve();
      const firstRound = tick();
      ticker = setInterval(() => void tick(), intervalMs);
      return firstRound;
    },
    probeUnproven() {
      if (!active || stopped) return;
      for (const u of registry.list()) if (u.state === 'unproven') void probe(u);
    },
    stop() {
      stopped = true;
      if (ticker !== undefined) clearInterval(ticker);
      ticker = undefined;
      logger.debug('health checker stopped');
    },
  };
}
