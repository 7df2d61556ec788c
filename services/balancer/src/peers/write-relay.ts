/**
 * Admin writes for the whole balancer tier: a drain, an undrain, a weight, a max in-flight or a
 * policy accepted by one balancer is relayed to every live peer, so that active-active balancers
 * behind one nginx (which sends an admin client to one of them) do not route to a drained upstream
 * or pick by another policy than the operator set.
 *
 * A relayed write is the same method, path and JSON body with the caller's own Authorization
 * header (the balancers share their admin token, as Compose's secret gives them), marked with
 * RELAYED_HEADER: the peer applies it and relays no further, so a write crosses each peer once.
 * Only live peers are written to (a dropped one is not part of the tier now); a balancer that joins
 * or restarts later starts from its flags and environment, like a restarted nginx or HAProxy
 * process forgets its runtime API changes.
 *
 * Each peer's answer is given back: the caller (write-api.ts) turns a peer that failed into an
 * answer that says where the write holds and where it does not, never a silent partial change.
 */
import type { Logger } from 'pino';
import { Pool } from '../undici-pool.js';
import type { PeerView } from './peer-table.js';

/** Marks a write relayed by a peer (its value: the relaying balancer's instance id); such a write is applied, not relayed again. */
export const RELAYED_HEADER = 'x-lb-relayed-by';

/** How long one peer may take to answer a relayed write: an admin write is a few dozen bytes and a map update. */
export const RELAY_TIMEOUT_MS = 2000;

/** What one peer made of a relayed write. */
export interface RelayOutcome {
  /** The peer's report address (`host:port`), as /api/upstreams lists it. */
  readonly peer: string;
  /** Its answer's status; 0 when none came (unreachable, timed out, no admin port reported). */
  readonly status: number;
  /** Why it did not apply the write: the `error` code of its answer, `HTTP_<status>` for an answer not ours, or why none came (`no_admin_port`, the socket's or undici's code); absent on success. */
  readonly reason?: string;
  readonly message?: string;
}

/** One admin write as received. */
export interface AdminWrite {
  readonly method: string;
  /** Path and query, as received (an upstream id stays percent-encoded). */
  readonly url: string;
  /** The parsed body, sent on as JSON. */
  readonly body: unknown;
  readonly authorization: string;
}

export interface WriteRelay {
  /** Sends `write` to every live peer at once; resolves when each answered or timed out. */
  relay(write: AdminWrite): Promise<RelayOutcome[]>;
}

export interface WriteRelayDeps {
  /** The peers now (their state and admin URL). */
  readonly peers: () => readonly PeerView[];
  /** This balancer's instance id: the relayed header's value, in the peers' logs. */
  readonly instanceId: string;
  readonly logger: Logger;
  readonly timeoutMs?: number;
}

const isOk = (status: number): boolean => status >= 200 && status < 300;

export function createWriteRelay(deps: WriteRelayDeps): WriteRelay {
  const timeoutMs = deps.timeoutMs ?? RELAY_TIMEOUT_MS;

  const relayTo = async (peer: PeerView, write: AdminWrite): Promise<RelayOutcome> => {
    if (peer.adminUrl === null) return { peer: peer.address, status: 0, reason: 'no_admin_port', message: 'the peer\'s reports name no admin port (an older balancer)' };
    // A pool of its own per relayed write (writes are rare), from undici-pool.ts: undici's index
    // would load fetch and web streams into every balancer for this one call.
    const pool = new Pool(peer.adminUrl, { connections: 1, connectTimeout: timeoutMs });
    try {
      const res = await pool.request({
        path: write.url,
        method: write.method,
        headers: { 'content-type': 'application/json', authorization: write.authorization, [RELAYED_HEADER]: deps.instanceId },
        body: JSON.stringify(write.body),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.body.text();
      if (isOk(res.statusCode)) return { peer: peer.address, status: res.statusCode };
      let answer: { error?: unknown; message?: unknown } = {};
      try {
        answer = JSON.parse(text) as typeof answer;
      } catch {
        // Not our JSON (something else answers on that port): the status says enough.
      }
      return {
        peer: peer.address,
        status: res.statusCode,
        reason: typeof answer.error === 'string' ? answer.error : `HTTP_${res.statusCode}`,
        ...(typeof answer.message === 'string' ? { message: answer.message } : {}),
      };
    } catch (err) {
      const code = (err as { code?: unknown; name?: unknown }).code ?? (err as { name?: unknown }).name;
      return { peer: peer.address, status: 0, reason: typeof code === 'string' ? code : 'unreachable', message: (err as Error).message };
    } finally {
      void pool.destroy();
    }
  };

  return {
    async relay(write) {
      const live = deps.peers().filter((p) => p.state === 'live');
      const outcomes = await Promise.all(live.map((p) => relayTo(p, write)));
      const failed = outcomes.filter((o) => !isOk(o.status));
      if (failed.length > 0) deps.logger.warn({ write: `${write.method} ${write.url}`, failed }, 'an admin write was not applied on every peer');
      else if (outcomes.length > 0) deps.logger.info({ write: `${write.method} ${write.url}`, peers: outcomes.length }, 'admin write relayed to every live peer');
      return outcomes;
    },
  };
}
