/**
 * undici's Pool, without the rest of undici. `import { Pool } from 'undici'` evaluates undici's
 * whole index (fetch, WebSocket, EventSource, web streams, caches, mock agents): about 10 MB of
 * resident memory in every data-path thread for code the balancer never runs, a tenth of what
 * 10,000 idle keep-alive clients may take (bench/CONNECTIONS.md). This loads the pool's own
 * module (the class the index re-exports) and gives dispatchers the request/stream/pipeline/
 * connect/upgrade methods exactly as the index does; test/undici-pool.spec.ts checks both, in a
 * process that loads nothing else of undici.
 */
import { createRequire } from 'node:module';
import type { Pool as UndiciPool } from 'undici';

const require = createRequire(import.meta.url);

// What undici's index.js does before exporting its dispatchers: `Object.assign(Dispatcher.prototype, api)`.
const dispatcher = require('undici/lib/dispatcher/dispatcher.js') as { prototype: object };
Object.assign(dispatcher.prototype, require('undici/lib/api/index.js') as object);

export type Pool = UndiciPool;
export const Pool = require('undici/lib/dispatcher/pool.js') as typeof UndiciPool;
