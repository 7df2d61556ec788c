/**
 * What this balancer knows of its peers: the addresses they may report from (configured or
 * resolved), the latest report of each peer with the time it arrived, and which of them are live.
 * State only, with the clock passed in: peers.ts owns the socket, the timer and the resolution.
 *
 * A report is believed only from a known address (the one rule of admission: no shared secret to
 * distribute, and --peers-dns answers with exactly the balancers' addresses). Reports are kept per
 * sender instance, so a balancer reached at two addresses is counted once, and a restarted one (a
 * new instance id at the same address) replaces its predecessor at once.
 */
import type { Report, SenderPorts } from './report.js';

/** Most peer addresses taken from configuration and DNS together; more are left out (and logged by the caller). */
export const MAX_PEERS = 256;

/** `live`: its latest report is within the timeout and counts; `dropped`: silent for longer, or never heard (ageMs null). */
export type PeerState = 'live' | 'dropped';

/** One peer as /api/upstreams and /metrics show it. */
export interface PeerView {
  /** Where its reports come from and ours go to: `host:port` (UDP). */
  readonly address: string;
  /** Instance id of its latest report (new at every start of that balancer); null before its first. */
  readonly id: string | null;
  /** Milliseconds since its latest report arrived; null before its first. */
  readonly ageMs: number | null;
  readonly state: PeerState;
  /**
   * `http://host:port` of its data and admin ports (the host its reports come from), when its
   * latest report said (reports carry them since the lab's two-balancer runs); else null.
   */
  readonly dataUrl: string | null;
  readonly adminUrl: string | null;
}

/**
 * What became of a report: kept; this balancer's own (its address is then skipped); from an
 * address that is no known peer; or not newer than the one held from that sender.
 */
export type Verdict = 'accepted' | 'self' | 'unknown_sender' | 'stale';

interface Heard {
  readonly id: string;
  address: string;
  seq: number;
  inFlight: ReadonlyMap<string, number>;
  ports: SenderPorts | undefined;
  receivedAt: number;
}

/** `http://host:port` at the host of a `host:port` peer address (an IPv6 host keeps its brackets). */
const urlAt = (address: string, port: number): string => `http://${address.slice(0, address.lastIndexOf(':'))}:${port}`;

export interface PeerTable {
  /**
   * The peer addresses now (configured and resolved; at most MAX_PEERS are kept). Reports held from
   * an address that left stop counting at once.
   */
  setAddresses(addresses: readonly string[]): void;
  /** Where to send this balancer's reports: every known address but its own. */
  targets(): readonly string[];
  /** Takes a report that arrived from `address` at `now`. */
  receive(address: string, report: Report, now: number): Verdict;
  /** In flight per upstream id, summed over the live peers' latest reports. */
  inFlight(now: number): ReadonlyMap<string, number>;
  /** Every known peer but this balancer, by address. */
  view(now: number): PeerView[];
}

/** A table for the balancer whose reports carry `selfId`; a peer silent for more than `timeoutMs` is dropped. */
export function createPeerTable(selfId: string, timeoutMs: number): PeerTable {
  let addresses: readonly string[] = [];
  let known = new Set<string>();
  const self = new Set<string>();
  let targets: readonly string[] = [];
  /** Latest report of each sender instance. */
  const byId = new Map<string, Heard>();
  /** The instance that last reported from each address. */
  const byAddress = new Map<string, string>();

  const isLive = (heard: Heard, now: number): boolean => now - heard.receivedAt <= timeoutMs;
  const refreshTargets = (): void => {
    targets = addresses.filter((a) => !self.has(a));
  };
  const forget = (address: string): void => {
    const id = byAddress.get(address);
    byAddress.delete(address);
    if (id === undefined) return;
    const heard = byId.get(id);
    // The instance may since report from another known address: then it stays.
    if (heard?.address === address) byId.delete(id);
  };

  return {
    setAddresses(next) {
      addresses = [...new Set(next)].sort().slice(0, MAX_PEERS);
      known = new Set(addresses);
      for (const address of [...byAddress.keys()]) if (!known.has(address)) forget(address);
      for (const address of [...self]) if (!known.has(address)) self.delete(address);
      refreshTargets();
    },
    targets: () => targets,
    receive(address, report, now) {
      if (!known.has(address)) return 'unknown_sender';
      if (report.from === selfId) {
        if (!self.has(address)) {
          self.add(address);
          forget(address);
          refreshTargets();
        }
        return 'self';
      }
      const previous = byAddress.get(address);
      // Another instance at this address: the balancer there restarted; its predecessor is gone.
      if (previous !== undefined && previous !== report.from) forget(address);
      const heard = byId.get(report.from);
      if (heard !== undefined && report.seq <= heard.seq) return 'stale';
      if (heard === undefined) byId.set(report.from, { id: report.from, address, seq: report.seq, inFlight: report.inFlight, ports: report.ports, receivedAt: now });
      else {
        heard.address = address;
        heard.seq = report.seq;
        heard.inFlight = report.inFlight;
        heard.ports = report.ports;
        heard.receivedAt = now;
      }
      byAddress.set(address, report.from);
      return 'accepted';
    },
    inFlight(now) {
      const sums = new Map<string, number>();
      for (const heard of byId.values()) {
        if (!isLive(heard, now)) continue;
        for (const [id, n] of heard.inFlight) sums.set(id, (sums.get(id) ?? 0) + n);
      }
      return sums;
    },
    view(now) {
      return targets.map((address): PeerView => {
        const id = byAddress.get(address);
        const heard = id === undefined ? undefined : byId.get(id);
        if (heard === undefined) return { address, id: null, ageMs: null, state: 'dropped', dataUrl: null, adminUrl: null };
        const { ports } = heard;
        return {
          address, id: heard.id, ageMs: Math.max(0, Math.round(now - heard.receivedAt)), state: isLive(heard, now) ? 'live' : 'dropped',
          dataUrl: ports === undefined ? null : urlAt(address, ports.data),
          adminUrl: ports === undefined ? null : urlAt(address, ports.admin),
        };
      });
    },
  };
}
