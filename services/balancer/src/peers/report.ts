/**
 * A peer report on the wire: what one balancer tells the others, many times a second, about the
 * requests it has in flight on each upstream. One UDP datagram holding one line of JSON:
 *
 *   {"v":1,"from":"<the sender's instance id: 16 hex digits>","seq":<n>,"inFlight":{"<upstream id>":<count>,...},
 *    "dataPort":<n>,"adminPort":<n>}
 *
 * dataPort and adminPort (optional, added for the lab's two-balancer runs) are the sender's TCP
 * ports, at the host its datagrams come from: the lab sends half its traffic to a peer's data port
 * and asks its admin port whether the peer still counts this balancer. A report without them (an
 * older balancer, or one not listening yet) is as valid as before.
 *
 * Each report is the sender's whole state (an upstream left out has nothing in flight), so a lost or
 * reordered datagram is repaired by the next one: no acknowledgements, no retransmission. Upstream
 * ids are the ones /api/upstreams shows (`host:port`), the same on every balancer that discovers
 * or is given the same backends.
 *
 * Whatever arrives on the peer port is untrusted: decodeReport checks the size before reading, and
 * the shape, every id and every count after; anything else is a reason, never an exception.
 *
 * Import-free and erasable syntax only: bench/peers.mjs runs this file with Node's type stripping,
 * so the measured encoding is the real one.
 */

export const REPORT_VERSION = 1;
/**
 * Largest report sent or read. About 600 upstreams with requests in flight at once (their ids as
 * IPv4 `a.b.c.d:port`); a sender with more leaves out its smallest counts (see encodeReport).
 * Above one Ethernet frame, so a large report travels as IP fragments, which UDP reassembles.
 */
export const MAX_REPORT_BYTES = 16_384;
/** As many upstreams as a balancer can know (server.ts's MAX_UPSTREAMS). */
export const MAX_REPORT_ENTRIES = 1024;
/** A host name of 253 characters, brackets, a colon and a port. */
export const MAX_UPSTREAM_ID_LENGTH = 262;
/**
 * Highest count believed (the --max-in-flight bound): with at most MAX_PEERS peers, the sum over
 * them stays far below the 2^31 of a shared Int32 cell.
 */
export const MAX_REPORTED_IN_FLIGHT = 1_000_000;
const INSTANCE_ID = /^[0-9a-f]{16}$/;

/** One decoded report. */
export interface Report {
  /** The sender's instance id, new at every start: how a balancer recognises its own reports. */
  readonly from: string;
  /** Bumped by every report of the sender: an older one arriving late is ignored. */
  readonly seq: number;
  /** In flight per upstream id, zeros left out. */
  readonly inFlight: ReadonlyMap<string, number>;
  /** The sender's data and admin ports (TCP, at its datagrams' source address); absent in older reports. */
  readonly ports?: SenderPorts;
}

/** Where a peer takes requests and admin calls, at the host its reports come from. */
export interface SenderPorts {
  readonly data: number;
  readonly admin: number;
}

const isPort = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65_535;

/** Why a datagram was not a report (the `reason` label of lb_peer_reports_rejected_total). */
export type ReportDefect = 'too_large' | 'malformed';

/** True for an instance id as reports carry it. */
export function isInstanceId(text: string): boolean {
  return INSTANCE_ID.test(text);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The encoded report, and how many non-zero counts did not fit in MAX_REPORT_BYTES. */
export interface EncodedReport {
  readonly bytes: Uint8Array;
  readonly left: number;
}

/**
 * Encodes `inFlight` (zeros are skipped). When the report would be over MAX_REPORT_BYTES, the
 * largest counts are kept: those are the ones that change another balancer's choice.
 */
export function encodeReport(from: string, seq: number, inFlight: Iterable<readonly [string, number]>, ports?: SenderPorts): EncodedReport {
  const entries: [string, number][] = [];
  for (const [id, n] of inFlight) if (n > 0) entries.push([id, Math.min(n, MAX_REPORTED_IN_FLIGHT)]);
  // The ports first: the counts' object closes the report, so the size budget below stays as it was.
  const portFields = ports === undefined ? '' : `"dataPort":${ports.data},"adminPort":${ports.admin},`;
  const head = `{"v":${REPORT_VERSION},"from":${JSON.stringify(from)},"seq":${seq},${portFields}"inFlight":{`;
  const parts = entries.map(([id, n]) => `${JSON.stringify(id)}:${n}`);
  let text = `${head}${parts.join(',')}}}`;
  let bytes = encoder.encode(text);
  if (bytes.length <= MAX_REPORT_BYTES && entries.length <= MAX_REPORT_ENTRIES) return { bytes, left: 0 };
  // Rare (hundreds of busy upstreams): keep the largest counts that fit.
  const order = entries.map((e, i) => ({ n: e[1], part: parts[i] ?? '' })).sort((a, b) => b.n - a.n);
  let budget = MAX_REPORT_BYTES - encoder.encode(head).length - 2;
  const kept: string[] = [];
  for (const { part } of order) {
    const size = encoder.encode(part).length + (kept.length > 0 ? 1 : 0);
    if (size > budget || kept.length === MAX_REPORT_ENTRIES) break;
    kept.push(part);
    budget -= size;
  }
  text = `${head}${kept.join(',')}}}`;
  bytes = encoder.encode(text);
  return { bytes, left: entries.length - kept.length };
}

/** The report in `datagram`, or why it is none. Never throws. */
export function decodeReport(datagram: Uint8Array): Report | ReportDefect {
  if (datagram.length > MAX_REPORT_BYTES) return 'too_large';
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(datagram));
  } catch {
    return 'malformed';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'malformed';
  const { v, from, seq, inFlight, dataPort, adminPort } = value as Record<string, unknown>;
  if (v !== REPORT_VERSION || typeof from !== 'string' || !isInstanceId(from)) return 'malformed';
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return 'malformed';
  if (typeof inFlight !== 'object' || inFlight === null || Array.isArray(inFlight)) return 'malformed';
  // Both or neither: one alone is no address the lab can use.
  if ((dataPort === undefined) !== (adminPort === undefined)) return 'malformed';
  if (dataPort !== undefined && (!isPort(dataPort) || !isPort(adminPort))) return 'malformed';
  const counts = new Map<string, number>();
  // Object.entries: own keys only, so a "__proto__" key is an id like any other (and unknown).
  const entries = Object.entries(inFlight);
  if (entries.length > MAX_REPORT_ENTRIES) return 'malformed';
  for (const [id, n] of entries) {
    if (id === '' || id.length > MAX_UPSTREAM_ID_LENGTH) return 'malformed';
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_REPORTED_IN_FLIGHT) return 'malformed';
    if (n > 0) counts.set(id, n);
  }
  return isPort(dataPort) && isPort(adminPort) ? { from, seq, inFlight: counts, ports: { data: dataPort, admin: adminPort } } : { from, seq, inFlight: counts };
}
