/**
 * Carries a fault scenario from the balancer's admin side to one backend's `/admin/scenario`.
 * Browsers cannot reach the backends (only nginx → balancer), so the page and the lab go through
 * here: the balancer already knows every replica's address, and it holds the backends' token
 * (`--backend-admin-token`), which never reaches the browser.
 */
import type { Registry } from '../upstreams/registry.js';

/**
 * A scenario body, passed on as it is: the backend (services/backend/src/scenario.ts) validates it
 * and its 400 comes back unchanged, so the fields are defined in one place only.
 */
export type Fault = Readonly<Record<string, number | boolean>>;

/** What a backend answered: its status and JSON body, passed on unchanged. */
export interface RelayReply {
  readonly status: number;
  readonly body: unknown;
}

export type RelayFailure = 'unknown-upstream' | 'disabled' | 'unreachable';

/** A relay that could not reach the backend at all (a plain Error with a reason). */
export type RelayError = Error & { readonly reason: RelayFailure };

const relayError = (reason: RelayFailure, message: string): RelayError => Object.assign(new Error(message), { name: 'RelayError', reason });

/** True for the errors the relay throws. */
export function isRelayError(err: unknown): err is RelayError {
  return err instanceof Error && err.name === 'RelayError' && 'reason' in err;
}

export interface ScenarioRelay {
  apply(upstream: string, fault: Fault): Promise<RelayReply>;
  clear(upstream: string): Promise<RelayReply>;
  exit(upstream: string): Promise<RelayReply>;
  /** The backend's X-Backend-Id (from its /healthz), how the lab tells which backend answered a request; null when it sends none or is unreachable. */
  identify(upstream: string): Promise<string | null>;
}

/** Relays through each upstream's own pool (no extra sockets to close; it goes with the upstream). */
export function createScenarioRelay(registry: Registry, token: string): ScenarioRelay {
  const send = async (id: string, method: 'PUT' | 'DELETE' | 'POST', path: string, body?: Fault): Promise<RelayReply> => {
    if (token === '') throw relayError('disabled', 'scenarios are disabled: set LB_BACKEND_ADMIN_TOKEN (the backends\' BACKEND_ADMIN_TOKEN)');
    const upstream = registry.get(id);
    if (upstream === undefined) throw relayError('unknown-upstream', `no upstream ${id}`);
    try {
      const res = await upstream.pool.request({
        path,
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: body === undefined ? null : JSON.stringify(body),
        headersTimeout: 5000,
        bodyTimeout: 5000,
      });
      const text = await res.body.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // Not JSON (an old backend without the routes answers HTML or text): pass the text on.
      }
      return { status: res.statusCode, body: parsed };
    } catch (err) {
      throw relayError('unreachable', `backend ${id} did not answer: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  return {
    apply: (id, fault) => send(id, 'PUT', '/admin/scenario', fault),
    clear: (id) => send(id, 'DELETE', '/admin/scenario'),
    exit: (id) => send(id, 'POST', '/admin/exit'),
    async identify(id) {
      const upstream = registry.get(id);
      if (upstream === undefined) return null;
      try {
        // No token: /healthz is open, and every backend response carries its id.
        const res = await upstream.pool.request({ path: '/healthz', method: 'GET', headersTimeout: 5000, bodyTimeout: 5000 });
        await res.body.dump();
        const header = res.headers['x-backend-id'];
        return typeof header === 'string' && header !== '' ? header : null;
      } catch {
        return null;
      }
    },
  };
}
