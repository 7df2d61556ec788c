/**
 * The peers on the admin port: `GET /api/peers` (whether this balancer shares its in-flight counts,
 * and every peer with its report's age) and `PUT /api/peers {"sharing": false|true}`, the runtime
 * switch the lab uses to isolate two balancers for a run and a user can flip to see the
 * difference. The write is guarded like every admin write (write-guard.ts).
 */
import type { Router } from '@koa/router';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Peers } from '../peers/peers.js';
import { WriteError, guardedWrite, parseBody } from '../write-guard.js';
import type { AdminToken } from '../write-guard.js';

export interface PeersApiDeps {
  readonly peers: Peers;
  readonly token: AdminToken;
  readonly logger: Logger;
}

const sharingBody = z.strictObject({ sharing: z.boolean() });

/** What `GET /api/peers` answers (and `PUT` after the change). */
const viewOf = (peers: Peers) => ({
  // Without peers there is nothing to share with: false, whatever the setting says.
  sharing: peers.enabled && peers.sharing,
  enabled: peers.enabled,
  instanceId: peers.instanceId,
  port: peers.port ?? null,
  peers: peers.view(),
});

/** Adds `/api/peers` to the admin router. */
export function registerPeerRoutes(router: Router, deps: PeersApiDeps): void {
  const { peers, token, logger } = deps;
  router.get('/api/peers', (ctx) => {
    ctx.set('cache-control', 'no-store');
    ctx.body = viewOf(peers);
  });
  router.put(
    '/api/peers',
    guardedWrite(token, async (ctx) => {
      const { sharing } = await parseBody(ctx, sharingBody);
      if (!peers.enabled) throw new WriteError('LB_NO_PEERS', 'this balancer has no peers (--peer / --peers-dns): there are no counts to share or stop sharing');
      const from = peers.setSharing(sharing);
      logger.info({ action: 'peer-sharing', from, to: sharing, remote: ctx.ip }, 'admin change');
      ctx.body = viewOf(peers);
    }),
  );
}
