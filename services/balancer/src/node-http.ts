/**
 * node:http's functions, taken with require() instead of an ES import. On Node 22 and later an ES
 * import of node:http (named or default, by any module of the process) makes Node build the
 * module's ES facade by reading every one of its exports, and three of them (WebSocket,
 * CloseEvent, MessageEvent) are getters that load Node's bundled undici: fetch, WebSocket and web
 * streams, which the balancer never runs. Measured on Node 24 in a process that loads nothing
 * else: 13 MB more resident memory (6 MB of it anonymous, 2.2 MB of JavaScript heap) than
 * require('node:http'), which hands over the CommonJS exports object without reading them.
 * Types still come from `import type` (erased when compiled). test/runtime-footprint.spec.ts
 * checks that a running balancer never loads that bundle.
 */
import type * as Http from 'node:http';
import { createRequire } from 'node:module';

const http = createRequire(import.meta.url)('node:http') as typeof Http;

export const { createServer, STATUS_CODES } = http;
