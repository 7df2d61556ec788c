import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Socket, connect } from 'node:net';
import { namedHandler, startBalancer, startOrigin, testConfig, waitFor } from './helpers.js';
import type { Origin, Running } from './helpers.js';

/** An origin that accepts every upgrade (101 with X-Origin: name) and then keeps the socket open. */
async function startUpgradeOrigin(name: string, sockets: Set<Socket>): Promise<Origin> {
  const origin = await startOrigin(namedHandler(name));
  origin.server.on('upgrade', (_req, socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.on('end', () => socket.end());
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\nX-Origin: ${name}\r\n\r\n`);
  });
  return origin;
}

/** Opens an upgrade through the balancer; resolves with the answering origin's name and the open socket. */
async function upgrade(port: number): Promise<{ origin: string; socket: Socket }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
  socket.write('GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n');
  await waitFor(() => data.includes('\r\n\r\n') || socket.destroyed, 3000, 'the upgrade answer');
  const match = /^x-origin: (\S+)$/im.exec(data);
  assert.ok(data.startsWith('HTTP/1.1 101') && match?.[1] !== undefined, data);
  return { origin: match[1], socket };
}

describe('upgrades go the way plain requests go', () => {
  let origins: Origin[] = [];
  const sockets = new Set<Socket>();
  let lb: Running | undefined;

  afterEach(async () => {
    for (const s of sockets) s.destroy();
    await lb?.balancer.stop();
    lb = undefined;
    await Promise.all(origins.map((o) => o.close()));
    origins = [];
  });

  it('a runtime policy switch applies to upgrades: least-connections avoids the busy upstream, round robin does not', async () => {
    origins = [await startUpgradeOrigin('a', sockets), await startUpgradeOrigin('b', sockets)];
    lb = await startBalancer(testConfig(origins.map((o) => o.port)));
    const running = lb;
    const port = running.addresses.data.port;
    // One tunnel stays open: its upstream is the busy one.
    const held = await upgrade(port);
    const busy = held.origin;

    /** Short upgrades, one after another, each closed (and released) before the next. */
    const countBusy = async (n: number): Promise<number> => {
      let onBusy = 0;
      for (let i = 0; i < n; i++) {
        const { origin, socket } = await upgrade(port);
        if (origin === busy) onBusy++;
        socket.destroy();
        await waitFor(() => running.balancer.registry.inFlight() === 1, 2000, 'the short tunnel released');
      }
      return onBusy;
    };

    assert.equal(await countBusy(6), 0, 'least-connections never picks the busy one');
    running.balancer.policy.set('round-robin');
    assert.equal(await countBusy(6), 3, 'round robin takes turns regardless of load');
    running.balancer.policy.set('least-connections');
    assert.equal(await countBusy(4), 0);
    held.socket.destroy();
  });

  it('the upgrade handler has no picker, request-id or header building of its own', () => {
    const source = readFileSync(new URL('../src/data-path/upgrade.ts', import.meta.url), 'utf8');
    assert.doesNotMatch(source, /from '\.\.\/picker\//, 'upgrade.ts imports no picker');
    assert.doesNotMatch(source, /randomUUID|createTrustCheck|registry\.acquire|registry\.release|decisions\.record/);
    const proxy = readFileSync(new URL('../src/data-path/proxy.ts', import.meta.url), 'utf8');
    assert.doesNotMatch(proxy, /randomUUID|createTrustCheck|registry\.acquire|registry\.release|decisions\.record|pickWith/);
  });
});
