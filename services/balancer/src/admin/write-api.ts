/**
 * The admin write API: drain, undrain, weight and max in-flight of one upstream at runtime, and
 * the selection policy of the whole balancer.
 *
 * Every write goes through write-guard.ts: the bearer token, the bounded body, the refusal.
 * Changes go through the registry (the one owner of upstream state) and are logged. With peers,
 * a write from a client is relayed to every live peer (peers/write-relay.ts), so the whole tier
 * holds it, and the answer says where it was applied.
 */
import type { Router, RouterContext } from '@koa/router';
import type { Logger } from 'pino';
import { z } from 'zod';
import { statusOf } from '../errors.js';
import { RELAYED_HEADER } from '../peers/write-relay.js';
import type { AdminWrite, RelayOutcome } from '../peers/write-relay.js';
import { POLICIES } from '../picker/policy.js';
import type { PolicySetting } from '../picker/policy.js';
import type { Snapshot, UpstreamView } from '../snapshot.js';
import type { Registry } from '../upstreams/registry.js';
import type { Upstream } from '../upstreams/upstream.js';
import { WriteError, guardedWrite, parseBody } from '../write-guard.js';
import type { AdminToken } from '../write-guard.js';

/** Drain deadline when the body names none (shown as a countdown in the snapshot). */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

/** What the write routes need from the balancer. */
export interface WriteApiDeps {
  readonly registry: Registry;
  readonly token: AdminToken;
  /** The selection policy, switched by `PUT /api/policy`. */
  readonly policy: PolicySetting;
  readonly snapshot: () => Snapshot;
  readonly logger: Logger;
  /** Relays each write from a client to the live peers (peers/write-relay.ts); absent without peers. */
  readonly relay?: (write: AdminWrite) => Promise<RelayOutcome[]>;
}

const drainBody = z.strictObject({ timeoutMs: z.number().int().min(0).max(86_400_000).optional() });
const emptyBody = z.strictObject({});
const weightBody = z.strictObject({ weight: z.number().int().min(1).max(1000) });
const maxInFlightBody = z.strictObject({ maxInFlight: z.number().int().min(0).max(1_000_000) });
const policyBody = z.strictObject({ policy: z.enum(POLICIES) });

/** Adds the write routes to the admin router. */
export function registerWriteRoutes(router: Router, deps: WriteApiDeps): void {
  const { registry, token, logger } = deps;

  const viewOf = (u: Upstream): UpstreamView | undefined => deps.snapshot().upstreams.find((v) => v.id === u.id);

  /**
   * Answers a write applied here. A write from a client (not one a peer relayed) goes on to every
   * live peer first; the answer lists each peer's outcome, and is 502 LB_PEER_WRITE_FAILED, with
   * what was applied here, when any peer did not apply it.
   */
  const answer = async (ctx: RouterContext, body: unknown, applied: object): Promise<void> => {
    if (deps.relay === undefined) {
      ctx.body = applied;
      return;
    }
    const relayedBy = ctx.get(RELAYED_HEADER);
    if (relayedBy !== '') {
      ctx.body = { ...applied, relayedBy };
      return;
    }
    const peers = await deps.relay({ method: ctx.method, url: ctx.url, body, authorization: ctx.get('authorization') });
    const failed = peers.filter((p) => p.status < 200 || p.status >= 300);
    if (failed.length === 0) {
      ctx.body = { ...applied, peers };
      return;
    }
    const code = 'LB_PEER_WRITE_FAILED';
    ctx.status = statusOf[code];
    ctx.body = {
      error: code,
      message:
        `applied on this balancer and on ${peers.length - failed.length} of ${peers.length} live peers; not on ` +
        failed.map((p) => `${p.peer} (${p.reason ?? p.status}${p.message === undefined ? '' : `: ${p.message}`})`).join(', ') +
        '; repeat the write (it is idempotent) or apply it on each balancer\'s admin port',
      applied,
      peers,
    };
  };

  /** Authorises, finds the upstream, parses the body, runs the change, answers with the upstream as the snapshot shows it. */
  const write = <B>(schema: z.ZodType<B>, change: (u: Upstream, body: B) => Record<string, unknown>) =>
    guardedWrite(token, async (ctx) => {
      const id = String(ctx.params.id);
      const upstream = registry.get(id);
      if (upstream === undefined) throw new WriteError('LB_UNKNOWN_UPSTREAM', `no upstream ${id}`);
      const body = await parseBody(ctx, schema);
      const logged = change(upstream, body);
      logger.info({ upstream: upstream.id, ...logged, remote: ctx.ip, relayedBy: ctx.get(RELAYED_HEADER) || undefined }, 'admin change');
      await answer(ctx, body, viewOf(upstream) ?? { id: upstream.id });
    });

  router.get('/api/policy', (ctx) => {
    ctx.set('cache-control', 'no-store');
    ctx.body = { policy: deps.policy.current, policies: POLICIES };
  });
  router.put(
    '/api/policy',
    guardedWrite(token, async (ctx) => {
      const body = await parseBody(ctx, policyBody);
      const from = deps.policy.current;
      deps.policy.set(body.policy);
      logger.info({ action: 'policy', from, to: body.policy, remote: ctx.ip, relayedBy: ctx.get(RELAYED_HEADER) || undefined }, 'admin change');
      await answer(ctx, body, { policy: body.policy, policies: POLICIES });
    }),
  );

  const notRemoved = (u: Upstream, action: string): void => {
    // A removed upstream (gone from discovery) is already draining for good; only discovery brings it back.
    if (u.removed) throw new WriteError('LB_UPSTREAM_REMOVED', `upstream ${u.id} was removed by discovery and cannot be ${action}`);
  };

  router.post(
    '/api/upstreams/:id/drain',
    write(drainBody, (u, { timeoutMs = DEFAULT_DRAIN_TIMEOUT_MS }) => {
      notRemoved(u, 'drained');
      registry.drain(u, timeoutMs);
      return { action: 'drain', timeoutMs, inFlight: u.inFlight };
    }),
  );
  router.post(
    '/api/upstreams/:id/undrain',
    write(emptyBody, (u) => {
      notRemoved(u, 'undrained');
      registry.undrain(u);
      return { action: 'undrain', state: u.state };
    }),
  );
  /** `PUT /api/upstreams/:id/<action>` of one number of an upstream, logged as from → to. */
  const putNumber = <K extends string>(action: string, body: z.ZodType<Record<K, number>>, key: K, current: (u: Upstream) => number, apply: (u: Upstream, value: number) => void): void => {
    router.put(
      `/api/upstreams/:id/${action}`,
      write(body, (u, parsed) => {
        const to = parsed[key];
        const from = current(u);
        apply(u, to);
        return { action, from, to };
      }),
    );
  };
  putNumber('weight', weightBody, 'weight', (u) => u.configuredWeight, (u, weight) => {
    registry.setWeight(u, weight);
  });
  putNumber('max-in-flight', maxInFlightBody, 'maxInFlight', (u) => u.maxInFlight, (u, maxInFlight) => {
    registry.setMaxInFlight(u, maxInFlight);
  });
}
