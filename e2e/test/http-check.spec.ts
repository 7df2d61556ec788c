/**
 * docker/http-check: the containers' health check (bash and /dev/tcp, no Node process). It must
 * pass only on a 200 and fail, within its time limit, on anything else.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { REPO_ROOT, freePorts } from '../../scripts/cluster-lib.mjs';

const CHECK = join(REPO_ROOT, 'docker', 'http-check');

/** Runs the check without blocking this process, which also serves the test's endpoints. */
const check = (...args: string[]): Promise<{ status: number | null }> => {
  return new Promise((resolve) => {
    execFile('bash', [CHECK, ...args], { timeout: 10_000 }, (err) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0 });
    });
  });
};

describe('docker/http-check', () => {
  let server: Server | undefined;
  let port = 0;
  const hung: (() => void)[] = [];

  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/healthz') res.writeHead(200).end('ok');
      else if (req.url === '/readyz') res.writeHead(503).end('shutting down');
      else if (req.url === '/hang') hung.push(() => res.destroy());
      else res.writeHead(404).end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    for (const release of hung) release();
    const s = server;
    if (s) {
      await new Promise<void>((ok) => {
        s.close(() => {
          ok();
        });
      });
    }
  });

  it('passes on a 200', async () => {
    assert.equal((await check(String(port), '/healthz')).status, 0);
  });

  it('fails on another status, a refused connection and a server that never answers (within the limit)', async () => {
    assert.equal((await check(String(port), '/readyz')).status, 1, '503');
    assert.equal((await check(String(port), '/nope')).status, 1, '404');
    const [closed] = await freePorts(1);
    assert.equal((await check(String(closed), '/healthz')).status, 1, 'refused');
    const hang = await check(String(port), '/hang', '1');
    // Exit status 1: the check gave up by itself (execFile's 10 s kill would leave no status).
    assert.equal(hang.status, 1, 'no answer');
  });

  it('refuses to run without a port', async () => {
    assert.notEqual((await check()).status, 0);
  });
});
