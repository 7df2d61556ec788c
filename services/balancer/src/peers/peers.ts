/**
 * Balancers that know each other's load (issue 25): every --peer-interval-ms this balancer sends
 * each peer one UDP datagram with its own in-flight count per upstream, and keeps the latest report
 * of each peer; the sum over the live ones goes into shared cells beside the own counts
 * (CounterTable's peer cells), which every data-path thread's picker reads through
 * Upstream.inFlightCluster. Acquire and release stay as they are: own counts only.
 *
 * Why UDP (bench/PEERS.md): a report is a few hundred bytes and the whole state, so a lost one is
 * repaired by the next; a datagram costs each side a fraction of an HTTP request's CPU and never
 * waits behind another one.
 *
 * Peers are `--peer HOST:PORT` (a name is resolved like --peers-dns) and the A records of
 * `--peers-dns NAME` at --peers-port, re-resolved every --peers-dns-interval-ms. The DNS answer
 * includes this balancer: it sends to every address once, and the address its own report comes
 * back from (the random instance id in each report) is skipped from then on.
 *
 * Sharing can be switched off at runtime (PUT /api/peers, --peer-sharing off): this balancer then
 * sends no reports and picks on its own counts only, while it still hears the peers and shows their
 * ages. Its peers drop it after --peer-timeout-ms, so one switch isolates it in both directions:
 * the lab's "two balancers with isolated counts", measured against sharing on the same traffic.
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { once } from 'node:events';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Registry as PromRegistry } from 'prom-client';
import type { Config } from '../config.js';
import { createDnsDiscovery } from '../discovery/dns.js';
import type { DnsDiscovery, Resolve } from '../discovery/dns.js';
import type { UpstreamTable } from '../upstreams/registry.js';
import { upstreamId } from '../upstreams/upstream.js';
import { createPeerMetrics } from './peer-metrics.js';
import { createPeerTable, MAX_PEERS } from './peer-table.js';
import type { PeerView } from './peer-table.js';
import { decodeReport, encodeReport } from './report.js';
import type { SenderPorts } from './report.js';

export interface PeersDeps {
  /** The part of the config peers read. */
  readonly config: Pick<Config, 'peers' | 'adminHost'>;
  /** Own counts are read from it; the peers' sums are written into its counters' peer cells. */
  readonly upstreams: UpstreamTable;
  readonly resolve: Resolve;
  readonly logger: Logger;
  /** Where the peer metrics are registered (the main thread's). */
  readonly metrics: PromRegistry;
  /** This balancer's instance id in its reports (default: 8 random bytes, in hex). */
  readonly instanceId?: string;
}

export interface Peers {
  /** Sharing is on: peers are configured (else nothing binds and every view is empty). */
  readonly enabled: boolean;
  readonly instanceId: string;
  /** Binds the peer port, resolves the peers once, then reports and listens. */
  start(): Promise<void>;
  /** The UDP port bound (useful with --peers-port 0); undefined before start or when off. */
  readonly port: number | undefined;
  /** Every known peer but this balancer. */
  view(): PeerView[];
  /** Reports are sent and the peers' counts count (true unless switched off). */
  readonly sharing: boolean;
  /** Switches sharing on or off at once (the next tick sends, or not); returns the previous setting. */
  setSharing(on: boolean): boolean;
  /** This balancer's data and admin ports, once they listen: carried in its reports (the lab's two-balancer runs). */
  setOwnPorts(ports: SenderPorts): void;
  /** Stops reporting and listening; the peers' counts stop counting. Idempotent. */
  stop(): Promise<void>;
}

/** Dual-stack sockets show IPv4 senders as ::ffff:a.b.c.d; peers are known by the plain form. */
const plainHost = (address: string): string => (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address);

export function createPeers(deps: PeersDeps): Peers {
  const { config, upstreams, logger } = deps;
  const settings = config.peers;
  const instanceId = deps.instanceId ?? randomBytes(8).toString('hex');
  const enabled = settings.static.length > 0 || settings.dns !== '';
  const table = createPeerTable(instanceId, settings.timeoutMs);
  let sharing = settings.sharing;
  let ownPorts: SenderPorts | undefined;
  const metrics = createPeerMetrics(deps.metrics, upstreams, () => table.view(performance.now()), () => enabled && sharing);
  /** Address key (`host:port`) to where a datagram goes. */
  const endpoints = new Map<string, { readonly host: string; readonly port: number }>();
  /** The addresses of each source of peers: the fixed ones (IP literals), then one entry per resolved name. */
  const sources = new Map<string, readonly { readonly host: string; readonly port: number }[]>();
  const discoveries: DnsDiscovery[] = [];
  let socket: Socket | undefined;
  let timer: NodeJS.Timeout | undefined;
  let seq = 0;
  let stopped: Promise<void> | undefined;
  let lastSendError = '';
  let states = new Map<string, string>();
  // A function, not the variable: stop() may run while start() awaits.
  const isStopped = (): boolean => stopped !== undefined;

  const setSource = (key: string, addresses: readonly { readonly host: string; readonly port: number }[]): void => {
    sources.set(key, addresses);
    endpoints.clear();
    for (const list of sources.values()) for (const a of list) endpoints.set(upstreamId(a.host, a.port), a);
    if (endpoints.size > MAX_PEERS) logger.warn({ peers: endpoints.size, kept: MAX_PEERS }, 'more peer addresses than the balancer keeps; the rest are left out');
    table.setAddresses([...endpoints.keys()]);
    writeCounts();
  };

  /** The live peers' sums into the shared cells the pickers read (zero where no peer reports). */
  const writeCounts = (): void => {
    // Sharing off: the peers are still heard (and shown), but only this balancer's own counts pick.
    const sums = sharing ? table.inFlight(performance.now()) : new Map<string, number>();
    for (const u of upstreams.list()) upstreams.counters.setPeerInFlight(u.slot, sums.get(u.id) ?? 0);
  };

  /** Logs each peer that starts or stops counting. */
  const noteStates = (): void => {
    const next = new Map<string, string>();
    for (const p of table.view(performance.now())) {
      next.set(p.address, p.state);
      const before = states.get(p.address);
      if (before === p.state || (before === undefined && p.state === 'dropped')) continue;
      if (p.state === 'live') logger.info({ peer: p.address, id: p.id }, 'peer reports: its counts count');
      else logger.warn({ peer: p.address, id: p.id, ageMs: p.ageMs, timeoutMs: settings.timeoutMs }, 'peer silent for longer than --peer-timeout-ms: dropped, its counts no longer count');
    }
    states = next;
  };

  const report = (): void => {
    const s = socket;
    if (s === undefined || !sharing) return;
    seq++;
    const own = upstreams.list().map((u) => [u.id, u.inFlight] as const);
    const { bytes, left } = encodeReport(instanceId, seq, own, ownPorts);
    if (left > 0 && seq % 500 === 1) logger.warn({ left }, 'in-flight report over its size limit: the smallest counts were left out');
    for (const address of table.targets()) {
      const to = endpoints.get(address);
      if (to === undefined) continue;
      s.send(bytes, to.port, to.host, (err) => {
        if (err === null) {
          metrics.recordSent();
          return;
        }
        const code = (err as { code?: string }).code ?? String(err);
        if (code !== lastSendError) logger.warn({ peer: address, code }, 'sending a report to a peer failed');
        lastSendError = code;
      });
    }
  };

  const tick = (): void => {
    report();
    writeCounts();
    noteStates();
  };

  const onMessage = (datagram: Buffer, from: { address: string; port: number }): void => {
    const decoded = decodeReport(datagram);
    if (typeof decoded === 'string') {
      metrics.recordRefused(decoded);
      return;
    }
    const verdict = table.receive(upstreamId(plainHost(from.address), from.port), decoded, performance.now());
    if (verdict === 'accepted') {
      metrics.recordReceived();
      writeCounts();
    } else if (verdict === 'self') logger.debug({ address: `${from.address}:${from.port}` }, 'this balancer\'s own report came back: that address is skipped');
    else metrics.recordRefused(verdict);
  };

  const bind = async (): Promise<Socket> => {
    const s = createSocket({ type: isIP(config.adminHost) === 6 ? 'udp6' : 'udp4' });
    s.on('message', onMessage);
    const failed = once(s, 'error').then(([err]) => {
      throw err as Error;
    });
    s.bind(settings.port, config.adminHost);
    await Promise.race([once(s, 'listening'), failed]);
    // From now on a socket error (rare with UDP) is logged; reports carry on with the next tick.
    s.removeAllListeners('error');
    s.on('error', (err) => {
      logger.warn({ err }, 'peer socket error');
    });
    return s;
  };

  return {
    enabled,
    instanceId,
    get port() {
      return socket?.address().port;
    },
    async start() {
      if (!enabled || socket !== undefined || stopped !== undefined) return;
      const bound = await bind();
      if (isStopped()) {
        bound.close();
        return;
      }
      socket = bound;
      const fixed = settings.static.filter((p) => isIP(p.host) !== 0);
      setSource('', fixed);
      const names = [
        ...settings.static.filter((p) => isIP(p.host) === 0).map((p) => ({ name: p.host, port: p.port })),
        ...(settings.dns === '' ? [] : [{ name: settings.dns, port: settings.port }]),
      ];
      names.forEach(({ name, port }, i) => {
        discoveries.push(
          createDnsDiscovery({
            name,
            port,
            intervalMs: settings.dnsIntervalMs,
            resolve: deps.resolve,
            logger,
            what: 'peers',
            onAddresses: (addresses) => {
              setSource(`${i}:${name}`, addresses);
            },
          }),
        );
      });
      await Promise.all(discoveries.map((d) => d.start()));
      if (isStopped()) return;
      tick();
      timer = setInterval(tick, settings.intervalMs);
      logger.info({ port: bound.address().port, instanceId, peers: table.targets(), intervalMs: settings.intervalMs, timeoutMs: settings.timeoutMs }, 'sharing in-flight counts with peers');
    },
    view: () => table.view(performance.now()),
    get sharing() {
      return sharing;
    },
    setSharing(on) {
      const before = sharing;
      sharing = on;
      if (before !== on) {
        writeCounts();
        logger.info({ sharing: on }, on ? 'sharing in-flight counts again: reports sent, the peers\' counts count' : 'sharing off: no reports sent, picking on this balancer\'s own counts only');
      }
      return before;
    },
    setOwnPorts(ports) {
      ownPorts = ports;
    },
    stop() {
      stopped ??= (async () => {
        if (timer !== undefined) clearInterval(timer);
        for (const d of discoveries) d.stop();
        const s = socket;
        socket = undefined;
        if (s !== undefined) await new Promise<void>((resolve) => s.close(() => { resolve(); }));
        for (const u of upstreams.list()) upstreams.counters.setPeerInFlight(u.slot, 0);
      })();
      return stopped;
    },
  };
}
