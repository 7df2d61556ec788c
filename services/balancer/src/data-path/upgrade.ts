/**
 * `Upgrade` pass-through (WebSocket and any other protocol switch): the balancer picks an upstream
 * as the proxy does (the same routing: candidates, the policy in force, acquire / release), replays the request head to it over a plain TCP connection and from then on
 * copies bytes both ways without looking at them. The upstream's answer (101 or a refusal) is part
 * of those bytes.
 *
 * A tunnel counts as one in-flight request on its upstream for its whole life (least-connections
 * must see it: it holds a connection on the upstream) and is reported apart as `longLived`.
 */
import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { ClientGuard } from './client-guard.js';
import { answerAndClose, rawErrorResponse } from './client-guard.js';
import type { Config } from '../config.js';
import type { OutlierDetector } from '../health/outlier-detector.js';
import { LbError, statusOf } from '../errors.js';
import { upstreamRequestHeaders } from '../forward-headers.js';
import type { ClientInfo } from '../forward-headers.js';
import type { Metrics } from '../metrics.js';
import { NO_UPSTREAM } from '../metrics.js';
import type { UpstreamTable } from '../upstreams/registry.js';
import type { Upstream } from '../upstreams/upstream.js';
import type { Routing } from './routing.js';

/** TCP keep-alive probes on both sockets of a tunnel, so a vanished peer does not hold it forever. */
const KEEP_ALIVE_PROBE_MS = 60_000;

/**
 * The upstream request headers of an upgrade: the proxy's rewriting (hop-by-hop stripped,
 * X-Forwarded-*, X-Request-Id), then `Connection: Upgrade` and the client's `Upgrade` again, the
 * two hop-by-hop headers that this hop must repeat for the switch to happen on the next one.
 */
export function upgradeRequestHeaders(rawHeaders: readonly string[], client: ClientInfo): string[] {
  return withUpgrade(upstreamRequestHeaders(rawHeaders, client), rawHeaders);
}

/** Appends `Connection: Upgrade` and the client's `Upgrade` protocols to rewritten headers `out`. */
function withUpgrade(out: string[], rawHeaders: readonly string[]): string[] {
  const protocols: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] ?? '').toLowerCase() === 'upgrade') protocols.push(rawHeaders[i + 1] ?? '');
  }
  out.push('connection', 'upgrade', 'upgrade', protocols.join(', '));
  return out;
}

/**
 * Serialises a request head. The parser never hands us CR or LF inside a name or value, but this
 * text goes onto a socket as is, so it is checked here rather than trusted: undefined when unsafe.
 */
export function serializeHead(method: string, target: string, headers: readonly string[]): string | undefined {
  const unsafe = /[\r\n\0]/;
  if (unsafe.test(method) || unsafe.test(target) || target.includes(' ')) return undefined;
  let head = `${method} ${target} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] ?? '';
    const value = headers[i + 1] ?? '';
    if (name === '' || unsafe.test(name) || unsafe.test(value)) return undefined;
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}

export interface UpgradeDeps {
  /** The part of the config upgrades read. */
  readonly config: Pick<Config, 'connectTimeoutMs'>;
  readonly registry: UpstreamTable;
  /** Candidates, choice, acquire / release (which wakes the queue), request id and headers: shared with the proxy. */
  readonly routing: Routing;
  readonly guard: ClientGuard;
  /** Told about refused connections, like the proxy tells it (passive health). */
  readonly outliers: Pick<OutlierDetector, 'recordFailure'>;
  /** Where outcomes are counted (lb_upgrades_total). */
  readonly metrics: Pick<Metrics, 'recordUpgrade'>;
  readonly logger: Logger;
}

/** Handles the data server's 'upgrade' events and owns the tunnels they open. */
export interface UpgradeHandler {
  /** The 'upgrade' listener. */
  readonly handle: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Tunnels open now. */
  readonly open: number;
  /** Cuts every tunnel and refuses new upgrades (503 LB_SHUTTING_DOWN). Idempotent. */
  closeAll(): void;
}

/** Creates the handler; the server wires `handle` to its 'upgrade' event. */
export function createUpgradeHandler(deps: UpgradeDeps): UpgradeHandler {
  const { config, registry, routing, guard, outliers, logger } = deps;
  const tunnels = new Set<() => void>();
  let closed = false;

  const release = (upstream: Upstream): void => {
    registry.counters.addLongLived(upstream.slot, -1);
    // A tunnel's life is no response time: it does not feed the latency estimates.
    routing.release(upstream);
  };

  const fail = (socket: Duplex, err: LbError): void => {
    answerAndClose(socket, rawErrorResponse(err.status, err.code, err.message));
  };

  /** The caller has acquired `upstream`; the tunnel releases it exactly once. */
  const tunnel = (req: IncomingMessage, client: Duplex, head: Buffer, upstream: Upstream, requestHead: string): void => {
    registry.counters.addLongLived(upstream.slot, 1);
    let connected = false;
    let done = false;
    const target: Socket = connect({ host: upstream.host, port: upstream.port });

    // Exactly one release, whichever side goes first and however (close, error, shutdown).
    const finish = (): void => {
      if (done) return;
      done = true;
      tunnels.delete(cut);
      release(upstream);
      client.destroy();
      target.destroy();
      if (connected) logger.debug({ upstream: upstream.id, url: req.url }, 'tunnel closed');
    };
    const cut = (): void => {
      finish();
    };
    tunnels.add(cut);

    target.setTimeout(config.connectTimeoutMs);
    target.once('timeout', () => {
      target.destroy(Object.assign(new Error(`connect timeout after ${config.connectTimeoutMs} ms`), { code: 'UND_ERR_CONNECT_TIMEOUT' }));
    });
    target.once('connect', () => {
      connected = true;
      target.setTimeout(0);
      target.setNoDelay(true);
      target.setKeepAlive(true, KEEP_ALIVE_PROBE_MS);
      deps.metrics.recordUpgrade(upstream.id, 'tunnel');
      target.write(requestHead);
      if (head.length > 0) target.write(head);
      client.pipe(target);
      target.pipe(client);
    });
    target.on('error', (err: Error & { code?: string }) => {
      if (connected || done) {
        finish();
        return;
      }
      deps.metrics.recordUpgrade(upstream.id, 'connect_error');
      outliers.recordFailure(upstream, 'connect');
      logger.debug({ upstream: upstream.id, err: err.code ?? err.message }, 'upgrade: cannot connect to upstream');
      const error = new LbError('LB_UPSTREAM_CONNECT', `cannot connect to upstream ${upstream.id} (${err.code ?? err.message})`, { cause: err });
      // Release first: the client must not see the 502 while the count still includes it.
      done = true;
      tunnels.delete(cut);
      release(upstream);
      target.destroy();
      fail(client, error);
    });
    target.once('close', finish);
    client.on('error', finish);
    client.once('close', finish);
    // One side's end is the end of the tunnel (as in nginx): pipe() passes the EOF on, and once it
    // is flushed both sockets close. Waiting for the other side's own FIN could hold a half-open
    // tunnel, and its in-flight count, forever.
    client.once('finish', finish);
    target.once('finish', finish);
  };

  const handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // The socket is ours now: Node's HTTP server no longer listens for its errors.
    socket.on('error', () => {
      socket.destroy();
    });
    // An earlier keep-alive response may have left an idle timeout on this socket.
    (socket as Partial<Socket>).setTimeout?.(0);
    if (closed) {
      fail(socket, new LbError('LB_SHUTTING_DOWN', 'the balancer is shutting down'));
      return;
    }
    if (!guard.admitUpgrade(req, socket)) return;

    // Caps apply to tunnels too; a tunnel does not wait in the queue (a client retries an upgrade itself).
    const pick = routing.choose(routing.candidates());
    if (pick === undefined) {
      deps.metrics.recordUpgrade(NO_UPSTREAM, 'no_upstream');
      fail(socket, routing.noUpstream());
      return;
    }
    const upstream = pick.chosen;

    const headers = withUpgrade(routing.headersFor(req, routing.requestIdOf(req)), req.rawHeaders);
    const requestHead = serializeHead(req.method ?? 'GET', req.url ?? '/', headers);
    if (requestHead === undefined) {
      const rejection = { status: statusOf.LB_BAD_REQUEST, code: 'LB_BAD_REQUEST', reason: 'malformed', message: 'request head cannot be forwarded safely' } as const;
      guard.count(rejection);
      fail(socket, new LbError(rejection.code, rejection.message));
      return;
    }
    if (!routing.acquire(pick)) {
      // Another thread took its last place since the pick.
      deps.metrics.recordUpgrade(NO_UPSTREAM, 'no_upstream');
      fail(socket, new LbError('LB_NO_UPSTREAM', 'every upstream is at its in-flight cap'));
      return;
    }
    (socket as Partial<Socket>).setNoDelay?.(true);
    (socket as Partial<Socket>).setKeepAlive?.(true, KEEP_ALIVE_PROBE_MS);
    tunnel(req, socket, head, upstream, requestHead);
  };

  return {
    handle,
    get open() {
      return tunnels.size;
    },
    closeAll() {
      closed = true;
      for (const cut of [...tunnels]) cut();
    },
  };
}
