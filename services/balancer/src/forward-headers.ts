/**
 * Header rewriting between client and upstream (RFC 9110 §7.6.1): hop-by-hop headers belong to
 * one connection and are never forwarded; X-Forwarded-* tell the upstream who asked. Pure.
 */

/** Headers that describe a single connection, plus the ones Node/undici set themselves. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // undici refuses `expect`; Node's server already answered any 100-continue.
  'expect',
]);

/** Names listed in a Connection header are hop-by-hop too. */
function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (value === undefined || value === '') return undefined;
  const tokens = new Set<string>();
  for (const t of value.split(',')) {
    const name = t.trim().toLowerCase();
    if (name !== '' && name !== 'close' && name !== 'keep-alive') tokens.add(name);
  }
  return tokens.size > 0 ? tokens : undefined;
}

/** What the proxy knows about the client side of a request. */
export interface ClientInfo {
  readonly remoteAddress: string | undefined;
  readonly proto: 'http' | 'https';
  readonly requestId: string;
}

/**
 * Builds the upstream request headers from Node's `rawHeaders` (name/value pairs, duplicates
 * kept): strips hop-by-hop, appends the client to X-Forwarded-For, keeps an incoming
 * X-Forwarded-Proto/Host (a proxy in front of us knows better) or sets ours, sets X-Request-Id.
 * Returns a flat [name, value, ...] array, which undici takes as is.
 */
export function upstreamRequestHeaders(rawHeaders: readonly string[], client: ClientInfo): string[] {
  let connection: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] ?? '').toLowerCase() === 'connection') connection = connection === undefined ? rawHeaders[i + 1] : `${connection},${rawHeaders[i + 1] ?? ''}`;
  }
  const extra = connectionTokens(connection);
  const out: string[] = [];
  let forwardedFor: string | undefined;
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
        forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        continue;
      case 'x-request-id':
        continue;
      case 'host':
        host = value;
        break;
      case 'x-forwarded-proto':
        hasProto = true;
        break;
      case 'x-forwarded-host':
        hasForwardedHost = true;
        break;
    }
    out.push(name, value);
  }
  const clientAddress = client.remoteAddress ?? 'unknown';
  out.push('x-forwarded-for', forwardedFor === undefined ? clientAddress : `${forwardedFor}, ${clientAddress}`);
  if (!hasProto) out.push('x-forwarded-proto', client.proto);
  if (!hasForwardedHost && host !== undefined) out.push('x-forwarded-host', host);
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
    const name = String(raw[i]?.toString('latin1'));
    const value = String(raw[i + 1]?.toString('latin1'));
    const lower = name.toLowerCase();
    if (lower === 'connection') {
      const tokens = connectionTokens(value);
      if (tokens !== undefined) for (const t of tokens) (extra ??= new Set()).add(t);
      continue;
    }
    if (HOP_BY_HOP.has(lower)) continue;
    out.push(lower, value);
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
