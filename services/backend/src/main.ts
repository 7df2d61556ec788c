#!/usr/bin/env node
// The only file that touches process: argv, env, signals, exit codes.
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { createApp } from './app.js';
import { describeConfig, drainBudgetMs, parseConfig, USAGE } from './config.js';
import { createLogger } from './logger.js';

/** Exit code for a configuration the backend refuses to start with. */
const EXIT_BAD_CONFIG = 2;
/** Exit code when the server cannot listen or shutdown fails. */
const EXIT_FAILURE = 1;

async function main(): Promise<number> {
  const parsed = parseConfig(process.argv.slice(2), process.env, hostname());
  if (parsed.kind === 'help') {
    process.stdout.write(parsed.text);
    return 0;
  }
  if (parsed.kind === 'errors') {
    process.stderr.write(`backend: invalid configuration\n${parsed.errors.join('\n')}\n\n${USAGE}`);
    return EXIT_BAD_CONFIG;
  }
  const config = parsed.config;
  if (parsed.check) {
    process.stdout.write(`backend: configuration ok (${describeConfig(config)})\n`);
    return 0;
  }
  const logger = createLogger(config.logLevel);
  // POST /admin/exit: exit 1 like a crash, so Compose's restart policy brings the replica back.
  const backend = createApp(config, { logger, exit: () => process.exit(EXIT_FAILURE) });
  const handle = backend.app.callback();
  // Handlers first: a SIGTERM that arrived between the "listening" line and their installation
  // killed the process outright (Node's default action), seen once in CI under load.
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  // Koa's handler settles its own promise (errors go to app.on('error')).
  const server = createServer((req, res) => {
    void handle(req, res);
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    logger.fatal({ err, host: config.host, port: config.port }, 'cannot listen');
    backend.stop();
    return EXIT_FAILURE;
  }
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  logger.info({ id: config.id, url, delaysMs: config.delaysMs, delayScale: config.delayScale }, `backend ${config.id} listening on ${url}`);

  const signal = await signalled;
  logger.info({ signal, inFlight: backend.stats.inFlight, delayMs: config.shutdownDelayMs }, 'shutting down');
  // A second signal skips the delay and the drain.
  let force = (): void => undefined;
  const forced = new Promise<void>((resolve) => {
    force = resolve;
  });
  process.once('SIGTERM', force);
  process.once('SIGINT', force);

  // Keep accepting while /healthz fails, so that balancers see the replica go before it refuses.
  backend.beginShutdown();
  if (config.shutdownDelayMs > 0) {
    let delayTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => {
        delayTimer = setTimeout(resolve, config.shutdownDelayMs);
      }),
      forced,
    ]);
    clearTimeout(delayTimer);
  }

  const closed = new Promise<void>((resolve) => server.close(() => {
    resolve();
  }));
  let drainTimer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    // The slowest image plus a margin (stop_grace_period in docker-compose.yml allows for it).
    drainTimer = setTimeout(resolve, drainBudgetMs(config));
  });
  await Promise.race([backend.stats.whenIdle(), deadline, forced]);
  clearTimeout(drainTimer);
  const dropped = backend.stats.inFlight;
  backend.stop();
  server.closeAllConnections();
  await closed;
  logger.info({ dropped, served: backend.stats.served }, 'stopped');
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`backend: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = EXIT_FAILURE;
  },
);
