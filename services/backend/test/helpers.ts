// Shared test helpers: real servers on port 0, plain HTTP requests, polling, metrics parsing.
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pollUntil } from '../../../scripts/poll.mjs';
import { createApp, type AppConfig, type BackendApp } from '../src/app.js';
import { createLogger } from '../src/logger.js';

/** A silent logger for apps under test. */
export const quiet = createLogger('silent');

/** Config for tests: delays small enough to wait out, scale 1. */
export function testConfig(overrides: Partial<AppConfig> = {}): AppConfig {
  return { id: 'test-backend', delaysMs: [0, 0, 0, 0], delayScale: 1, adminToken: '', ...overrides };
}

/** A backend app listening on 127.0.0.1 with a random port. */
export interface Running {
  readonly backend: BackendApp;
  readonly server: Server;
  readonly url: string;
  close(): Promise<void>;
}

/** Starts a backend app on a real socket (port 0); `close()` drops connections and stops it. */
export async function startBackend(config: AppConfig, backend = createApp(config, { logger: quiet })): Promise<Running> {
  const handle = backend.app.callback();
  const server = createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    backend,
    server,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        backend.stop();
        server.close((err) => {
          if (err) reject(err);
          else resolve();
        });
        server.closeAllConnections();
      }),
  };
}

/** A finished response with its timing. */
export interface Got {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** Milliseconds from sending the request to the end of the body. */
  readonly ms: number;
}

/** GET (or another method) over a fresh connection (no agent, so nothing stays open). */
export function get(url: string, options: { method?: string; signal?: AbortSignal } = {}): Promise<Got> {
  const started = performance.now();
  return new Promise<Got>((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', agent: false, signal: options.signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - started });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Polls `check` every 5 ms until it returns (or resolves to) true; fails after `timeoutMs`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  await pollUntil(what, check, timeoutMs, { intervalMs: 5 });
}

/** One sample of the Prometheus text format. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses Prometheus text exposition into samples (comments skipped); throws on a malformed line. */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`bad metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] ?? ''] = pair[2] ?? '';
    samples.push({ name: match[1] ?? '', labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the sample named `name` whose labels include `labels`, or undefined. */
export function sample(samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

/**
 * Records the length of every delay the app starts (state, not the wall clock: a test checks the
 * timer the request waited on, not how long the machine took). `restore()` puts the original back.
 */
export function recordDelays(backend: BackendApp): { readonly started: number[]; restore(): void } {
  const started: number[] = [];
  const delays = backend.delays;
  const original = delays.wait.bind(delays);
  delays.wait = (ms, res) => {
    started.push(ms);
    return original(ms, res);
  };
  return { started, restore: () => (delays.wait = original) };
}
