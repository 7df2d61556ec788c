import { lookup as dnsLookup } from 'node:dns/promises';
import type { Logger } from 'pino';
import type { UpstreamAddress } from '../upstreams/address.js';

/** Resolves a name to every IPv4 address it has (injectable for tests). */
export type Resolve = (name: string) => Promise<string[]>;

/**
 * getaddrinfo through libuv: honours /etc/hosts and, under Compose, returns one A record per
 * replica. IPv4 only: Compose networks have no IPv6.
 */
export const resolveAll: Resolve = async (name) => (await dnsLookup(name, { all: true, family: 4 })).map((a) => a.address);

/** Codes that mean "the name has no addresses now", as opposed to "DNS did not answer". */
const EMPTY_CODES = new Set(['ENOTFOUND', 'ENODATA']);
/** A name must be missing this many polls in a row before its addresses are dropped. */
const EMPTY_CONFIRMATIONS = 3;

export interface DnsDiscoveryOptions {
  readonly name: string;
  readonly port: number;
  readonly intervalMs: number;
  readonly resolve: Resolve;
  readonly logger: Logger;
  /** What the addresses are, in log lines (default 'upstreams'; peer balancers: 'peers'). */
  readonly what?: string;
  /** Called with the full current set after every successful poll. */
  readonly onAddresses: (addresses: readonly UpstreamAddress[]) => void;
}

/** Discovery of upstreams by re-resolving a DNS name (a Compose service, a headless Service). */
export interface DnsDiscovery {
  /** Resolves once (not failing when the name is missing yet), then keeps polling. */
  start(): Promise<void>;
  stop(): void;
}

/** Creates DNS discovery; nothing runs until start(). */
export function createDnsDiscovery(options: DnsDiscoveryOptions): DnsDiscovery {
  const { name, port, intervalMs, resolve, logger, onAddresses } = options;
  const what = options.what ?? 'upstreams';
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let missing = 0;
  let lastError = '';

  const isStopped = (): boolean => stopped;

  const poll = async (): Promise<void> => {
    try {
      const ips = [...new Set(await resolve(name))].sort();
      if (stopped) return;
      missing = 0;
      if (lastError !== '') logger.info({ name, addresses: ips.length }, 'DNS discovery resolves again');
      lastError = '';
      onAddresses(ips.map((host) => ({ host, port, weight: 1 })));
    } catch (err) {
      if (stopped) return;
      const code = (err as { code?: string }).code ?? String(err);
      if (code !== lastError) logger.warn({ name, code }, `DNS discovery failed; keeping the last known ${what}`);
      lastError = code;
      if (EMPTY_CODES.has(code) && ++missing >= EMPTY_CONFIRMATIONS) onAddresses([]);
    }
  };

  const loop = (): void => {
    timer = setTimeout(() => {
      void poll().finally(() => {
        if (!stopped) loop();
      });
    }, intervalMs);
  };

  return {
    async start() {
      if (timer !== undefined || stopped) return;
      await poll();
      // stop() may have run while the first poll was in flight.
      if (!isStopped()) loop();
    },
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
