import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { pollUntil } from '../../../scripts/poll.mjs';
import { parseConfig } from '../src/config.js';
import type { Config } from '../src/config.js';
import { createBalancer } from '../src/server.js';
import { CounterTable } from '../src/upstreams/counters.js';
import { createRegistry } from '../src/upstreams/registry.js';
import type { Registry, RegistryOptions } from '../src/upstreams/registry.js';
import type { Balancer, BalancerAddresses, BalancerDeps } from '../src/server.js';

/** A test origin on 127.0.0.1:<random port>. */
export interface Origin {
  readonly server: Server;
  readonly port: number;
  readonly id: string;
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export async function startOrigin(handler: Handler): Promise<Origin> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    id: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** An origin that answers every request with its id, after `delayMs` when the path is /slow. */
export function namedHandler(name: string, slowMs = 0): Handler {
  return (req, res) => {
    const reply = (): void => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': name });
      res.end(name);
    };
    if (req.url?.startsWith('/slow') === true) setTimeout(reply, slowMs);
    else reply();
  };
}

/** A port that nothing listens on (bound, then released). */
export async function deadPort(): Promise<number> {
  const o = await startOrigin(() => undefined);
  await o.close();
  return o.port;
}

export const silentLogger = pino({ level: 'silent' });

/** One pino line as an object: msg, level and the bound fields. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

/** A pino logger (level debug) that keeps its lines in memory, for tests that assert on logs. */
export function captureLogger(): { logger: Logger; lines(): LogLine[] } {
  const raw: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void raw.push(line) });
  return { logger, lines: () => raw.map((l) => JSON.parse(l) as LogLine) };
}

/** A config for tests: ports 0, health checks off unless asked, given upstream ports. */
export function testConfig(ports: readonly number[], overrides: Partial<Config> = {}, argv: readonly string[] = []): Config {
  const upstreams = ports.map((p) => `127.0.0.1:${p}`);
  // Without upstreams a test sets `discovery` itself; the placeholder only satisfies validation.
  const source = upstreams.length === 0 && argv.every((a) => a.startsWith('--')) ? ['--discovery-dns', 'backend'] : [];
  // One data-path thread: in-process tests drive the balancer's objects directly (workers.spec.ts covers threads).
  const parsed = parseConfig(['--port', '0', '--admin-port', '0', '--health-interval-ms', '0', '--workers', '1', ...source, ...argv, ...upstreams], {});
  if (parsed.kind !== 'config') throw new Error(`bad test config: ${JSON.stringify(parsed)}`);
  return { ...parsed.config, ...overrides };
}

export interface Running {
  readonly balancer: Balancer;
  readonly addresses: BalancerAddresses;
  readonly url: string;
  readonly adminUrl: string;
}

export async function startBalancer(config: Config, deps: BalancerDeps = {}): Promise<Running> {
  const balancer = createBalancer(config, { logger: silentLogger, ...deps });
  const addresses = await balancer.start();
  return {
    balancer,
    addresses,
    url: `http://127.0.0.1:${addresses.data.port}`,
    adminUrl: `http://127.0.0.1:${addresses.admin.port}`,
  };
}

/** Polls `check` until it returns true or the deadline passes (no fixed sleeps in tests). */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  await pollUntil(what, check, timeoutMs, { intervalMs: 10 });
}

/**
 * The per-test teardown of the specs that start their own origins and balancer in each test:
 * registers an afterEach that stops the balancer, then closes the origins, that `current()` names
 * at that moment (each object once, so one left over from an earlier test is not stopped twice).
 */
export function stopAfterEach(current: () => { readonly lb: Running | undefined; readonly origins: readonly Origin[] }): void {
  const done = new WeakSet<object>();
  afterEach(async () => {
    const { lb, origins } = current();
    if (lb !== undefined && !done.has(lb)) {
      done.add(lb);
      await lb.balancer.stop();
    }
    await Promise.all(origins.filter((o) => !done.has(o)).map((o) => {
      done.add(o);
      return o.close();
    }));
  });
}

/** mulberry32, the lab's seeded PRNG: picker tests are repeatable. */
export { seededRandom } from '../src/lab/random.js';

/** A registry with no upstreams and short pool timeouts, for tests of parts built on one. */
export function testRegistry(overrides: Partial<RegistryOptions> = {}): Registry {
  return createRegistry({
    logger: silentLogger,
    initialState: () => 'up',
    maxInFlight: 0,
    slowStartMs: 0,
    undrainedState: 'up',
    pool: { connectTimeoutMs: 100, headersTimeoutMs: 100, bodyTimeoutMs: 100, keepAliveTimeoutMs: 100, connections: null },
    counters: CounterTable.create(64),
    ...overrides,
  });
}

/** Parses Prometheus text into `name{labels}` -> value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** A UDP port that was free a moment ago on 127.0.0.1 (bound, then released): a balancer's --peers-port. */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => { resolve(); }));
  return port;
}
