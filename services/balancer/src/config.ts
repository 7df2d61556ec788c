import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { POLICIES } from './picker/policy.js';
import type { UpstreamAddress } from './upstreams/address.js';

/** How an option is set from outside: its flag, env twin, default and help. */
export interface OptionMeta {
  readonly flag: string;
  readonly env: string;
  /** Raw text, parsed like a given value; '' = none. */
  readonly fallback: string;
  readonly help: string;
  /** What a valid value looks like; a bad value is reported as `--flag "value": expected <accepts>`. */
  readonly accepts: string;
  /** An on/off switch: `--flag` alone turns it on, `--no-flag` off. */
  readonly boolean?: true;
  /** Given several times (`--upstream`), or comma-separated in env. */
  readonly multiple?: true;
}

/** The CLI side of each leaf of the config schema: the options table is read from here. */
const cli = z.registry<OptionMeta>();

/** A leaf of the config schema that is set by a flag and its env twin. */
function option<S extends z.ZodType>(schema: S, meta: OptionMeta): S {
  cli.add(schema, meta);
  return schema;
}
type Meta = Omit<OptionMeta, 'accepts' | 'boolean'>;
const text = <S extends z.ZodType>(schema: S, accepts: string, meta: Meta): S => option(schema, { ...meta, accepts });

/** Whole numbers only; z.coerce so that env and argv text is read as a number. */
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const integer = (min: number, max: number, meta: Meta) => text(int(min, max), `an integer ${min}-${max}`, meta);
const oneOf = <const T extends readonly [string, ...string[]]>(values: T, meta: Meta) => text(z.enum(values), `one of ${values.join(', ')}`, meta);
const TRUE = ['1', 'true', 'yes', 'on'] as const;
const FALSE = ['0', 'false', 'no', 'off'] as const;
const onOff = (meta: Meta) =>
  option(
    z.enum([...TRUE, ...FALSE]).transform((v) => (TRUE as readonly string[]).includes(v)),
    { ...meta, accepts: `on or off (${TRUE.join(', ')} / ${FALSE.join(', ')})`, boolean: true },
  );

/** Comma-separated list; empty (or "none") is the empty list. */
const list = (value: string): string[] => (value.trim() === '' || value.trim() === 'none' ? [] : value.split(',').map((t) => t.trim()));
const statusList = () =>
  z.string().transform((value, ctx) => {
    const out: number[] = [];
    for (const item of list(value)) {
      const n = Number(item);
      if (!/^\d{3}$/.test(item) || n < 400 || n > 599) ctx.addIssue({ code: 'custom', message: `"${item}" is not an HTTP status between 400 and 599` });
      else out.push(n);
    }
    return [...new Set(out)];
  });
/** CIDRs or single addresses (IPv4 or IPv6); normalised to `address/prefix`. */
const cidrList = () =>
  z.string().transform((value, ctx) => {
    const out: string[] = [];
    for (const item of list(value)) {
      const [address = '', prefix, extra] = item.split('/');
      const family = isIP(address);
      const max = family === 6 ? 128 : 32;
      const bits = prefix === undefined ? max : Number(prefix);
      if (family === 0 || extra !== undefined || !Number.isInteger(bits) || bits < 0 || bits > max || (prefix !== undefined && !/^\d+$/.test(prefix))) {
        ctx.addIssue({ code: 'custom', message: `"${item}" is not an IP address or CIDR (e.g. 10.0.0.0/8, 172.16.0.5, fd00::/8)` });
      } else out.push(`${address}/${bits}`);
    }
    return out;
  });

const UPSTREAM_RE = /^(?:http:\/\/)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})\/?(?:=(\d+))?$/;

/** Parses `host:port` or `host:port=weight` (weight 1..1000, default 1). */
export function parseUpstream(text: string): UpstreamAddress | string {
  const m = UPSTREAM_RE.exec(text.trim());
  if (!m) return `upstream "${text}": expected host:port or host:port=weight`;
  const host = (m[1] ?? '').replace(/^\[|\]$/g, '');
  const portNumber = Number(m[2]);
  const weight = m[3] === undefined ? 1 : Number(m[3]);
  if (portNumber < 1 || portNumber > 65535) return `upstream "${text}": port must be 1-65535`;
  if (weight < 1 || weight > 1000) return `upstream "${text}": weight must be 1-1000`;
  return { host, port: portNumber, weight };
}

/** One upstream; the message of a bad one is parseUpstream's, without the `upstream "x": ` it starts with. */
const upstreamItem = z.string().transform((value, ctx) => {
  const parsed = parseUpstream(value);
  if (typeof parsed !== 'string') return parsed;
  ctx.addIssue({ code: 'custom', message: parsed.slice(`upstream "${value}": `.length) });
  return z.NEVER;
});
/** Refuses a host:port given twice (an upstream or a peer listed twice is a typo, not a weight). */
function distinctHostPorts(items: readonly { host: string; port: number }[], ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  items.forEach((item, i) => {
    const id = `${item.host}:${item.port}`;
    if (seen.has(id)) ctx.addIssue({ code: 'custom', path: [i], message: 'listed twice' });
    seen.add(id);
  });
}
const upstreamList = z.array(upstreamItem).superRefine(distinctHostPorts);

const PEER_RE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;
/** One peer balancer, `host:port` (its --peers-port); brackets around an IPv6 literal. */
const peerItem = z.string().transform((value, ctx) => {
  const m = PEER_RE.exec(value.trim());
  const port = Number(m?.[2]);
  if (m === null || port < 1 || port > 65535) {
    ctx.addIssue({ code: 'custom', message: m === null ? 'expected host:port (the peer\'s --peers-port)' : 'port must be 1-65535' });
    return z.NEVER;
  }
  return { host: (m[1] ?? '').replace(/^\[|\]$/g, ''), port };
});
const peerList = z.array(peerItem).superRefine(distinctHostPorts);

/**
 * The balancer's settings, once: shape, validation, defaults, flags, env and help. `Config` is
 * inferred from it and the options table (`--help`, argv, env) is read from its leaves, so the
 * three cannot drift apart.
 */
const configSchema = z.object({
  upstreams: option(upstreamList, { flag: 'upstream', env: 'LB_UPSTREAMS', fallback: '', help: 'an upstream HOST:PORT[=WEIGHT] (repeatable; also positional arguments)', accepts: 'host:port or host:port=weight (weight 1-1000)', multiple: true }),
  host: text(z.string().min(1), 'a host name or address', { flag: 'host', env: 'LB_HOST', fallback: '127.0.0.1', help: 'address of the data port' }),
  port: integer(0, 65535, { flag: 'port', env: 'LB_PORT', fallback: '8001', help: 'data port' }),
  adminHost: text(z.string().min(1), 'a host name or address', { flag: 'admin-host', env: 'LB_ADMIN_HOST', fallback: '127.0.0.1', help: 'address of the admin port (metrics, API, events)' }),
  adminPort: integer(0, 65535, { flag: 'admin-port', env: 'LB_ADMIN_PORT', fallback: '9001', help: 'admin port' }),
  discovery: z.object({
    name: text(z.string().transform((name) => name.trim()), 'a DNS name', { flag: 'discovery-dns', env: 'LB_DISCOVERY_DNS', fallback: '', help: 'DNS name whose A records are the upstreams, re-resolved on an interval (e.g. backend)' }),
    port: integer(1, 65535, { flag: 'discovery-port', env: 'LB_DISCOVERY_PORT', fallback: '8002', help: 'port of DNS-discovered upstreams' }),
    intervalMs: integer(100, 3_600_000, { flag: 'discovery-interval-ms', env: 'LB_DISCOVERY_INTERVAL_MS', fallback: '1000', help: 'how often to re-resolve the DNS name' }),
  }).transform((discovery) => (discovery.name === '' ? undefined : discovery)),
  // Balancers that share their in-flight counts (src/peers/peers.ts; transport and rate: bench/PEERS.md).
  peers: z.object({
    static: option(peerList, { flag: 'peer', env: 'LB_PEERS', fallback: '', help: 'a peer balancer HOST:PORT (its --peers-port, UDP) to share in-flight counts with (repeatable; a name is re-resolved like --peers-dns)', accepts: 'host:port', multiple: true }),
    dns: text(z.string().transform((name) => name.trim()), 'a DNS name', { flag: 'peers-dns', env: 'LB_PEERS_DNS', fallback: '', help: 'DNS name whose A records are the peer balancers at --peers-port (this one among them: it recognises and skips itself), re-resolved every --peers-dns-interval-ms' }),
    port: integer(0, 65535, { flag: 'peers-port', env: 'LB_PEERS_PORT', fallback: '9001', help: 'UDP port on --admin-host where this balancer receives peer reports, and the port of --peers-dns peers (the admin port\'s default number, in UDP)' }),
    intervalMs: integer(5, 10_000, { flag: 'peer-interval-ms', env: 'LB_PEER_INTERVAL_MS', fallback: '20', help: 'how often this balancer sends its in-flight counts to each peer' }),
    timeoutMs: integer(10, 600_000, { flag: 'peer-timeout-ms', env: 'LB_PEER_TIMEOUT_MS', fallback: '250', help: 'a peer silent for longer is dropped: its counts stop counting until it reports again' }),
    sharing: onOff({ flag: 'peer-sharing', env: 'LB_PEER_SHARING', fallback: 'on', help: 'share in-flight counts with the peers from the start (off: hear them, send nothing, pick on own counts; switched at runtime by PUT /api/peers)' }),
    dnsIntervalMs: integer(100, 3_600_000, { flag: 'peers-dns-interval-ms', env: 'LB_PEERS_DNS_INTERVAL_MS', fallback: '1000', help: 'how often to re-resolve --peers-dns (and --peer names)' }),
  }),
  policy: oneOf(POLICIES, { flag: 'policy', env: 'LB_POLICY', fallback: 'least-connections', help: `selection policy: ${POLICIES.join(' | ')} (switchable at runtime: PUT /api/policy)` }),
  tieBreak: oneOf(['latency', 'rotation', 'random'] as const, {
    flag: 'tie-break',
    env: 'LB_TIE_BREAK',
    fallback: 'latency',
    help: 'how ties between equally loaded upstreams are broken: latency (rotate among the ones not much slower lately than the typical one) | rotation | random',
  }),
  explain: onOff({ flag: 'explain', env: 'LB_EXPLAIN', fallback: 'false', help: 'add X-Lb-Decision to responses: the candidates and why one won (internal addresses)' }),
  exposeUpstream: onOff({ flag: 'expose-upstream', env: 'LB_EXPOSE_UPSTREAM', fallback: 'false', help: 'add X-Upstream to responses: the address of the upstream that served it' }),
  trustedProxies: text(cidrList(), 'comma-separated IP addresses or CIDRs (e.g. 10.0.0.0/8, 172.16.0.5, fd00::/8), or none', { flag: 'trusted-proxies', env: 'LB_TRUSTED_PROXIES', fallback: '', help: 'comma-separated CIDRs of proxies in front whose X-Forwarded-*/Forwarded headers are kept and extended; from other peers they are replaced' }),
  logLevel: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, { flag: 'log-level', env: 'LB_LOG_LEVEL', fallback: 'info', help: 'fatal | error | warn | info | debug (access log) | trace | silent' }),
  connectTimeoutMs: integer(1, 600_000, { flag: 'connect-timeout-ms', env: 'LB_CONNECT_TIMEOUT_MS', fallback: '500', help: 'give up connecting to an upstream after this long (then retry elsewhere)' }),
  headersTimeoutMs: integer(1, 3_600_000, { flag: 'headers-timeout-ms', env: 'LB_HEADERS_TIMEOUT_MS', fallback: '60000', help: 'wait this long for an upstream\'s response headers (504 after)' }),
  bodyTimeoutMs: integer(1, 3_600_000, { flag: 'body-timeout-ms', env: 'LB_BODY_TIMEOUT_MS', fallback: '60000', help: 'max silence between two chunks of an upstream\'s body' }),
  keepAliveTimeoutMs: integer(1, 600_000, { flag: 'keep-alive-timeout-ms', env: 'LB_KEEP_ALIVE_TIMEOUT_MS', fallback: '4000', help: 'how long an idle upstream socket is kept' }),
  retries: integer(0, 10, { flag: 'retries', env: 'LB_RETRIES', fallback: '2', help: 'extra attempts on other upstreams: any request whose connection failed, body-less idempotent ones after a reset or header timeout' }),
  retryOnStatus: text(statusList(), 'comma-separated HTTP statuses 400-599, or none', { flag: 'retry-on-status', env: 'LB_RETRY_ON_STATUS', fallback: '502,503,504', help: 'upstream statuses after which a body-less idempotent request is sent to another upstream (none = off); the client gets the last answer if all fail' }),
  tryTimeoutMs: integer(0, 3_600_000, { flag: 'try-timeout-ms', env: 'LB_TRY_TIMEOUT_MS', fallback: '0', help: 'per-attempt deadline for response headers, then a replayable request goes to another upstream (Envoy per_try_timeout); 0 = none' }),
  panic: onOff({ flag: 'panic', env: 'LB_PANIC', fallback: 'true', help: 'when every upstream fails its checks, use all of them rather than answer 503 (--no-panic: off)' }),
  health: z.object({
    path: text(z.string().startsWith('/'), 'a path starting with /', { flag: 'health-path', env: 'LB_HEALTH_PATH', fallback: '/healthz', help: 'path of the active health probe' }),
    intervalMs: integer(0, 3_600_000, { flag: 'health-interval-ms', env: 'LB_HEALTH_INTERVAL_MS', fallback: '1000', help: 'active probe interval; 0 disables active checks' }),
    downIntervalMs: integer(10, 3_600_000, { flag: 'health-down-interval-ms', env: 'LB_HEALTH_DOWN_INTERVAL_MS', fallback: '250', help: 'probe interval while an upstream is down or unproven, or after a failed probe (a restarted upstream is back within rise x this)' }),
    maxBodyBytes: integer(0, 16_777_216, { flag: 'health-max-body-bytes', env: 'LB_HEALTH_MAX_BODY_BYTES', fallback: '65536', help: 'a probe reads the whole body; a longer one fails the probe' }),
    timeoutMs: integer(1, 600_000, { flag: 'health-timeout-ms', env: 'LB_HEALTH_TIMEOUT_MS', fallback: '1000', help: 'a probe slower than this fails' }),
    rise: integer(1, 100, { flag: 'health-rise', env: 'LB_HEALTH_RISE', fallback: '2', help: 'consecutive passing probes before a down upstream is up again' }),
    fall: integer(1, 100, { flag: 'health-fall', env: 'LB_HEALTH_FALL', fallback: '2', help: 'consecutive failing probes before an up upstream is down' }),
  }),
  passiveDownMs: integer(1, 3_600_000, { flag: 'passive-down-ms', env: 'LB_PASSIVE_DOWN_MS', fallback: '10000', help: 'first ejection of a failing upstream (doubles while it keeps failing, up to 5 min)' }),
  // 15 s: the seed's slowest image takes 10 s, and one that started just before SIGTERM must finish.
  shutdownTimeoutMs: integer(0, 3_600_000, { flag: 'shutdown-timeout-ms', env: 'LB_SHUTDOWN_TIMEOUT_MS', fallback: '15000', help: 'on SIGTERM, how long in-flight requests may take to finish' }),
  adminToken: text(z.string(), 'any text', { flag: 'admin-token', env: 'LB_ADMIN_TOKEN', fallback: '', help: 'bearer token required by the admin write API (drain, weight, max in-flight); unset = writes refused' }),
  adminTokenFile: text(z.string(), 'a file path', { flag: 'admin-token-file', env: 'LB_ADMIN_TOKEN_FILE', fallback: '', help: 'read the admin token from this file (a Docker or Kubernetes secret); surrounding whitespace is dropped, an empty file = writes refused' }),
  lab: onOff({ flag: 'lab', env: 'LB_LAB', fallback: 'false', help: 'the algorithm lab: load runs and policy comparisons from the admin API (/api/lab*) and fault scenarios relayed to the backends; off = those routes answer 404 LB_LAB_DISABLED' }),
  backendAdminToken: text(z.string(), 'any text', { flag: 'backend-admin-token', env: 'LB_BACKEND_ADMIN_TOKEN', fallback: '', help: 'the backends\' BACKEND_ADMIN_TOKEN, so the admin API can switch fault scenarios on them (the lab); unset = refused' }),
  maxInFlight: integer(0, 1_000_000, { flag: 'max-in-flight', env: 'LB_MAX_IN_FLIGHT', fallback: '0', help: 'per-upstream cap on in-flight requests (like HAProxy maxconn); 0 = none' }),
  queueLength: integer(0, 1_000_000, { flag: 'queue-length', env: 'LB_QUEUE_LENGTH', fallback: '1024', help: 'requests that may wait when every upstream is at its cap (503 LB_QUEUE_FULL beyond)' }),
  queueTimeoutMs: integer(1, 3_600_000, { flag: 'queue-timeout-ms', env: 'LB_QUEUE_TIMEOUT_MS', fallback: '5000', help: 'longest wait in the queue (503 LB_QUEUE_TIMEOUT after)' }),
  slowStartMs: integer(0, 3_600_000, { flag: 'slow-start-ms', env: 'LB_SLOW_START_MS', fallback: '0', help: 'ramp the weight of a joining or recovering upstream over this long; 0 = off' }),
  retryBudgetPercent: integer(0, 100, { flag: 'retry-budget-percent', env: 'LB_RETRY_BUDGET_PERCENT', fallback: '20', help: 'retries allowed as a percentage of requests over 10 s' }),
  retryBudgetMin: integer(0, 1_000_000, { flag: 'retry-budget-min', env: 'LB_RETRY_BUDGET_MIN', fallback: '10', help: 'retries always allowed per 10 s' }),
  requestTimeoutMs: integer(0, 3_600_000, { flag: 'request-timeout-ms', env: 'LB_REQUEST_TIMEOUT_MS', fallback: '0', help: 'total deadline for an upstream response, headers and body; 0 = none' }),
  clientHeaderTimeoutMs: integer(1, 3_600_000, { flag: 'client-header-timeout-ms', env: 'LB_CLIENT_HEADER_TIMEOUT_MS', fallback: '10000', help: 'a client must send its request headers within this (408 after)' }),
  clientKeepAliveTimeoutMs: integer(1, 3_600_000, { flag: 'client-keep-alive-timeout-ms', env: 'LB_CLIENT_KEEP_ALIVE_TIMEOUT_MS', fallback: '5000', help: 'idle client connections are closed after this' }),
  maxHeaderBytes: integer(1024, 1_048_576, { flag: 'max-header-bytes', env: 'LB_MAX_HEADER_BYTES', fallback: '16384', help: 'largest request head accepted (431 above)' }),
  passiveFailures: integer(1, 1_000_000, { flag: 'passive-failures', env: 'LB_PASSIVE_FAILURES', fallback: '5', help: 'failures within the window that eject an upstream (outlier detection)' }),
  passiveWindowMs: integer(1, 3_600_000, { flag: 'passive-window-ms', env: 'LB_PASSIVE_WINDOW_MS', fallback: '10000', help: 'sliding window of the passive failure count' }),
  passive5xx: onOff({ flag: 'passive-5xx', env: 'LB_PASSIVE_5XX', fallback: 'true', help: 'count 5xx answers as passive failures' }),
  workers: text(z.union([z.literal('auto'), int(1, 256)]).transform((n) => (n === 'auto' ? 0 : n)), 'an integer 1-256 or "auto"', { flag: 'workers', env: 'LB_WORKERS', fallback: 'auto', help: 'threads on the data path, sharing exact in-flight counts; auto = CPUs available (a container CPU limit included) minus one, at least 1: more threads pay only with CPUs to spare for the kernel and whatever shares the host (more than 1 needs Node >= 22.12)' }),
  eventsIntervalMs: integer(20, 60_000, { flag: 'events-interval-ms', env: 'LB_EVENTS_INTERVAL_MS', fallback: '100', help: 'period of the /api/events snapshots (100 ms = 10 per second)' }),
});

type DeepReadonly<T> = T extends readonly (infer U)[] ? readonly DeepReadonly<U>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

/**
 * How the admin token was given (never the token): a refused admin write names from it the knob
 * that would enable writes on this balancer.
 */
export type AdminTokenSource =
  /** Neither token nor file: `token` and `file` are the knobs of the way this balancer was configured (flags or env). */
  | { readonly kind: 'unset'; readonly token: string; readonly file: string }
  /** Given directly by `knob` (possibly empty: `--admin-token ''`, `LB_ADMIN_TOKEN=`). */
  | { readonly kind: 'token'; readonly knob: string }
  /** Read from the file at `path`, named by `knob`. */
  | { readonly kind: 'file'; readonly knob: string; readonly path: string };

/** The balancer's settings, validated once at start and frozen (see configSchema for each one). */
export type Config = DeepReadonly<z.output<typeof configSchema> & { adminTokenSource: AdminTokenSource }>;

/** What the command line asked for besides the config itself. */
export type ParseResult =
  | { readonly kind: 'config'; readonly config: Config; readonly check: boolean }
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'error'; readonly errors: readonly string[] };

/** A leaf of the schema that is an option: where it sits in Config, and how it is set. */
export interface OptionEntry {
  readonly path: readonly string[];
  readonly meta: OptionMeta;
}

/** Every option, in schema order, read from the schema (an unregistered leaf is a bug: it throws). */
function optionsOf(shape: Readonly<Record<string, z.ZodType>>, prefix: readonly string[] = []): OptionEntry[] {
  const out: OptionEntry[] = [];
  for (const [key, schema] of Object.entries(shape)) {
    const path = [...prefix, key];
    const meta = cli.get(schema);
    if (meta !== undefined) out.push({ path, meta });
    else {
      // A group (health, discovery): an object, possibly behind a transform.
      const inner = schema instanceof z.ZodPipe ? schema.in : schema;
      if (!(inner instanceof z.ZodObject)) throw new Error(`config field ${path.join('.')} has no option`);
      out.push(...optionsOf(inner.shape, path));
    }
  }
  return out;
}

/** The options table: every flag, its env twin, default, what it accepts and its place in Config. */
export const OPTIONS: readonly OptionEntry[] = Object.freeze(optionsOf(configSchema.shape));
const BY_FLAG = new Map(OPTIONS.map((o) => [o.meta.flag, o]));
const UPSTREAMS = OPTIONS.find((o) => o.path.length === 1 && o.path[0] === 'upstreams');
const optionAt = (key: keyof Config): OptionEntry => {
  const entry = OPTIONS.find((o) => o.path.length === 1 && o.path[0] === key);
  if (entry === undefined) throw new Error(`config field ${key} has no option`);
  return entry;
};
const ADMIN_TOKEN = optionAt('adminToken');
const ADMIN_TOKEN_FILE = optionAt('adminTokenFile');

/** The `--help` text, generated from the option table. */
export function helpText(): string {
  const lines = [
    'Usage: balancer [options] [HOST:PORT[=WEIGHT] ...]',
    '',
    'A least-connections HTTP load balancer. Upstreams are positional arguments, --upstream',
    '(repeatable), LB_UPSTREAMS=a,b, or DNS discovery (--discovery-dns). Flags win over env.',
    '',
    'Options:',
  ];
  for (const { meta } of OPTIONS) {
    const left = `  --${meta.flag}${meta.boolean ? '' : ' V'} `.padEnd(36);
    lines.push(`${left}${meta.help} (default ${meta.fallback || 'none'})  [${meta.env}]`);
  }
  lines.push('  --no-FLAG                          turns an on/off option off (--no-panic, --no-passive-5xx)');
  lines.push('  --check                           validate the configuration and exit (like nginx -t)');
  lines.push('  --help                            this text');
  return lines.join('\n');
}

/** Reads a small text file (the admin token file); injectable so that parsing stays testable. */
export type ReadText = (path: string) => string;

const readTextFile: ReadText = (path) => readFileSync(path, 'utf8');

/** A value as given, and who gave it: `--flag`, the env var, an argument, or the default. */
interface Given {
  readonly value: string | readonly string[];
  /** Per item for a list given on the command line (positional or `--upstream`). */
  readonly source: string | readonly string[];
}

const sourceOf = (given: Given, index: PropertyKey | undefined): string =>
  typeof given.source === 'string' ? given.source : (given.source[typeof index === 'number' ? index : 0] ?? 'upstream');

/** Flags understood besides the options: they are not settings. */
const COMMANDS = { help: { type: 'boolean' }, check: { type: 'boolean' } } as const;

/**
 * Parses argv (without node and script) and env into a Config; defaults < env < flags. Every
 * problem is collected (unknown flags, missing and bad values, from argv and env alike) and
 * reported together. Pure but for reading --admin-token-file through `readText`.
 */
export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, readText: ReadText = readTextFile): ParseResult {
  const errors: string[] = [];
  const flags = new Map<OptionEntry, Given>();
  const positionals: string[] = [];
  const flagUpstreams: string[] = [];
  // Other repeatable options (--peer): every value given, in order.
  const repeated = new Map<OptionEntry, string[]>();
  let check = false;
  // Whether settings came on the command line (vs only the environment): the knobs to name later.
  let commandLine = false;

  // Not strict: parseArgs would stop at the first unknown flag, and every problem is wanted at once.
  const { tokens } = parseArgs({
    args: [...argv],
    options: { ...COMMANDS, ...Object.fromEntries(OPTIONS.map((o) => [o.meta.flag, { type: o.meta.boolean ? 'boolean' : 'string' } as const])) },
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  for (const token of tokens) {
    if (token.kind === 'positional') {
      positionals.push(token.value);
      commandLine = true;
    }
    if (token.kind !== 'option') continue;
    if (token.name === 'help') return { kind: 'help', text: helpText() };
    if (token.name === 'check') {
      check = true;
      continue;
    }
    commandLine = true;
    // `--no-panic`, `--no-passive-5xx`: the off switch of a boolean option.
    const negated = token.name.startsWith('no-') && token.value === undefined ? BY_FLAG.get(token.name.slice(3)) : undefined;
    if (negated?.meta.boolean === true) {
      flags.set(negated, { value: 'false', source: token.rawName });
      continue;
    }
    const entry = BY_FLAG.get(token.name);
    if (entry === undefined) {
      errors.push(`unknown option ${token.rawName} (see --help)`);
      continue;
    }
    // parseArgs takes the next argument as the value even when it is another flag.
    if (!entry.meta.boolean && (token.value === undefined || (!token.inlineValue && token.value.startsWith('--')))) {
      errors.push(`option ${token.rawName} needs a value${token.value === undefined ? '' : ` (got the flag ${token.value})`}`);
      continue;
    }
    const value = token.value ?? 'true';
    if (entry === UPSTREAMS) flagUpstreams.push(value);
    else if (entry.meta.multiple === true) repeated.set(entry, [...(repeated.get(entry) ?? []), value]);
    else flags.set(entry, { value, source: token.rawName });
  }

  // What each option was given: flag, else env, else its default.
  const given = new Map<OptionEntry, Given>();
  const input: Record<string, unknown> = {};
  for (const entry of OPTIONS) {
    const { env: name, fallback } = entry.meta;
    const fromEnv = env[name];
    let chosen: Given;
    if (entry === UPSTREAMS) {
      const fromFlags = [...positionals.map((p) => ({ p, source: 'upstream' })), ...flagUpstreams.map((p) => ({ p, source: '--upstream' }))];
      chosen =
        fromFlags.length > 0
          ? { value: fromFlags.map((f) => f.p), source: fromFlags.map((f) => f.source) }
          : { value: (fromEnv ?? '').split(',').filter((s) => s.trim() !== ''), source: name };
    } else if (entry.meta.multiple === true) {
      const fromFlags = repeated.get(entry) ?? [];
      chosen = fromFlags.length > 0 ? { value: fromFlags, source: fromFlags.map(() => `--${entry.meta.flag}`) } : { value: list(fromEnv ?? ''), source: name };
    } else {
      chosen = flags.get(entry) ?? (fromEnv !== undefined && fromEnv !== '' ? { value: fromEnv, source: name } : { value: fallback, source: 'default' });
    }
    given.set(entry, chosen);
    let at = input;
    for (const key of entry.path.slice(0, -1)) at = (at[key] ??= {}) as Record<string, unknown>;
    at[entry.path.at(-1) ?? ''] = chosen.value;
  }

  const result = configSchema.safeParse(input);
  if (!result.success) {
    for (const issue of result.error.issues) errors.push(describe(issue, given));
  }
  if (!result.success || errors.length > 0) return { kind: 'error', errors };

  const parsed = result.data;
  if (parsed.upstreams.length === 0 && parsed.discovery === undefined) {
    errors.push('no upstreams: give HOST:PORT arguments, --upstream, LB_UPSTREAMS or --discovery-dns');
  }
  errors.push(...peerProblems(parsed.peers));
  let { adminToken } = parsed;
  if (parsed.adminTokenFile !== '') {
    if (adminToken !== '') errors.push('--admin-token / LB_ADMIN_TOKEN and --admin-token-file / LB_ADMIN_TOKEN_FILE: give one, not both');
    else {
      try {
        adminToken = readText(parsed.adminTokenFile).trim();
      } catch (err) {
        errors.push(`--admin-token-file / LB_ADMIN_TOKEN_FILE: cannot read ${parsed.adminTokenFile} (${(err as { code?: string }).code ?? String(err)})`);
      }
    }
  }
  if (errors.length > 0) return { kind: 'error', errors };
  const adminTokenSource = adminTokenSourceOf(given, env, commandLine, parsed.adminTokenFile);
  return { kind: 'config', config: deepFreeze({ ...parsed, adminToken, adminTokenSource }), check };
}

/** Settings of count sharing that are valid one by one but not together. */
function peerProblems(peers: z.output<typeof configSchema>['peers']): string[] {
  const out: string[] = [];
  if (peers.timeoutMs <= peers.intervalMs) {
    out.push(`--peer-timeout-ms / LB_PEER_TIMEOUT_MS (${peers.timeoutMs}) must be longer than --peer-interval-ms / LB_PEER_INTERVAL_MS (${peers.intervalMs}): every peer would be dropped between two of its reports`);
  }
  if (peers.dns !== '' && peers.port === 0) out.push('--peers-dns / LB_PEERS_DNS needs a --peers-port / LB_PEERS_PORT other than 0: it is the port of every peer it finds');
  return out;
}

/** Who gave the admin token or its file, else which pair of knobs fits how the balancer was configured. */
function adminTokenSourceOf(given: ReadonlyMap<OptionEntry, Given>, env: Readonly<Record<string, string | undefined>>, commandLine: boolean, file: string): AdminTokenSource {
  const whoGave = (entry: OptionEntry): string => {
    const from = given.get(entry);
    return from === undefined ? 'default' : sourceOf(from, undefined);
  };
  if (file !== '') return { kind: 'file', knob: whoGave(ADMIN_TOKEN_FILE), path: file };
  if (whoGave(ADMIN_TOKEN) !== 'default') return { kind: 'token', knob: whoGave(ADMIN_TOKEN) };
  // An empty env value counts as unset for every option, but whoever wrote `LB_ADMIN_TOKEN=` meant this knob.
  if (env[ADMIN_TOKEN.meta.env] === '') return { kind: 'token', knob: ADMIN_TOKEN.meta.env };
  return commandLine
    ? { kind: 'unset', token: `--${ADMIN_TOKEN.meta.flag}`, file: `--${ADMIN_TOKEN_FILE.meta.flag}` }
    : { kind: 'unset', token: ADMIN_TOKEN.meta.env, file: ADMIN_TOKEN_FILE.meta.env };
}

/** One problem, naming who gave the value, the value, and what is accepted. */
function describe(issue: z.core.$ZodIssue, given: ReadonlyMap<OptionEntry, Given>): string {
  const entry = OPTIONS.find((o) => o.path.every((key, i) => issue.path[i] === key));
  const from = entry === undefined ? undefined : given.get(entry);
  if (entry === undefined || from === undefined) return issue.message;
  // A list (upstreams): the item at fault, not the whole list.
  const index = issue.path[entry.path.length];
  const value = Array.isArray(from.value) && typeof index === 'number' ? String(from.value[index]) : String(from.value);
  // Our own checks say exactly what is wrong and what would do; the library's text ("Invalid input") does not.
  return `${sourceOf(from, index)} "${value}": ${issue.code === 'custom' ? issue.message : `expected ${entry.meta.accepts}`}`;
}

function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value as DeepReadonly<T>;
}
