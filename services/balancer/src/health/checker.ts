import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Registry } from '../upstreams/registry.js';
import type { Upstream } from '../upstreams/upstream.js';

/** Decides whether upstreams may serve: active probes plus passive ejection on refused connects. */
export interface HealthChecker {
  start(): void;
  /** Probes every unproven upstream now instead of at the next tick (after discovery added some). */
  probeUnproven(): void;
  /** The proxy could not connect: take the upstream out of rotation at once. */
  reportConnectFailure(upstream: Upstream): void;
  stop(): void;
}

/** Creates the checker; nothing runs until start(). */
export function createHealthChecker(registry: Registry, config: Config, logger: Logger): HealthChecker {
  const { path, intervalMs, timeoutMs, rise, fall } = config.health;
  const active = intervalMs > 0;
  const probing = new Set<Upstream>();
  const passiveTimers = new Set<NodeJS.Timeout>();
  let ticker: NodeJS.Timeout | undefined;
  let stopped = false;

  const passed = (u: Upstream): void => {
    u.probeFailures = 0;
    u.probeSuccesses++;
    if (u.state === 'unproven') registry.setState(u, 'up', 'first health probe passed');
    else if (u.state === 'down' && u.probeSuccesses >= rise) registry.setState(u, 'up', `${rise} health probes passed`);
  };

  const failed = (u: Upstream, why: string): void => {
    u.probeSuccesses = 0;
    u.probeFailures++;
    if (u.state === 'up' && u.probeFailures >= fall) registry.setState(u, 'down', `${fall} health probes failed: ${why}`);
  };

  const probe = async (u: Upstream): Promise<void> => {
    if (probing.has(u) || u.state === 'draining') return;
    probing.add(u);
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
    } finally {
      probing.delete(u);
    }
  };

  const tick = (): void => {
    for (const u of registry.list()) void probe(u);
  };

  return {
    start() {
      if (!active || ticker !== undefined || stopped) return;
      tick();
      ticker = setInterval(tick, intervalMs);
    },
    probeUnproven() {
      if (!active || stopped) return;
      for (const u of registry.list()) if (u.state === 'unproven') void probe(u);
    },
    reportConnectFailure(u) {
      if (u.state !== 'up') return;
      registry.setState(u, 'down', 'connection failed (passive check)');
      if (active) return; // active probes bring it back after `rise` successes
      const timer = setTimeout(() => {
        passiveTimers.delete(timer);
        if (!stopped && u.state === 'down' && !u.removed) registry.setState(u, 'up', `passive ejection of ${config.passiveDownMs} ms over`);
      }, config.passiveDownMs);
      passiveTimers.add(timer);
    },
    stop() {
      stopped = true;
      if (ticker !== undefined) clearInterval(ticker);
      ticker = undefined;
      for (const t of passiveTimers) clearTimeout(t);
      passiveTimers.clear();
      logger.debug('health checker stopped');
    },
  };
}
