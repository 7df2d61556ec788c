/**
 * The frontend image's nginx follows the balancers' names by itself (`server NAME resolve` in a
 * zoned upstream, nginx 1.30): when the two balancers are recreated and their addresses swap, every
 * request from then on goes to the active balancer only; never to the standby's old address, and
 * never to both. The image runs on the host network against a DNS server of the test's own on
 * 127.0.0.1 and two stand-in balancers on 127.0.0.2 and 127.0.0.3, so the swap is exact and its
 * moment known (Docker's own address allocation rarely hands a freed address to the other service).
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { readFile, mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../scripts/cluster-lib.mjs';
import { pollUntil } from '../../scripts/poll.mjs';
import { run } from '../lib/exec.js';

const IMAGE = 'lcb-frontend:resolve-test';
const CONTAINER = `lcb-resolve-test-${process.pid}`;
const ACTIVE = 'balancer';
const STANDBY = 'balancer-b';
const X = '127.0.0.2';
const Y = '127.0.0.3';

/** A DNS server answering A queries from a table the test changes; other names: NXDOMAIN. */
async function startDns(table: Map<string, string>): Promise<{ port: number; queries: () => number; close(): Promise<void> }> {
  const socket: Socket = createSocket('udp4');
  let queries = 0;
  socket.on('message', (msg, peer) => {
    if (msg.length < 17) return;
    queries += 1;
    // The question: labels from byte 12 up to a zero length, then QTYPE and QCLASS.
    const labels: string[] = [];
    let at = 12;
    while (at < msg.length && msg[at] !== 0) {
      const len = msg[at] ?? 0;
      labels.push(msg.subarray(at + 1, at + 1 + len).toString('latin1'));
      at += 1 + len;
    }
    const questionEnd = at + 5;
    const qtype = msg.readUInt16BE(at + 1);
    const address = qtype === 1 ? table.get(labels.join('.').toLowerCase()) : undefined;
    const known = table.has(labels.join('.').toLowerCase());
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2);
    // QR, RD, RA; rcode 3 (NXDOMAIN) for names the table does not have.
    header.writeUInt16BE(0x8180 | (known ? 0 : 3), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(address ? 1 : 0, 6);
    const question = msg.subarray(12, questionEnd);
    const answer = address
      ? Buffer.concat([Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4]), Buffer.from(address.split('.').map(Number))])
      : Buffer.alloc(0);
    socket.send(Buffer.concat([header, question, answer]), peer.port, peer.address);
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return {
    port: socket.address().port,
    queries: () => queries,
    close: () => new Promise((done) => socket.close(() => { done(); })),
  };
}

/** A stand-in balancer on one loopback address: answers every request with that address. */
async function startStandIn(address: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    // Held a little, so that concurrent requests overlap and least_conn would spread them over
    // every primary server it has.
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(address);
    }, 20);
  });
  server.listen(port, address);
  await once(server, 'listening');
  return server;
}

const close = (s: Server): Promise<void> =>
  new Promise((done) => {
    s.closeAllConnections();
    s.close(() => { done(); });
  });

describe('nginx follows the balancer names itself (frontend image, nginx 1.30 `resolve`)', function () {
  this.timeout(240_000);
  const table = new Map<string, string>([
    [ACTIVE, X],
    [STANDBY, Y],
  ]);
  let dns: Awaited<ReturnType<typeof startDns>> | undefined;
  const standIns: Server[] = [];
  let dir = '';
  let base = '';

  /** Which stand-in served each of `n` concurrent GETs through nginx (failures as their status). */
  const servedBy = async (n: number): Promise<string[]> =>
    Promise.all(
      Array.from({ length: n }, async () => {
        const res = await fetch(`${base}/images/1`, { signal: AbortSignal.timeout(5_000) });
        const body = await res.text();
        return res.status === 200 ? body : `status ${res.status}: ${body}`;
      }),
    );

  before(async function () {
    this.timeout(20 * 60_000);
    const build = await run('docker', ['build', '-f', 'nginx/Dockerfile', '-t', IMAGE, '.'], { cwd: REPO_ROOT, timeoutMs: 20 * 60_000, allowFailure: true });
    assert.equal(build.code, 0, build.stderr);
    dns = await startDns(table);
    // One free port, on both loopback addresses: nginx's server lines name a single port.
    const probe = createServer();
    probe.listen(0, X);
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    await close(probe);
    standIns.push(await startStandIn(X, port), await startStandIn(Y, port));
    const probeUi = createServer();
    probeUi.listen(0, '127.0.0.1');
    await once(probeUi, 'listening');
    const uiPort = (probeUi.address() as AddressInfo).port;
    await close(probeUi);
    // The image's own template, with one edit: a free loopback port (host network) instead of 8080.
    dir = await mkdtemp(join(tmpdir(), 'lcb-resolve-'));
    await chmod(dir, 0o755);
    const template = (await readFile(join(REPO_ROOT, 'nginx', 'default.conf.template'), 'utf8')).replace('listen 8080;', `listen 127.0.0.1:${uiPort};`);
    assert.ok(template.includes(`listen 127.0.0.1:${uiPort};`));
    await writeFile(join(dir, 'default.conf.template'), template);
    await chmod(join(dir, 'default.conf.template'), 0o644);
    const started = await run(
      'docker',
      [
        'run', '-d', '--name', CONTAINER, '--network', 'host', '--read-only',
        '--tmpfs', '/tmp:size=16m,mode=1777', '--tmpfs', '/etc/nginx/conf.d:size=1m,uid=101,gid=101,mode=0755',
        '-v', `${join(dir, 'default.conf.template')}:/etc/nginx/templates/default.conf.template:ro`,
        '-e', `BALANCER_HOST=${ACTIVE} ${STANDBY}`, '-e', `BALANCER_PORT=${port}`, '-e', `BALANCER_ADMIN_PORT=${port}`,
        '-e', `BALANCER_RESOLVER=127.0.0.1:${dns.port}`,
        IMAGE,
      ],
      { timeoutMs: 60_000, allowFailure: true },
    );
    assert.equal(started.code, 0, started.stderr);
    base = `http://127.0.0.1:${uiPort}`;
    await pollUntil(
      'nginx to answer through a stand-in balancer',
      async () => {
        const res = await fetch(`${base}/images/1`).catch(() => undefined);
        return res?.status === 200 ? true : undefined;
      },
      30_000,
    ).catch(async (err: unknown) => {
      const logs = await run('docker', ['logs', CONTAINER], { allowFailure: true });
      throw new Error(`${String(err)}\n${logs.stdout}${logs.stderr}`);
    });
  });

  after(async () => {
    await run('docker', ['rm', '-f', CONTAINER], { allowFailure: true });
    await run('docker', ['rmi', IMAGE], { allowFailure: true });
    await Promise.all(standIns.map(close));
    await dns?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('sends everything to the active balancer while both answer', async () => {
    for (let round = 0; round < 10; round += 1) assert.deepEqual(new Set(await servedBy(4)), new Set([X]));
    assert.ok((dns?.queries() ?? 0) > 0, 'nginx asked the test DNS');
  });

  it('after the addresses swap, every request of the next 30 s goes to the new active address only', async () => {
    table.set(ACTIVE, Y);
    table.set(STANDBY, X);
    const swapped = Date.now();
    // nginx keeps an answer for `valid=1s`: the first request to the new address comes within a
    // few seconds, and from then on none may reach the old one (the script kept it for 30 s).
    await pollUntil('the first request to the new active address', async () => ((await servedBy(1))[0] === Y ? true : undefined), 10_000, { intervalMs: 50 });
    const followedMs = Date.now() - swapped;
    console.log(`      [resolve] nginx followed the swap in ${followedMs} ms`);
    const served = new Map<string, number>();
    const until = Date.now() + 30_000;
    while (Date.now() < until) {
      for (const who of await servedBy(4)) served.set(who, (served.get(who) ?? 0) + 1);
    }
    console.log(`      [resolve] 30 s after the swap: ${JSON.stringify(Object.fromEntries(served))}`);
    assert.deepEqual([...served.keys()], [Y], 'one balancer served every request');
    assert.ok((served.get(Y) ?? 0) > 100);
  });

  it('when the active name leaves DNS, the standby takes every request; when it is back, the active one', async () => {
    table.delete(ACTIVE);
    await pollUntil('requests on the standby', async () => ((await servedBy(1))[0] === X ? true : undefined), 10_000, { intervalMs: 50 });
    for (let round = 0; round < 5; round += 1) assert.deepEqual(new Set(await servedBy(4)), new Set([X]));
    table.set(ACTIVE, Y);
    await pollUntil('requests back on the active balancer', async () => ((await servedBy(1))[0] === Y ? true : undefined), 10_000, { intervalMs: 50 });
  });
});
