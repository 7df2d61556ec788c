/**
 * Which headers belong to one connection and are never forwarded (RFC 9110 §7.6.1): the one list
 * of the balancer's proxy (forward-headers.ts) and of the no-Docker page server of `npm start`
 * (scripts/static-server.mjs), so both hops strip the same headers.
 *
 * The page server imports this file as it is, TypeScript run by Node's type stripping (no build
 * step between a change here and `npm start`): keep it free of imports and of syntax that is not
 * erasable (the tsconfig's erasableSyntaxOnly checks the latter).
 */

/** Headers that describe a single connection, plus the ones Node/undici set themselves. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // RFC 7540 §3.2.1: the settings of an h2c upgrade belong to this connection only.
  'http2-settings',
  // undici refuses `expect`; Node's server already answered any 100-continue.
  'expect',
]);

/** Names listed in a Connection header are hop-by-hop too; undefined when it names none. */
export function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (value === undefined || value === '') return undefined;
  const tokens = new Set<string>();
  for (const t of value.split(',')) {
    const name = t.trim().toLowerCase();
    if (name !== '' && name !== 'close' && name !== 'keep-alive') tokens.add(name);
  }
  return tokens.size > 0 ? tokens : undefined;
}
