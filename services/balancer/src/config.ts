import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';
import type { TieBreak } from './picker/least-connections.js';
import { POLICIES } from './picker/policy.js';
import type { PolicyName } from './picker/policy.js';
import type { UpstreamAddress } from './upstreams/upstream.js';

/** The balancer's settings, validated once at start and frozen. */
export interface Config {
  readonly host: string;
  readonly port: number;
  readonly adminHost: string;
  readonly adminPort: number;
  readonly upstreams: readonly UpstreamAddress[];
  readonly discovery: { readonly name: string; readonly port: number; readonly intervalMs: number } | undefined;
  readonly tieBreak: TieBreak;
  /** Selection policy at start; switchable at runtime through the admin API. */
  readonly policy: PolicyName;
  readonly explain: boolean;
  /** Whether responses name the upstream that served them (`X-Upstream`): internal addresses, off by default. */
  readonly exposeUpstream: boolean;
  /**
   * Peers (CIDRs) whose X-Forwarded-* and Forwarded headers are believed and extended; from any
   * other peer they are replaced. Empty = trust nobody.
   */
  readonly trustedProxies: readonly string[];
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** Extra attempts on other upstreams for a request that never reached one, or an idempotent one. */
  readonly retries: number;
  /** Upstream statuses that send a body-less idempotent request to another upstream (before any byte reaches the client). */
  readonly retryOnStatus: readonly number[];
  /** Per-attempt deadline for the response headers; past it a replayable request goes elsewhere. 0 = none. */
  readonly tryTimeoutMs: number;
  /** When no upstream passes its checks, spread requests over all of them instead of refusing (Envoy's panic threshold). */
  readonly panic: boolean;
  readonly health: {
    readonly path: string;
    /** 0 disables active checks: then every upstream counts as up until it fails a connect. */
    readonly intervalMs: number;
    /** Interval while an upstream is down or unproven, or after a failed probe (HAProxy's downinter/fastinter). */
    readonly downIntervalMs: number;
    readonly timeoutMs: number;
    /** Largest probe body read; a longer one fails the probe (it could not be read to its end). */
    readonly maxBodyBytes: number;
    readonly rise: number;
    readonly fall: number;
  };
  /** How long a failed upstream stays down without active checks (passive ejection). */
  readonly passiveDownMs: number;
  readonly shutdownTimeoutMs: number;
  readonly eventsIntervalMs: number;
  /** Bearer token for the admin write API; empty = writes refused (403). */
  readonly adminToken: string;
  /** The backends' BACKEND_ADMIN_TOKEN, for the lab's fault scenarios; empty = scenarios refused. */
  readonly backendAdminToken: string;
  /** Per-upstream cap on in-flight requests (HAProxy maxconn); 0 = no cap. */
  readonly maxInFlight: number;
  /** Requests that may wait for capacity when every available upstream is full. */
  readonly queueLength: number;
  readonly queueTimeoutMs: number;
  /** Ramp of a joining or recovering upstream's weight; 0 = off. */
  readonly slowStartMs: number;
  /** Retries allowed as a share of requests over the last 10 s (Envoy-style retry budget). */
  readonly retryBudgetPercent: number;
  /** Retries always allowed per 10 s, however few requests there were. */
  readonly retryBudgetMin: number;
  /** Whole-request deadline on the upstream side (headers and body); 0 = none. */
  readonly requestTimeoutMs: number;
  /** Client must send its request headers within this (slowloris guard, 408 after). */
  readonly clientHeaderTimeoutMs: number;
  /** Idle client keep-alive connections are closed after this. */
  readonly clientKeepAliveTimeoutMs: number;
  /** Largest request head accepted (431 above). */
  readonly maxHeaderBytes: number;
  /** Passive outlier detection: this many failures within the window eject an upstream. */
  readonly passiveFailures: number;
  readonly passiveWindowMs: number;
  /** Whether 5xx answers count as passive failures. */
  readonly passive5xx: boolean;
  /** Data-path threads; 0 = as many as CPUs available to the process (see cluster/workers.ts). */
  readonly workers: number;
}

/** What the command line asked for besides the config itself. */
export type ParseResult =
  | { readonly kind: 'config'; readonly config: Config; readonly check: boolean }
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'error'; readonly errors: readonly string[] };

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const port = int(1, 65535);
/** A port to listen on: 0 lets the OS choose (tests, side-by-side runs). */
const listenPort = int(0, 65535);
const ms = int(0, 3_600_000);
/** Comma-separated list; empty (or "none") is the empty list. */
const list = (text: string): string[] => (text.trim() === '' || text.trim() === 'none' ? [] : text.split(',').map((t) => t.trim()));
const statusList = z.string().transform((text, ctx) => {
  const out: number[] = [];
  for (const item of list(text)) {
    const n = Number(item);
    if (!/^\d{3}$/.test(item) || n < 400 || n > 599) ctx.addIssue({ code: 'custom', message: `"${item}" is not an HTTP status between 400 and 599` });
    else out.push(n);
  }
  return [...new Set(out)];
});
/** CIDRs or single addresses (IPv4 or IPv6); normalised to `address/prefix`. */
const cidrList = z.string().transform((text, ctx) => {
  const out: string[] = [];
  for (const item of list(text)) {
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
const bool = z.enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off']).transform((v) => ['1', 'true', 'yes', 'on'].includes(v));

interface OptionSpec {
  readonly flag: string;
  readonly env: string;
  readonly schema: z.ZodType;
  readonly fallback: string;
  readonly help: string;
  readonly boolean?: true;
}

/** Every option once: flag, env twin, validation, default, help. */
const OPTIONS = {
  host: { flag: 'host', env: 'LB_HOST', schema: z.string().min(1), fallback: '127.0.0.1', help: 'address of the data port' },
  port: { flag: 'port', env: 'LB_PORT', schema: listenPort, fallback: '8001', help: 'data port' },
  adminHost: { flag: 'admin-host', env: 'LB_ADMIN_HOST', schema: z.string().min(1), fallback: '127.0.0.1', help: 'address of the admin port (metrics, API, events)' },
  adminPort: { flag: 'admin-port', env: 'LB_ADMIN_PORT', schema: listenPort, fallback: '9001', help: 'admin port' },
  discoveryDns: { flag: 'discovery-dns', env: 'LB_DISCOVERY_DNS', schema: z.string(), fallback: '', help: 'DNS name whose A records are the upstreams, re-resolved on an interval (e.g. backend)' },
  discoveryPort: { flag: 'discovery-port', env: 'LB_DISCOVERY_PORT', schema: port, fallback: '8002', help: 'port of DNS-discovered upstreams' },
  discoveryIntervalMs: { flag: 'discovery-interval-ms', env: 'LB_DISCOVERY_INTERVAL_MS', schema: int(100, 3_600_000), fallback: '1000', help: 'how often to re-resolve the DNS name' },
  policy: { flag: 'policy', env: 'LB_POLICY', schema: z.enum(POLICIES), fallback: 'least-connections', help: `selection policy: ${POLICIES.join(' | ')} (switchable at runtime: PUT /api/policy)` },
  tieBreak: { flag: 'tie-break', env: 'LB_TIE_BREAK', schema: z.enum(['latency', 'rotation', 'random']), fallback: 'latency', help: 'how ties between equally loaded upstreams are broken: latency (rotate among the ones not much slower lately than the fastest) | rotation | random' },
  explain: { flag: 'explain', env: 'LB_EXPLAIN', schema: bool, fallback: 'false', help: 'add X-Lb-Decision to responses: the candidates and why one won (internal addresses)', boolean: true },
  exposeUpstream: { flag: 'expose-upstream', env: 'LB_EXPOSE_UPSTREAM', schema: bool, fallback: 'false', help: 'add X-Upstream to responses: the address of the upstream that served it', boolean: true },
  trustedProxies: {
    flag: 'trusted-proxies',
    env: 'LB_TRUSTED_PROXIES',
    schema: cidrList,
    fallback: '',
    help: 'comma-separated CIDRs of proxies in front whose X-Forwarded-*/Forwarded headers are kept and extended; from other peers they are replaced',
  },
  logLevel: { flag: 'log-level', env: 'LB_LOG_LEVEL', schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), fallback: 'info', help: 'fatal | error | warn | info | debug (access log) | trace | silent' },
  connectTimeoutMs: { flag: 'connect-timeout-ms', env: 'LB_CONNECT_TIMEOUT_MS', schema: int(1, 600_000), fallback: '500', help: 'give up connecting to an upstream after this long (then retry elsewhere)' },
  headersTimeoutMs: { flag: 'headers-timeout-ms', env: 'LB_HEADERS_TIMEOUT_MS', schema: int(1, 3_600_000), fallback: '60000', help: 'wait this long for an upstream\'s response headers (504 after)' },
  bodyTimeoutMs: { flag: 'body-timeout-ms', env: 'LB_BODY_TIMEOUT_MS', schema: int(1, 3_600_000), fallback: '60000', help: 'max silence between two chunks of an upstream\'s body' },
  keepAliveTimeoutMs: { flag: 'keep-alive-timeout-ms', env: 'LB_KEEP_ALIVE_TIMEOUT_MS', schema: int(1, 600_000), fallback: '4000', help: 'how long an idle upstream socket is kept' },
  retries: { flag: 'retries', env: 'LB_RETRIES', schema: int(0, 10), fallback: '2', help: 'extra attempts on other upstreams: any request whose connection failed, body-less idempotent ones after a reset or header timeout' },
  retryOnStatus: {
    flag: 'retry-on-status',
    env: 'LB_RETRY_ON_STATUS',
    schema: statusList,
    fallback: '502,503,504',
    help: 'upstream statuses after which a body-less idempotent request is sent to another upstream (none = off); the client gets the last answer if all fail',
  },
  tryTimeoutMs: { flag: 'try-timeout-ms', env: 'LB_TRY_TIMEOUT_MS', schema: ms, fallback: '0', help: 'per-attempt deadline for response headers, then a replayable request goes to another upstream (Envoy per_try_timeout); 0 = none' },
  panic: { flag: 'panic', env: 'LB_PANIC', schema: bool, fallback: 'true', help: 'when every upstream fails its checks, use all of them rather than answer 503 (--no-panic: off)', boolean: true },
  healthPath: { flag: 'health-path', env: 'LB_HEALTH_PATH', schema: z.string().startsWith('/'), fallback: '/healthz', help: 'path of the active health probe' },
  healthIntervalMs: { flag: 'health-interval-ms', env: 'LB_HEALTH_INTERVAL_MS', schema: ms, fallback: '1000', help: 'active probe interval; 0 disables active checks' },
  healthDownIntervalMs: {
    flag: 'health-down-interval-ms',
    env: 'LB_HEALTH_DOWN_INTERVAL_MS',
    schema: int(10, 3_600_000),
    fallback: '250',
    help: 'probe interval while an upstream is down or unproven, or after a failed probe (a restarted upstream is back within rise x this)',
  },
  healthMaxBodyBytes: { flag: 'health-max-body-bytes', env: 'LB_HEALTH_MAX_BODY_BYTES', schema: int(0, 16_777_216), fallback: '65536', help: 'a probe reads the whole body; a longer one fails the probe' },
  healthTimeoutMs: { flag: 'health-timeout-ms', env: 'LB_HEALTH_TIMEOUT_MS', schema: int(1, 600_000), fallback: '1000', help: 'a probe slower than this fails' },
  healthRise: { flag: 'health-rise', env: 'LB_HEALTH_RISE', schema: int(1, 100), fallback: '2', help: 'consecutive passing probes before a down upstream is up again' },
  healthFall: { flag: 'health-fall', env: 'LB_HEALTH_FALL', schema: int(1, 100), fallback: '2', help: 'consecutive failing probes before an up upstream is down' },
  passiveDownMs: { flag: 'passive-down-ms', env: 'LB_PASSIVE_DOWN_MS', schema: int(1, 3_600_000), fallback: '10000', help: 'first ejection of a failing upstream (doubles while it keeps failing, up to 5 min)' },
  shutdownTimeoutMs: { flag: 'shutdown-timeout-ms', env: 'LB_SHUTDOWN_TIMEOUT_MS', schema: ms, fallback: '10000', help: 'on SIGTERM, how long in-flight requests may take to finish' },
  adminToken: { flag: 'admin-token', env: 'LB_ADMIN_TOKEN', schema: z.string(), fallback: '', help: 'bearer token required by the admin write API (drain, weight, max in-flight); unset = writes refused' },
  adminTokenFile: { flag: 'admin-token-file', env: 'LB_ADMIN_TOKEN_FILE', schema: z.string(), fallback: '', help: 'read the admin token from this file (a Docker or Kubernetes secret); surrounding whitespace is dropped, an empty file = writes refused' },
  backendAdminToken: { flag: 'backend-admin-token', env: 'LB_BACKEND_ADMIN_TOKEN', schema: z.string(), fallback: '', help: 'the backends\' BACKEND_ADMIN_TOKEN, so the admin API can switch fault scenarios on them (the lab); unset = refused' },
  maxInFlight: { flag: 'max-in-flight', env: 'LB_MAX_IN_FLIGHT', schema: int(0, 1_000_000), fallback: '0', help: 'per-upstream cap on in-flight requests (like HAProxy maxconn); 0 = none' },
  queueLength: { flag: 'queue-length', env: 'LB_QUEUE_LENGTH', schema: int(0, 1_000_000), fallback: '1024', help: 'requests that may wait when every upstream is at its cap (503 LB_QUEUE_FULL beyond)' },
  queueTimeoutMs: { flag: 'queue-timeout-ms', env: 'LB_QUEUE_TIMEOUT_MS', schema: int(1, 3_600_000), fallback: '5000', help: 'longest wait in the queue (503 LB_QUEUE_TIMEOUT after)' },
  slowStartMs: { flag: 'slow-start-ms', env: 'LB_SLOW_START_MS', schema: ms, fallback: '0', help: 'ramp the weight of a joining or recovering upstream over this long; 0 = off' },
  retryBudgetPercent: { flag: 'retry-budget-percent', env: 'LB_RETRY_BUDGET_PERCENT', schema: int(0, 100), fallback: '20', help: 'retries allowed as a percentage of requests over 10 s' },
  retryBudgetMin: { flag: 'retry-budget-min', env: 'LB_RETRY_BUDGET_MIN', schema: int(0, 1_000_000), fallback: '10', help: 'retries always allowed per 10 s' },
  requestTimeoutMs: { flag: 'request-timeout-ms', env: 'LB_REQUEST_TIMEOUT_MS', schema: ms, fallback: '0', help: 'total deadline for an upstream response, headers and body; 0 = none' },
  clientHeaderTimeoutMs: { flag: 'client-header-timeout-ms', env: 'LB_CLIENT_HEADER_TIMEOUT_MS', schema: int(1, 3_600_000), fallback: '10000', help: 'a client must send its request headers within this (408 after)' },
  clientKeepAliveTimeoutMs: { flag: 'client-keep-alive-timeout-ms', env: 'LB_CLIENT_KEEP_ALIVE_TIMEOUT_MS', schema: int(1, 3_600_000), fallback: '5000', help: 'idle client connections are closed after this' },
  maxHeaderBytes: { flag: 'max-header-bytes', env: 'LB_MAX_HEADER_BYTES', schema: int(1024, 1_048_576), fallback: '16384', help: 'largest request head accepted (431 above)' },
  passiveFailures: { flag: 'passive-failures', env: 'LB_PASSIVE_FAILURES', schema: int(1, 1_000_000), fallback: '5', help: 'failures within the window that eject an upstream (outlier detection)' },
  passiveWindowMs: { flag: 'passive-window-ms', env: 'LB_PASSIVE_WINDOW_MS', schema: int(1, 3_600_000), fallback: '10000', help: 'sliding window of the passive failure count' },
  passive5xx: { flag: 'passive-5xx', env: 'LB_PASSIVE_5XX', schema: bool, fallback: 'true', help: 'count 5xx answers as passive failures', boolean: true },
  workers: {
    flag: 'workers',
    env: 'LB_WORKERS',
    schema: z.union([z.literal('auto'), int(1, 256)]),
    fallback: 'auto',
    help: 'threads on the data path, sharing exact in-flight counts; auto = CPUs available, a container CPU limit included (more than 1 needs Node >= 22.12)',
  },
  eventsIntervalMs: { flag: 'events-interval-ms', env: 'LB_EVENTS_INTERVAL_MS', schema: int(20, 60_000), fallback: '100', help: 'period of the /api/events snapshots (100 ms = 10 per second)' },
} as const satisfies Record<string, OptionSpec>;

type Key = keyof typeof OPTIONS;
const BY_FLAG = new Map<string, Key>(Object.entries(OPTIONS).map(([key, spec]) => [spec.flag, key as Key]));

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

/** The `--help` text, generated from the option table. */
export function helpText(): string {
  const lines = [
    'Usage: balancer [options] [HOST:PORT[=WEIGHT] ...]',
    '',
    'A least-connections HTTP load balancer. Upstreams are positional arguments, --upstream',
    '(repeatable), LB_UPSTREAMS=a,b, or DNS discovery (--discovery-dns). Flags win over env.',
    '',
    'Options:',
    '  --upstream HOST:PORT[=W]          an upstream (repeatable)  [LB_UPSTREAMS]',
  ];
  for (const spec of Object.values(OPTIONS) as OptionSpec[]) {
    const left = `  --${spec.flag}${spec.boolean ? '' : ' V'} `.padEnd(36);
    lines.push(`${left}${spec.help} (default ${spec.fallback || 'none'})  [${spec.env}]`);
  }
  lines.push('  --no-FLAG                          turns an on/off option off (--no-panic, --no-passive-5xx)');
  lines.push('  --check                           validate the configuration and exit (like nginx -t)');
  lines.push('  --help                            this text');
  return lines.join('\n');
}

/** Reads a small text file (the admin token file); injectable so that parsing stays testable. */
export type ReadText = (path: string) => string;

const readTextFile: ReadText = (path) => readFileSync(path, 'utf8');

/**
 * Parses argv (without node and script) and env into a Config; defaults < env < flags. Pure but
 * for reading --admin-token-file through `readText`.
 */
export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, readText: ReadText = readTextFile): ParseResult {
  const errors: string[] = [];
  const raw = new Map<Key, string>();
  const flagUpstreams: string[] = [];
  let check = false;

  for (const [key, spec] of Object.entries(OPTIONS) as [Key, OptionSpec][]) {
    const value = env[spec.env];
    if (value !== undefined && value !== '') raw.set(key, value);
  }

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) {
      flagUpstreams.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    if (name === 'help') return { kind: 'help', text: helpText() };
    if (name === 'check') {
      check = true;
      continue;
    }
    // `--no-panic`, `--no-passive-5xx`: the off switch of a boolean option.
    const negated = name.startsWith('no-') && inline === undefined ? BY_FLAG.get(name.slice(3)) : undefined;
    if (negated !== undefined && 'boolean' in OPTIONS[negated]) {
      raw.set(negated, 'false');
      continue;
    }
    const key = name === 'upstream' ? 'upstream' : BY_FLAG.get(name);
    if (key === undefined) {
      errors.push(`unknown option --${name} (see --help)`);
      continue;
    }
    const isBoolean = key !== 'upstream' && 'boolean' in OPTIONS[key];
    let value = inline;
    if (value === undefined && isBoolean) value = 'true';
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) {
        errors.push(`option --${name} needs a value`);
        continue;
      }
      value = next;
      i++;
    }
    if (key === 'upstream') flagUpstreams.push(value);
    else raw.set(key, value);
  }

  const values: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(OPTIONS) as [Key, OptionSpec][]) {
    const source = raw.has(key) ? `--${spec.flag} / ${spec.env}` : 'default';
    const result = spec.schema.safeParse(raw.get(key) ?? spec.fallback);
    if (result.success) values[key] = result.data;
    else errors.push(`${source}: ${z.prettifyError(result.error).replace(/^✖ /gm, '').replace(/\n\s*→.*$/gm, '')}`);
  }

  const upstreamTexts = flagUpstreams.length > 0 ? flagUpstreams : (env.LB_UPSTREAMS ?? '').split(',').filter((s) => s.trim() !== '');
  const upstreams: UpstreamAddress[] = [];
  const seen = new Set<string>();
  for (const text of upstreamTexts) {
    const parsed = parseUpstream(text);
    if (typeof parsed === 'string') errors.push(parsed);
    else if (seen.has(`${parsed.host}:${parsed.port}`)) errors.push(`upstream "${text}" is listed twice`);
    else {
      seen.add(`${parsed.host}:${parsed.port}`);
      upstreams.push(parsed);
    }
  }
  const discoveryName = typeof values.discoveryDns === 'string' ? values.discoveryDns.trim() : '';
  if (upstreams.length === 0 && discoveryName === '' && errors.length === 0) {
    errors.push('no upstreams: give HOST:PORT arguments, --upstream, LB_UPSTREAMS or --discovery-dns');
  }
  let adminToken = typeof values.adminToken === 'string' ? values.adminToken : '';
  const tokenFile = typeof values.adminTokenFile === 'string' ? values.adminTokenFile : '';
  if (tokenFile !== '') {
    if (adminToken !== '') errors.push('--admin-token / LB_ADMIN_TOKEN and --admin-token-file / LB_ADMIN_TOKEN_FILE: give one, not both');
    else {
      try {
        adminToken = readText(tokenFile).trim();
      } catch (err) {
        errors.push(`--admin-token-file / LB_ADMIN_TOKEN_FILE: cannot read ${tokenFile} (${(err as { code?: string }).code ?? String(err)})`);
      }
    }
  }
  if (errors.length > 0) return { kind: 'error', errors };

  const v = values as {
    [K in Key]: K extends 'explain' | 'passive5xx' | 'panic' | 'exposeUpstream' ? boolean : K extends 'retryOnStatus' ? number[] : K extends 'trustedProxies' ? string[] : K extends 'workers' ? number | 'auto' : K extends 'host' | 'adminHost' | 'discoveryDns' | 'healthPath' | 'tieBreak' | 'policy' | 'logLevel' | 'adminToken' | 'adminTokenFile' | 'backendAdminToken' ? string : number;
  };
  const config: Config = {
    host: v.host,
    port: v.port,
    adminHost: v.adminHost,
    adminPort: v.adminPort,
    upstreams: Object.freeze(upstreams.map((u) => Object.freeze(u))),
    discovery: discoveryName === '' ? undefined : Object.freeze({ name: discoveryName, port: v.discoveryPort, intervalMs: v.discoveryIntervalMs }),
    tieBreak: v.tieBreak as TieBreak,
    policy: v.policy as PolicyName,
    explain: v.explain,
    exposeUpstream: v.exposeUpstream,
    trustedProxies: Object.freeze(v.trustedProxies),
    logLevel: v.logLevel as Config['logLevel'],
    connectTimeoutMs: v.connectTimeoutMs,
    headersTimeoutMs: v.headersTimeoutMs,
    bodyTimeoutMs: v.bodyTimeoutMs,
    keepAliveTimeoutMs: v.keepAliveTimeoutMs,
    retries: v.retries,
    retryOnStatus: Object.freeze(v.retryOnStatus),
    tryTimeoutMs: v.tryTimeoutMs,
    panic: v.panic,
    health: Object.freeze({
      path: v.healthPath,
      intervalMs: v.healthIntervalMs,
      downIntervalMs: v.healthDownIntervalMs,
      timeoutMs: v.healthTimeoutMs,
      maxBodyBytes: v.healthMaxBodyBytes,
      rise: v.healthRise,
      fall: v.healthFall,
    }),
    passiveDownMs: v.passiveDownMs,
    shutdownTimeoutMs: v.shutdownTimeoutMs,
    eventsIntervalMs: v.eventsIntervalMs,
    adminToken,
    backendAdminToken: v.backendAdminToken,
    maxInFlight: v.maxInFlight,
    queueLength: v.queueLength,
    queueTimeoutMs: v.queueTimeoutMs,
    slowStartMs: v.slowStartMs,
    retryBudgetPercent: v.retryBudgetPercent,
    retryBudgetMin: v.retryBudgetMin,
    requestTimeoutMs: v.requestTimeoutMs,
    clientHeaderTimeoutMs: v.clientHeaderTimeoutMs,
    clientKeepAliveTimeoutMs: v.clientKeepAliveTimeoutMs,
    maxHeaderBytes: v.maxHeaderBytes,
    passiveFailures: v.passiveFailures,
    passiveWindowMs: v.passiveWindowMs,
    passive5xx: v.passive5xx,
    workers: v.workers === 'auto' ? 0 : v.workers,
  };
  return { kind: 'config', config: Object.freeze(config), check };
}
