import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.js';

/** The pino logger type, so other modules need not import pino. */
export type { Logger } from 'pino';

/**
 * Creates the backend's pino logger: JSON lines on stdout (pipe to `npx pino-pretty` to read them),
 * or on `destination` when a test wants to capture them. No transport: a transport runs in a
 * worker thread and delays exit by seconds.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = { name: 'backend', level };
  return destination === undefined ? pino(options) : pino(options, destination);
}
