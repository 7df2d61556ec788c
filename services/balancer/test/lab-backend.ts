// The lab tests' stand-in backends and balancer, shared by lab.spec.ts and soak/lab-compare.soak.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from 'undici';
import type { LabStatus } from '../src/lab/runner.js';
import { startBalancer, startOrigin, testConfig } from './helpers.js';
import type { Origin, Running } from './helpers.js';

export const BACKEND_TOKEN = 'backend-admin';
/** The balancer's admin token in the lab tests. */
export const TOKEN = 'lab-admin';

export type FakeBackend = Awaited<ReturnType<typeof fakeBackend>>;

/**
 * A stand-in backend: every path takes `delayMs` × `?delayScale=` (+ the scenario's extraLatencyMs,
 * set through /admin/scenario behind a token), like services/backend. `named`: every response
 * carries `X-Backend-Id: <name>` as the real backend's do (the lab then attributes by response).
 */
export async function fakeBackend(name: string, delayMs = 1, named = false): Promise<Origin & { extra: () => number; served: () => number }> {
  const id: Record<string, string> = named ? { 'x-backend-id': name } : {};
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
        res.writeHead(200, { 'content-type': 'application/json', ...id }).end(JSON.stringify({ extraLatencyMs: extra }));
      });
      return;
    }
    const scale = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delayScale') ?? 1);
    setTimeout(() => {
      served++;
      res.writeHead(200, { 'content-type': 'text/plain', ...id }).end(name);
    }, delayMs * scale + extra);
  });
  return { ...origin, extra: () => extra, served: () => served };
}

/** Three stand-in backends (a, b, c) taking `delayMs`, and a balancer with the lab on in front, for each test. */
export interface LabCluster {
  readonly origins: readonly FakeBackend[];
  readonly lb: Running;
  /** POST to the admin API with a bearer token (the lab's by default). */
  readonly post: (path: string, body: unknown, token?: string) => ReturnType<typeof request>;
  /** GET /api/lab. */
  readonly lab: () => Promise<LabStatus>;
}

/** Registers the describe's beforeEach/afterEach that start and stop a LabCluster. */
export function useLabCluster(delayMs = 1): LabCluster {
  let origins: FakeBackend[] = [];
  let lb: Running | undefined;
  const running = (): Running => {
    if (!lb) throw new Error('the lab cluster is not running (outside a test?)');
    return lb;
  };
  beforeEach(async () => {
    origins = await Promise.all(['a', 'b', 'c'].map((n) => fakeBackend(n, delayMs)));
    lb = await startBalancer(testConfig(origins.map((o) => o.port), { lab: true, adminToken: TOKEN, backendAdminToken: BACKEND_TOKEN }));
  });
  afterEach(async () => {
    await lb?.balancer.stop();
    lb = undefined;
    await Promise.all(origins.map((o) => o.close()));
  });
  return {
    get origins() {
      return origins;
    },
    get lb() {
      return running();
    },
    post: (path, body, token = TOKEN) =>
      request(`${running().adminUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    lab: async () => (await (await request(`${running().adminUrl}/api/lab`)).body.json()) as LabStatus,
  };
}
