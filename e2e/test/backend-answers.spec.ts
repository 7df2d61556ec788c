/**
 * backendAnswers (e2e/lib/backend-answers.ts): "this container's process answers", told apart
 * from an earlier container at the same address, on a real socket. The helper asks port 8002 (the
 * backends' port in the cluster), so the test listens there on an address of its own in 127/8.
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { backendAnswers } from '../lib/backend-answers.js';
import type { ContainerInfo } from '../lib/docker-inspect.js';
import { BACKEND_PORT } from '../lib/upstream-id.js';

const container = (ip: string, hostname: string): ContainerInfo => ({ id: hostname, hostname, ip, status: 'running', health: undefined, firstPassingProbeAt: undefined, labels: {} });

/** Listens on ip:8002, answering /healthz with `status` as a backend whose id is `backendId` would. */
async function fakeBackend(ip: string, backendId: string, status: number): Promise<Server> {
  const server = createServer((req, res) => {
    res.writeHead(req.url === '/healthz' ? status : 404, { 'x-backend-id': backendId, 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(BACKEND_PORT, ip, resolve);
  });
  assert.equal((server.address() as AddressInfo).port, BACKEND_PORT);
  return server;
}

/** Runs `body` while a fake backend listens on ip:8002, then closes it. */
async function whileServing<T>(ip: string, backendId: string, status: number, body: () => Promise<T>): Promise<T> {
  const server = await fakeBackend(ip, backendId, status);
  try {
    return await body();
  } finally {
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  }
}

describe('backendAnswers: the replica itself answers at its address', () => {
  // A random loopback address, so port 8002 is free whatever else runs on this machine.
  const ip = `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;

  it('yes when /healthz answers with the container\'s own id', async () => {
    assert.equal(await whileServing(ip, 'abc123def456:8002', 200, () => backendAnswers(container(ip, 'abc123def456'))), true);
  });

  it('no when the answer is another container\'s (its predecessor at the same address), or not 2xx', async () => {
    assert.equal(await whileServing(ip, '0ld0ld0ld0ld:8002', 200, () => backendAnswers(container(ip, 'abc123def456'))), false);
    assert.equal(await whileServing(ip, 'abc123def456:8002', 503, () => backendAnswers(container(ip, 'abc123def456'))), false);
  });

  it('no when nothing listens yet, or the container has no address', async () => {
    assert.equal(await backendAnswers(container(ip, 'abc123def456')), false);
    assert.equal(await backendAnswers({ ...container(ip, 'abc123def456'), ip: undefined }), false);
  });
});
