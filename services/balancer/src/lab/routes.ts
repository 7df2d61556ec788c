/**
 * The lab's admin routes: start a run or a comparison, follow it (SSE), download its results, and
 * switch fault scenarios on the backends. Writes go through the same bearer token as every admin
 * write (guardedWrite); reads are open like the rest of the admin GETs. With the lab off the same
 * paths answer 404 LB_LAB_DISABLED, so a client (the page) learns that it is off, not that it broke.
 *
 * Each registration takes a bare router: the admin app is given it by the composition root and
 * knows nothing of the lab.
 */
import type { ServerResponse } from 'node:http';
import type { Router, RouterContext } from '@koa/router';
import type { Logger } from 'pino';
import { z } from 'zod';
import { statusOf } from '../errors.js';
import { POLICIES } from '../picker/policy.js';
import { WriteError, guardedWrite, parseBody } from '../write-guard.js';
import type { AdminToken } from '../write-guard.js';
import { toCsv } from './export.js';
import { BALANCER_MODES, isPeerRefusal } from './balancer-mode.js';
import { LIMITS } from './runner.js';
import type { LabRunner, LabSpec, LabStatus } from './runner.js';
import { isRelayError } from './scenario-relay.js';
import type { RelayReply, ScenarioRelay } from './scenario-relay.js';

// The fields are checked by the backend that applies them (its 400 is passed back); here only the
// shape, so a scenario is defined in one place.
const fault = z.record(z.string(), z.union([z.number(), z.boolean()]));

const specBody = z.strictObject({
  rate: z.number().min(1).max(LIMITS.maxRate),
  durationMs: z.number().int().min(500).max(LIMITS.maxDurationMs),
  mix: z.array(z.number().min(0)).min(1).max(4).refine((m) => m.some((w) => w > 0), 'at least one weight must be > 0').default([1]),
  seed: z.number().int().min(0).max(2 ** 32 - 1).default(1),
  concurrency: z.number().int().min(1).max(LIMITS.maxConcurrency).default(LIMITS.defaultConcurrency),
  delayScale: z.number().min(0).max(1).default(1),
  policies: z.array(z.enum(POLICIES)).min(1).optional(),
  scenario: z.strictObject({ upstream: z.string().min(1), fault }).optional(),
  balancers: z.enum(BALANCER_MODES).default('one'),
});

export interface LabRouteDeps {
  readonly runner: LabRunner;
  readonly relay: ScenarioRelay;
  readonly token: AdminToken;
  readonly logger: Logger;
}

/** Every path of the lab on the admin port; with the lab off, each one refuses. */
const PATHS = {
  status: '/api/lab',
  events: '/api/lab/events',
  resultsJson: '/api/lab/results.json',
  resultsCsv: '/api/lab/results.csv',
  run: '/api/lab/run',
  compare: '/api/lab/compare',
  cancel: '/api/lab/cancel',
  scenario: '/api/upstreams/:id/scenario',
  exit: '/api/upstreams/:id/exit',
} as const;

/** The refusal of every lab path while the lab is off: it names the knob that turns it on. */
export const LAB_OFF_MESSAGE = 'the algorithm lab is off: start the balancer with --lab or LB_LAB=1 to enable its runs and fault scenarios';

/** Answers every lab path, any method, with 404 LB_LAB_DISABLED (before any token check: there is nothing to authorise). */
export function registerLabOffRoutes(router: Router): void {
  for (const path of Object.values(PATHS)) {
    router.all(path, (ctx) => {
      ctx.set('cache-control', 'no-store');
      ctx.status = statusOf.LB_LAB_DISABLED;
      ctx.body = { error: 'LB_LAB_DISABLED', message: LAB_OFF_MESSAGE };
    });
  }
}

/** SSE frame of one status. */
const frame = (s: LabStatus): string => `event: lab\ndata: ${JSON.stringify(s)}\n\n`;

/** Adds `/api/lab*` and the per-upstream scenario routes to the admin router (the lab on). */
export function registerLabRoutes(router: Router, deps: LabRouteDeps): void {
  const { runner, relay, token, logger } = deps;

  router.get(PATHS.status, (ctx) => {
    ctx.set('cache-control', 'no-store');
    ctx.body = { ...runner.status(), limits: LIMITS, policies: POLICIES, balancerModes: BALANCER_MODES };
  });
  router.get(PATHS.events, (ctx) => {
    ctx.respond = false;
    const res: ServerResponse = ctx.res;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(`retry: 1000\n${frame(runner.status())}`);
    const off = runner.subscribe((s) => res.write(frame(s)));
    res.once('close', off);
  });
  router.get(PATHS.resultsJson, (ctx) => {
    ctx.set('content-disposition', 'attachment; filename="lab-results.json"');
    ctx.set('cache-control', 'no-store');
    const { spec, results, kind, cluster, check, startedAt, finishedAt } = runner.status();
    ctx.body = { kind, spec, cluster, check, startedAt, finishedAt, results };
  });
  router.get(PATHS.resultsCsv, (ctx) => {
    ctx.set('content-disposition', 'attachment; filename="lab-results.csv"');
    ctx.set('cache-control', 'no-store');
    ctx.type = 'text/csv';
    ctx.body = toCsv(runner.status());
  });

  const start = (kind: 'run' | 'compare') =>
    guardedWrite(token, async (ctx) => {
      const spec: LabSpec = await parseBody(ctx, specBody);
      const busy = (): WriteError => new WriteError('LB_LAB_BUSY', 'a lab run is in progress: wait for it or cancel it');
      // Checked before the probe too: probing during a run would add to its traffic.
      if (runner.status().state === 'running') throw busy();
      const peer = await runner.peerFor(kind, spec);
      if (peer !== null && isPeerRefusal(peer)) {
        logger.info({ action: `lab-${kind}`, refused: peer.code, balancers: spec.balancers, remote: ctx.ip }, 'admin change refused');
        throw new WriteError(peer.code, peer.message);
      }
      const check = await runner.check(spec);
      if (check.refusal !== null) {
        logger.info({ action: `lab-${kind}`, refused: 'LB_LAB_OVER_CAPACITY', expectedOpen: check.expectedOpen, cap: check.cap, remote: ctx.ip }, 'admin change refused');
        throw new WriteError('LB_LAB_OVER_CAPACITY', check.refusal);
      }
      if (!runner.start(kind, spec, check, peer)) throw busy();
      logger.info({ action: `lab-${kind}`, remote: ctx.ip }, 'admin change');
      ctx.status = 202;
      ctx.body = runner.status();
    });
  router.post(PATHS.run, start('run'));
  router.post(PATHS.compare, start('compare'));
  router.post(
    PATHS.cancel,
    guardedWrite(token, async (ctx) => {
      await parseBody(ctx, z.strictObject({}));
      runner.cancel();
      ctx.body = runner.status();
    }),
  );

  /** Relays to the backend and answers with what it said (its status and body). */
  const relayed = (action: (ctx: RouterContext, id: string) => Promise<RelayReply>) =>
    guardedWrite(token, async (ctx) => {
      const id = String(ctx.params.id);
      try {
        const reply = await action(ctx, id);
        logger.info({ action: 'scenario', upstream: id, method: ctx.method, path: ctx.path, status: reply.status, remote: ctx.ip }, 'admin change');
        ctx.status = reply.status;
        ctx.body = reply.body;
      } catch (err) {
        if (!isRelayError(err)) throw err;
        const code = err.reason === 'disabled' ? 'LB_SCENARIOS_DISABLED' : err.reason === 'unknown-upstream' ? 'LB_UNKNOWN_UPSTREAM' : 'LB_BACKEND_UNREACHABLE';
        throw new WriteError(code, err.message);
      }
    });
  router.put(PATHS.scenario, relayed(async (ctx, id) => relay.apply(id, await parseBody(ctx, fault))));
  router.delete(PATHS.scenario, relayed((_ctx, id) => relay.clear(id)));
  router.post(PATHS.exit, relayed((_ctx, id) => relay.exit(id)));
}
