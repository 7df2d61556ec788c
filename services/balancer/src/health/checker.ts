import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Registry } from '../upstreams/registry.js';
import type { Upstream } from '../upstreams/upstream.js';
import type { ProbeResult } from '../upstreams/verdicts.js';

/**
 * Active health checks: a probe of `path` every interval, reported to the registry, which applies
 * rise/fall (upstreams/verdicts.ts): `fall` failures in a row take an up upstream down, `rise`
 * successes bring a down one back (one success for a new, unproven one). An upstream ejected by
 * passive outlier detection stays down until its ejection ends.
 *
 * A probe passes only when the whole response arrived: status 2xx/3xx and the body read to its
 * end (up to `maxBodyBytes`) within the timeout. A reset, a truncated body or a stall fails it;
 * an upstream that sends headers and then breaks every body is broken for clients too.
 *
 * Each upstream has its own schedule: `intervalMs` while it is up and passing, `downIntervalMs`
 * while it is down or unproven and right after a failed probe (HAProxy's downinter/fastinter),
 * so a restarted upstream is back within about rise × downIntervalMs and a failing one is
 * confirmed quickly.
 */
export interface HealthChecker {
  /**
   * Starts probing. Resolves once the first probe of every upstream known now has ended (passed,
   * failed or timed out, so within the probe timeout): a balancer that listens before that would
   * answer 503 for upstreams it simply has not checked yet. Then tells the registry, which raises
   * no panic-mode alarm before.
   */
  start(): Promise<void>;
  /** Probes every unproven upstream now instead of at its next turn (after discovery added some). */
  probeUnproven(): void;
  stop(): void;
}

/**
 * undici's codes for a probe that got no answer in time (the whole-probe deadline, AbortSignal's
 * TimeoutError, is matched by name): the upstream stopped answering, not that it answered no.
 */
const PROBE_TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Creates the checker; nothing runs until start(). */
export function createHealthChecker(registry: Registry, config: Pick<Config, 'health'>, logger: Logger): HealthChecker {
  const { path, intervalMs, downIntervalMs, timeoutMs, maxBodyBytes } = config.health;
  const active = intervalMs > 0;
  const probing = new Set<Upstream>();
  const timers = new Map<Upstream, NodeJS.Timeout>();
  let sweeper: NodeJS.Timeout | undefined;
  let stopped = false;

  /** One GET of `path`, read to the end of its body; never throws. */
  const check = async (u: Upstream): Promise<ProbeResult> => {
    try {
      // The signal bounds the whole exchange, body included: a body that stalls fails in time.
      const res = await u.pool.request({
        path,
        method: 'GET',
        headers: { 'user-agent': 'lb-health-check' },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
      });
      let bytes = 0;
      // undici's body ends only when the response is complete (Content-Length reached, last chunk
      // seen); a reset or a short body makes it throw here. dump() would swallow exactly that.
      for await (const chunk of res.body) {
        bytes += (chunk as Buffer).length;
        if (bytes > maxBodyBytes) {
          res.body.destroy();
          return { ok: false, why: `body longer than ${maxBodyBytes} bytes`, timedOut: false };
        }
      }
      if (res.statusCode >= 200 && res.statusCode < 400) return { ok: true };
      return { ok: false, why: `status ${res.statusCode}`, timedOut: false };
    } catch (err) {
      // AbortSignal.timeout's error carries DOMException's numeric code (23): log its message instead.
      const code: unknown = (err as { code?: unknown } | null)?.code;
      const why = typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || PROBE_TIMEOUT_CODES.has(why));
      return { ok: false, why, timedOut };
    }
  };

  const probe = async (u: Upstream): Promise<void> => {
    if (probing.has(u) || u.state === 'draining') return;
    probing.add(u);
    try {
      const result = await check(u);
      if (stopped || u.removed) return;
      // The registry applies rise/fall: it owns the counts and the state.
      registry.reportProbe(u, result);
    } finally {
      probing.delete(u);
    }
  };

  const nextDelay = (u: Upstream): number => (u.state === 'up' && u.probeFailures === 0 ? intervalMs : downIntervalMs);

  const schedule = (u: Upstream, delayMs: number): void => {
    if (stopped || u.removed) return;
    clearTimeout(timers.get(u));
    const timer = setTimeout(() => {
      void probe(u).then(() => {
        if (timers.get(u) === timer) timers.delete(u);
        schedule(u, nextDelay(u));
      });
    }, delayMs);
    timers.set(u, timer);
  };

  /** Starts the schedule of upstreams that have none yet (new ones) and forgets removed ones. */
  const sweep = (): void => {
    for (const u of registry.list()) if (!timers.has(u) && !probing.has(u)) schedule(u, 0);
    for (const [u, timer] of timers) {
      if (!u.removed) continue;
      clearTimeout(timer);
      timers.delete(u);
    }
  };

  return {
    start() {
      if (!active || sweeper !== undefined || stopped) return Promise.resolve();
      const firstRound = Promise.all(
        registry.list().map(async (u) => {
          await probe(u);
          schedule(u, nextDelay(u));
        }),
      ).then(() => {
        if (!stopped) registry.firstProbeRoundOver();
      });
      // Picks up upstreams added later (discovery); the ones above are probing, so it leaves them be.
      sweeper = setInterval(sweep, Math.min(intervalMs, downIntervalMs));
      return firstRound;
    },
    probeUnproven() {
      if (!active || stopped || sweeper === undefined) return;
      for (const u of registry.list()) if (u.state === 'unproven' && !probing.has(u)) schedule(u, 0);
    },
    stop() {
      stopped = true;
      if (sweeper !== undefined) clearInterval(sweeper);
      sweeper = undefined;
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
      logger.debug('health checker stopped');
    },
  };
}
