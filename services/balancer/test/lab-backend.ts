// The lab tests' stand-in backend, shared by lab.spec.ts and soak/lab-compare.soak.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startOrigin } from './helpers.js';
import type { Origin } from './helpers.js';

export const BACKEND_TOKEN = 'backend-admin';

/**
 * A stand-in backend: every path takes `delayMs` × `?delayScale=` (+ the scenario's extraLatencyMs,
 * set through /admin/scenario behind a token), like services/backend.
 */
export async function fakeBackend(name: string, delayMs = 1): Promise<Origin & { extra: () => number; served: () => number }> {
  let extra = 0;
  let served = 0;
  const origin = await startOrigin((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/admin/scenario') {
      if (req.headers.authorization !== `Bearer ${BACKEND_TOKEN}`) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"UNAUTHORIZED"}');
        return;
      }
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        extra = req.method === 'PUT' ? ((JSON.parse(body) as { extraLatencyMs?: number }).extraLatencyMs ?? 0) : 0;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ extraLatencyMs: extra }));
      });
      return;
    }
    const scale = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delayScale') ?? 1);
    setTimeout(() => {
      served++;
      res.writeHead(200, { 'content-type': 'text/plain' }).end(name);
    }, delayMs * scale + extra);
  });
  return { ...origin, extra: () => extra, served: () => served };
}
