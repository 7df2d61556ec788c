import { z } from 'zod';

/** Default listen port, the one the original `main.py` examples used. */
export const DEFAULT_PORT = 8002;

/** Default delay in milliseconds before `/images/1..4` answer: the original's 1, 3, 5 and 10 s. */
export const DEFAULT_DELAYS_MS: readonly number[] = Object.freeze([1000, 3000, 5000, 10000]);

/** Log levels a backend accepts in `BACKEND_LOG_LEVEL` (pino's levels). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** How many images the backend serves: ids 1 to IMAGE_COUNT. */
export const IMAGE_COUNT = 4;

/** The validated, frozen configuration of one backend process. */
export interface Config {
  readonly port: number;
  readonly host: string;
  /** Sent as `X-Backend-Id` on every response. */
  readonly id: string;
  /** Unscaled delay per image id: `delaysMs[id - 1]`. */
  readonly delaysMs: readonly number[];
  /** Multiplies every delay (0.01 makes the 10 s image take 100 ms). */
  readonly delayScale: number;
  readonly logLevel: LogLevel;
  /**
   * After SIGTERM, keep serving (with /healthz answering 503) for this long before refusing
   * connections, so balancers drop this replica while it still answers (a preStop delay).
   */
  readonly shutdownDelayMs: number;
  /** Bearer token of the scenario routes (`/admin/*`); empty = writes refused. */
  readonly adminToken: string;
}

/** What {@link parseConfig} returns: a config (`check`: only validate it), a request for help, or every problem found. */
export type ParseResult =
  | { readonly kind: 'config'; readonly config: Config; readonly check: boolean }
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'errors'; readonly errors: readonly string[] };

/** The environment variables the backend reads (other keys are ignored). */
export type BackendEnv = Readonly<Partial<Record<string, string | undefined>>>;

// Bounds keep delay * scale below setTimeout's 2^31-1 ms limit, past which Node fires at once.
const MAX_DELAY_MS = 600_000;
const MAX_SCALE = 100;
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

const port = z
  .string()
  .trim()
  .regex(/^\d+$/, { error: (issue) => `must be an integer from 1 to 65535, got "${String(issue.input)}"` })
  .transform(Number)
  .pipe(z.number().int().min(1, 'must be from 1 to 65535').max(65535, 'must be from 1 to 65535'));

const number = z
  .string()
  .trim()
  .regex(NUMBER, { error: (issue) => `must be a number, got "${String(issue.input)}"` })
  .transform(Number);

// zod's own message for 1e999 would be "expected number, received Infinity".
const finite = (): z.ZodNumber => z.number({ error: 'must be a finite number' });

const delays = z
  .string()
  .transform((s) => s.split(','))
  .pipe(
    z
      .array(number.pipe(z.number().min(0, 'must be 0 or more').max(MAX_DELAY_MS, `must be at most ${MAX_DELAY_MS}`)))
      .length(IMAGE_COUNT, `must list exactly ${IMAGE_COUNT} delays (ids 1..${IMAGE_COUNT}), comma-separated`),
  );

const scale = number.pipe(finite().min(0, 'must be 0 or more').max(MAX_SCALE, `must be at most ${MAX_SCALE}`));

// A header value Node accepts: printable ASCII, no leading or trailing space.
const backendId = z
  .string()
  .regex(/^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/, 'must be printable ASCII (it is sent as a header)')
  .max(200, 'must be at most 200 characters');

/** How a variable is set from outside, as the balancer's options table (its config.ts) has it. */
interface EnvOption<S extends z.ZodType = z.ZodType> {
  /** Checks and converts the variable's text. */
  readonly schema: S;
  /** What `--help` says the default is; none = the help says what happens when unset. */
  readonly fallback?: string;
  readonly help: string;
}

const envOption = <S extends z.ZodType>(schema: S, help: string, fallback?: string | number): EnvOption<S> =>
  fallback === undefined ? { schema, help } : { schema, help, fallback: String(fallback) };

/** The defaults of the variables that have one: read by parseConfig and shown by `--help`. */
const DEFAULTS = { host: '127.0.0.1', delayScale: 1, logLevel: 'info', shutdownDelayMs: 0 } as const;

/**
 * The backend's environment variables, once: name, validation, default and help. The `--help`
 * text and the checked input are read from this table, so they cannot drift apart. In the order
 * `--help` lists them.
 */
const ENV = {
  BACKEND_PORT: envOption(port, 'listen port when no PORT argument is given', DEFAULT_PORT),
  BACKEND_HOST: envOption(z.string().trim().min(1), 'listen address', DEFAULTS.host),
  BACKEND_ID: envOption(backendId, 'X-Backend-Id value (default <hostname>:<port>)'),
  BACKEND_DELAYS_MS: envOption(delays, `four comma-separated delays for ids 1..${IMAGE_COUNT}`, DEFAULT_DELAYS_MS.join(',')),
  BACKEND_DELAY_SCALE: envOption(scale, 'multiplies every delay', DEFAULTS.delayScale),
  BACKEND_LOG_LEVEL: envOption(z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }), LOG_LEVELS.join(' | '), DEFAULTS.logLevel),
  BACKEND_SHUTDOWN_DELAY_MS: envOption(
    number.pipe(finite().int('must be a whole number of ms').min(0, 'must be 0 or more').max(60_000, 'must be at most 60000')),
    'after SIGTERM, serve this long with /healthz failing before closing',
    DEFAULTS.shutdownDelayMs,
  ),
  BACKEND_ADMIN_TOKEN: envOption(z.string(), 'bearer token for the fault scenarios (/admin/scenario, /admin/exit); unset = refused'),
} satisfies Record<string, EnvOption>;

type EnvName = keyof typeof ENV;
const ENV_NAMES = Object.keys(ENV) as EnvName[];

/** Usage text, printed for `--help` and after configuration errors; its variables come from ENV. */
export const USAGE = `usage: backend [PORT]
       backend --check [PORT]   validate the configuration, print a summary and exit (0 ok, 2 bad)
       backend --help           this text

Serves /images/1..${IMAGE_COUNT} (PNG) after a per-id delay, plus /healthz, /info and /metrics.

environment:
${ENV_NAMES.map((name) => {
  const { help, fallback } = ENV[name] as EnvOption;
  return `  ${name.padEnd(19)}  ${help}${fallback === undefined ? '' : ` (default ${fallback})`}\n`;
}).join('')}`;

// Keys are named after where a value came from, so z.prettifyError points the user at it.
const Input = z.object({
  arguments: z.array(z.string()).max(1, 'expected at most one argument: the port'),
  PORT: port.optional(),
  ...(Object.fromEntries(ENV_NAMES.map((name) => [name, ENV[name].schema.optional()])) as { [K in EnvName]: z.ZodOptional<(typeof ENV)[K]['schema']> }),
});

// An empty variable (`BACKEND_ID=` in a Compose file) means "not set", as in most CLIs.
function envValue(env: BackendEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/**
 * Turns the command-line arguments (without node and the script) and the environment into a
 * frozen {@link Config}, or into the full list of problems. Pure: the hostname used for the
 * default id is a parameter, so tests pass their own.
 * Precedence: defaults < env < the PORT argument.
 */
export function parseConfig(argv: readonly string[], env: BackendEnv, hostname: string): ParseResult {
  if (argv.includes('--help') || argv.includes('-h')) return { kind: 'help', text: USAGE };
  const check = argv.includes('--check');
  const args = argv.filter((a) => a !== '--check');
  const options = args.filter((a) => a.startsWith('-') && !/^-\d/.test(a));
  if (options.length > 0) {
    return { kind: 'errors', errors: options.map((o) => `✖ unknown option ${o} (the only argument is the port; see --help)`) };
  }
  const parsed = Input.safeParse({
    arguments: args,
    PORT: args[0],
    ...Object.fromEntries(ENV_NAMES.map((name) => [name, envValue(env, name)])),
  });
  if (!parsed.success) {
    // prettifyError gives one "✖ message\n  → at path" block per issue; keep them apart.
    return { kind: 'errors', errors: z.prettifyError(parsed.error).split(/\n(?=✖)/) };
  }
  const input = parsed.data;
  const listenPort = input.PORT ?? input.BACKEND_PORT ?? DEFAULT_PORT;
  const config: Config = {
    port: listenPort,
    host: input.BACKEND_HOST ?? DEFAULTS.host,
    id: input.BACKEND_ID ?? `${hostname}:${listenPort}`,
    delaysMs: Object.freeze(input.BACKEND_DELAYS_MS ?? [...DEFAULT_DELAYS_MS]),
    delayScale: input.BACKEND_DELAY_SCALE ?? DEFAULTS.delayScale,
    logLevel: input.BACKEND_LOG_LEVEL ?? DEFAULTS.logLevel,
    shutdownDelayMs: input.BACKEND_SHUTDOWN_DELAY_MS ?? DEFAULTS.shutdownDelayMs,
    adminToken: input.BACKEND_ADMIN_TOKEN ?? '',
  };
  return { kind: 'config', config: Object.freeze(config), check };
}

/** Beyond the slowest image, for the event loop and the last bytes on the wire. */
const DRAIN_MARGIN_MS = 1000;

/**
 * How long in-flight images may finish once the server stops accepting (after the shutdown
 * delay). A request that arrived at the very end of the delay, while the balancers had not yet
 * seen /healthz fail, needs the slowest image's whole time: a fixed budget shorter than that cut
 * such requests when replicas were scaled away under the seed's 10 s image.
 */
export function drainBudgetMs(config: Pick<Config, 'delaysMs' | 'delayScale'>): number {
  return Math.round(Math.max(0, ...config.delaysMs) * config.delayScale) + DRAIN_MARGIN_MS;
}

/** The one line `--check` prints: every setting but the admin token, which it only says is set or not. */
export function describeConfig(config: Config): string {
  const listen = `${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  const scenarios = config.adminToken === '' ? 'refused (no BACKEND_ADMIN_TOKEN)' : 'enabled';
  return (
    `listen ${listen}, id ${config.id}, delays ${config.delaysMs.join(',')} ms x ${config.delayScale}, ` +
    `shutdown delay ${config.shutdownDelayMs} ms, log level ${config.logLevel}, fault scenarios ${scenarios}`
  );
}
