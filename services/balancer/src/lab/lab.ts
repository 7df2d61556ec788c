/**
 * The algorithm lab as one optional part of the balancer: its load runner, the scenario relay to
 * the backends, and the admin routes that drive them. Only the composition root (server.ts)
 * creates it, and only with `--lab`; the admin app sees nothing of it but a route registration.
 */
import type { Router } from '@koa/router';
import type { Logger } from 'pino';
import type { Peers } from '../peers/peers.js';
import type { PolicySetting } from '../picker/policy.js';
import type { Registry } from '../upstreams/registry.js';
import type { AdminToken } from '../write-guard.js';
import { registerLabRoutes } from './routes.js';
import { createLabRunner } from './runner.js';
import { createScenarioRelay } from './scenario-relay.js';

export interface LabDeps {
  /** `http://host:port` of this balancer's own data port once it listens: the only place runs send to. */
  readonly dataUrl: () => string;
  readonly registry: Registry;
  readonly policy: PolicySetting;
  /** The peer balancers: the two-balancer runs split their traffic with one of them. */
  readonly peers: Peers;
  /** The backends' BACKEND_ADMIN_TOKEN, which the scenario relay presents ('' = scenarios refused). */
  readonly backendToken: string;
  /** The admin write token: starting a run or switching a scenario is an admin write like any other. */
  readonly adminToken: AdminToken;
  /** The runner's own log. */
  readonly logger: Logger;
  /** Where the routes log `admin change` lines and refusals: with every other admin change. */
  readonly adminLogger: Logger;
}

export interface Lab {
  /** Adds the lab's routes to the admin router. */
  readonly routes: (router: Router) => void;
  /** Cancels a run in progress and waits for it. Idempotent. */
  stop(): Promise<void>;
}

export function createLab(deps: LabDeps): Lab {
  const relay = createScenarioRelay(deps.registry, deps.backendToken);
  const runner = createLabRunner({ dataUrl: deps.dataUrl, upstreams: deps.registry, policy: deps.policy, relay, peers: deps.peers, logger: deps.logger });
  return {
    routes: (router) => {
      registerLabRoutes(router, { runner, relay, token: deps.adminToken, logger: deps.adminLogger });
    },
    stop: () => runner.stop(),
  };
}
