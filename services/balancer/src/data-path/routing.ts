/**
 * What plain requests and upgrades share on their way to an upstream: the request id, the upstream
 * request headers, the candidates, the choice (the policy in force, with its tie-break and latency
 * estimates), acquire / release and the decision record. The proxy adds attempts and retries on
 * top, the upgrade handler only its tunnel.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Config } from '../config.js';
import type { DecisionLog } from '../decision-log.js';
import { LbError } from '../errors.js';
import { createTrustCheck, upstreamRequestHeaders } from '../forward-headers.js';
import { createLatencyTracker, RECENT_DECAY_MS } from '../picker/latency-tracker.js';
import { pickWith } from '../picker/policy.js';
import type { PolicyOptions, PolicySetting } from '../picker/policy.js';
import type { Pick as Choice } from '../picker/types.js';
import { candidatesOf } from '../upstreams/candidates.js';
import type { UpstreamTable } from '../upstreams/registry.js';
import type { Upstream } from '../upstreams/upstream.js';
import type { WaitQueue } from './wait-queue.js';

export interface RoutingDeps {
  /** The part of the config routing reads. */
  readonly config: Pick<Config, 'tieBreak' | 'trustedProxies'>;
  readonly registry: UpstreamTable;
  readonly decisions: DecisionLog;
  /** Woken on every release: the freed place may go to a request waiting in line. */
  readonly queue: Pick<WaitQueue, 'length' | 'wakeOne'>;
  readonly random: () => number;
  /** The selection policy in force on this thread (switchable at runtime). */
  readonly policy: PolicySetting;
}

/** The shared steps of the data path, one instance per data plane. */
export interface Routing {
  /** The client's X-Request-Id when it sent a non-empty one, else a fresh UUID. */
  requestIdOf(req: IncomingMessage): string;
  /** The upstream request headers (hop-by-hop stripped, X-Forwarded-*, X-Request-Id). */
  headersFor(req: IncomingMessage, requestId: string): string[];
  /** Upstreams that may take one more request now, less those in `tried` (see candidatesOf). */
  candidates(tried?: ReadonlySet<Upstream>): readonly Upstream[];
  /** The policy in force picks among `candidates`; undefined when there is none. */
  choose(candidates: readonly Upstream[]): Choice<Upstream> | undefined;
  /**
   * Takes a place on the chosen upstream and records the decision; false when another thread took
   * its last place since the pick. Exactly one release() must follow a true.
   */
  acquire(pick: Choice<Upstream>): boolean;
  /**
   * The one release of an acquire; `sentAt` (performance.now() at dispatch) feeds the latency
   * estimates when the time measured is a response time (not a tunnel's life).
   */
  release(upstream: Upstream, sentAt?: number): void;
  /** LB_NO_UPSTREAM for an empty pick: none available, or every one at its cap. */
  noUpstream(): LbError;
}

export function createRouting(deps: RoutingDeps): Routing {
  const { config, registry, decisions, queue, random, policy } = deps;
  // Peak-EWMA's latency estimates: fed by every attempt whatever the policy, so switching to it
  // starts warm; per thread (see picker/peak-ewma.ts).
  const latency = createLatencyTracker();
  // Least-connections' latency tie-break: the same estimate with a short memory.
  const recent = createLatencyTracker(RECENT_DECAY_MS);
  // What a pick reads, one object for every pick (picks are synchronous, one at a time): `turn`
  // and `now` (the estimates' clock, read once per pick) are set before each.
  let now = 0;
  const options: { -readonly [K in keyof PolicyOptions<Upstream>]: PolicyOptions<Upstream>[K] } = {
    tieBreak: config.tieBreak,
    random,
    turn: 0,
    latencyMs: (u) => latency.estimate(u, now),
    recentLatencyMs: (u) => recent.estimate(u, now),
  };
  const trusted = createTrustCheck(config.trustedProxies);

  return {
    requestIdOf(req) {
      const incomingId = req.headers['x-request-id'];
      return typeof incomingId === 'string' && incomingId !== '' ? incomingId : randomUUID();
    },
    headersFor(req, requestId) {
      return upstreamRequestHeaders(req.rawHeaders, {
        remoteAddress: req.socket.remoteAddress,
        proto: 'http',
        requestId,
        trusted: trusted(req.socket.remoteAddress),
      });
    },
    candidates(tried) {
      return candidatesOf(registry.available(), tried);
    },
    choose(candidates) {
      options.turn = registry.counters.nextTurn();
      now = performance.now();
      return pickWith(policy.current, candidates, options);
    },
    acquire(pick) {
      if (!registry.acquire(pick.chosen)) return false;
      decisions.record(pick.chosen.id, pick.reason);
      return true;
    },
    release(upstream, sentAt) {
      if (sentAt !== undefined) {
        const now = performance.now();
        latency.observe(upstream, now - sentAt, now);
        recent.observe(upstream, now - sentAt, now);
      }
      registry.release(upstream);
      if (queue.length > 0) queue.wakeOne();
    },
    noUpstream() {
      return new LbError('LB_NO_UPSTREAM', registry.available().length === 0 ? 'no upstream is available' : 'every upstream is at its in-flight cap');
    },
  };
}
