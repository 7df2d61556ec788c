/**
 * Header rewriting between client and upstream (RFC 9110 §7.6.1): hop-by-hop headers belong to
 * one connection and are never forwarded (hop-by-hop.ts names them); X-Forwarded-* and Forwarded
 * tell the upstream who asked, believed only from a trusted proxy (the trust boundary). Pure,
 * apart from the BlockList lookup.
 */
import { BlockList, isIP, isIPv4, isIPv6 } from 'node:net';
import { HOP_BY_HOP, connectionTokens } from './hop-by-hop.js';

/** What the proxy knows about the client side of a request. */
export interface ClientInfo {
  readonly remoteAddress: string | undefined;
  readonly proto: 'http' | 'https';
  readonly requestId: string;
  /**
   * The peer is a trusted proxy: its X-Forwarded-* and Forwarded are kept and extended. Otherwise
   * they are the client's own claims and are replaced (nginx set_real_ip_from, Envoy xff_num_trusted_hops).
   */
  readonly trusted: boolean;
}

/** Whether a peer address is one of the trusted proxies; built once from `--trusted-proxies`. */
export type TrustCheck = (remoteAddress: string | undefined) => boolean;

/** A TrustCheck over CIDRs in `address/prefix` form (as config.ts normalises them). */
export function createTrustCheck(cidrs: readonly string[]): TrustCheck {
  if (cidrs.length === 0) return () => false;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address = '', prefix = ''] = cidr.split('/');
    list.addSubnet(address, Number(prefix), isIPv4(address) ? 'ipv4' : 'ipv6');
  }
  // BlockList matches an IPv4 rule against the IPv4-mapped IPv6 form (::ffff:a.b.c.d) that a
  // dual-stack listener reports, and the other way round.
  return (remote) => {
    const family = isIP(remote ?? '');
    return family !== 0 && list.check(remote ?? '', family === 4 ? 'ipv4' : 'ipv6');
  };
}

/** A `for=` / `host=` value of a Forwarded element (RFC 7239 §6): IPv6 and ports quoted. */
function forwardedValue(value: string): string {
  // A token (IPv4, a plain host name) goes bare; anything else is quoted, IPv6 in brackets.
  if (/^[A-Za-z0-9.\-_]+$/.test(value)) return value;
  return `"${(isIPv6(value) ? `[${value}]` : value).replace(/["\\]/g, '')}"`;
}

/**
 * Builds the upstream request headers from Node's `rawHeaders` (name/value pairs, duplicates
 * kept): strips hop-by-hop, sets X-Request-Id, and tells the upstream who asked. From a trusted
 * proxy, X-Forwarded-For is extended with the peer, X-Forwarded-Proto/Host are kept (that proxy
 * saw the client) and Forwarded gets our element appended. From anyone else those headers are
 * claims a client can forge: they are dropped and replaced by what this hop saw.
 * Returns a flat [name, value, ...] array, which undici takes as is.
 */
export function upstreamRequestHeaders(rawHeaders: readonly string[], client: ClientInfo): string[] {
  let connection: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] ?? '').toLowerCase() === 'connection') connection = connection === undefined ? rawHeaders[i + 1] : `${connection},${rawHeaders[i + 1] ?? ''}`;
  }
  const extra = connectionTokens(connection);
  const { trusted } = client;
  const out: string[] = [];
  let forwardedFor: string | undefined;
  let forwarded: string | undefined;
  let host: string | undefined;
  let hasProto = false;
  let hasForwardedHost = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] ?? '';
    const value = rawHeaders[i + 1] ?? '';
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || extra?.has(lower)) continue;
    switch (lower) {
      case 'x-forwarded-for':
        if (trusted) forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        continue;
      case 'forwarded':
        if (trusted) forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`;
        else forwarded ??= '';
        continue;
      case 'x-request-id':
        continue;
      case 'host':
        host = value;
        break;
      case 'x-forwarded-proto':
        if (!trusted) continue;
        hasProto = true;
        break;
      case 'x-forwarded-host':
        if (!trusted) continue;
        hasForwardedHost = true;
        break;
    }
    out.push(name, value);
  }
  const clientAddress = client.remoteAddress ?? 'unknown';
  out.push('x-forwarded-for', forwardedFor === undefined ? clientAddress : `${forwardedFor}, ${clientAddress}`);
  if (!hasProto) out.push('x-forwarded-proto', client.proto);
  if (!hasForwardedHost && host !== undefined) out.push('x-forwarded-host', host);
  if (forwarded !== undefined) {
    // Only when the request had one: X-Forwarded-* already carry the same facts for everyone else.
    const element = `for=${forwardedValue(clientAddress)};proto=${client.proto}${host === undefined ? '' : `;host=${forwardedValue(host)}`}`;
    out.push('forwarded', forwarded === '' ? element : `${forwarded}, ${element}`);
  }
  out.push('x-request-id', client.requestId);
  return out;
}

/**
 * Copies an upstream response's headers for the client, without hop-by-hop ones (nor those its
 * Connection header names). Takes undici's raw headers (name/value Buffers, as on the wire) and
 * returns a flat [name, value, ...] string array for `res.writeHead`, duplicates (set-cookie)
 * kept, names in lower case.
 */
export function clientResponseHeaders(raw: readonly Buffer[]): string[] {
  const out: string[] = [];
  let extra: Set<string> | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const lower = (raw[i]?.toString('latin1') ?? '').toLowerCase();
    if (lower === 'connection') {
      const value = raw[i + 1]?.toString('latin1') ?? '';
      // Nearly every upstream says only `keep-alive` (or `close`), which names no header.
      const plain = value.toLowerCase();
      if (plain === 'keep-alive' || plain === 'close') continue;
      const tokens = connectionTokens(value);
      if (tokens !== undefined) for (const t of tokens) (extra ??= new Set()).add(t);
      continue;
    }
    // A hop-by-hop header's value is never read.
    if (HOP_BY_HOP.has(lower)) continue;
    out.push(lower, raw[i + 1]?.toString('latin1') ?? '');
  }
  if (extra === undefined) return out;
  // Rare: the Connection header named other headers; drop those too.
  const kept: string[] = [];
  for (let i = 0; i + 1 < out.length; i += 2) {
    const name = String(out[i]);
    if (!extra.has(name)) kept.push(name, String(out[i + 1]));
  }
  return kept;
}

/** Whether a request carries a body (so it cannot be replayed on another upstream). */
export function hasRequestBody(headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  const length = headers['content-length'];
  if (length !== undefined) return length !== '0';
  return headers['transfer-encoding'] !== undefined;
}
