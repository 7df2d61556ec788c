#!/usr/bin/env node
/** Entry point: the only module that touches process (argv, env, signals, exit codes). */
// First: V8 settings that must be in force before the other modules allocate or run hot.
import './young-generation.js';
import './wasm-tiering.js';
import { parseConfig } from './config.js';
import { createLogger } from './logger.js';
import { createBalancer } from './server.js';

const parsed = parseConfig(process.argv.slice(2), process.env);
if (parsed.kind === 'help') {
  process.stdout.write(`${parsed.text}\n`);
  process.exit(0);
}
if (parsed.kind === 'error') {
  process.stderr.write(`balancer: invalid configuration:\n${parsed.errors.map((e) => `  - ${e}`).join('\n')}\n`);
  process.exit(2);
}
const { config } = parsed;
if (parsed.check) {
  const where = config.discovery ? `DNS ${config.discovery.name}:${config.discovery.port}` : config.upstreams.map((u) => `${u.host}:${u.port}=${u.weight}`).join(' ');
  process.stdout.write(`balancer: configuration ok (listen ${config.host}:${config.port}, admin ${config.adminHost}:${config.adminPort}, upstreams ${where})\n`);
  process.exit(0);
}

const logger = createLogger(config.logLevel);
const balancer = createBalancer(config, {
  logger,
  // A data-path thread died: its in-flight counts are lost, so the shared ones can no longer be
  // trusted. Exit and let the supervisor (Compose, systemd, Kubernetes) start a clean process.
  onFatal: (err) => {
    logger.fatal({ err }, 'a data-path thread died; exiting');
    process.exit(1);
  },
});
let stopping = false;
const shutdown = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'signal received');
  balancer.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => {
  shutdown('SIGTERM');
});
process.on('SIGINT', () => {
  shutdown('SIGINT');
});

balancer.start().catch((err: unknown) => {
  const code = (err as { code?: string }).code;
  process.stderr.write(`balancer: cannot start: ${code === 'EADDRINUSE' ? 'address already in use' : String(err)}\n`);
  logger.fatal({ err }, 'cannot start');
  process.exit(1);
});
