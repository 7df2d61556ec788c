import { pino } from 'pino';
import type { Logger } from 'pino';

/** A JSON logger for one balancer; components take `.child({ component })` of it. */
export function createLogger(level: string, name = 'balancer'): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}
