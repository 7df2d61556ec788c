/**
 * The frontend image's nginx follows the balancers' name by itself (`server NAME resolve` in a
 * zoned upstream, nginx 1.30): every address the name resolves to takes requests (the balancers
 * are active-active), an address that leaves the answer gets none from then on, one that joins gets
 * its share, and one client's /api/ stays on one address until that address leaves. The image runs
 * on the host network against a DNS server of the test's own on 127.0.0.1 and stand-in balancers on
 * 127.0.0.2-4, so the changes are exact and their moments known (Docker's own address allocation
 * gives no such control).
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { readFile, mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket as TcpSocket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../scripts/cluster-lib.mjs';
import { pollUntil } from '../../scripts/poll.mjs';
import { run } from '../lib/exec.js';

const IMAGE = 'lcb-frontend:resolve-test';
const CONTAINER = `lcb-resolve-test-${process.pid}`;
const NAME = 'balancer';
const X = '127.0.0.2';
const Y = '127.0.0.3';
const Z = '127.0.0.4';
/** A stand-in that holds every request until the test resets its connection (a balancer going away mid-request). */
const W = '127.0.0.5';

/** A DNS server answering A queries from a table the test changes (every address of a name); other names: NXDOMAIN. */
async function startDns(table: Map<string, readonly string[]>): Promise<{ port: number; queries: () => number; close(): Promise<void> }> {
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
    const addresses = qtype === 1 ? (table.get(labels.join('.').toLowerCase()) ?? []) : [];
    const known = table.has(labels.join('.').toLowerCase());
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2);
    // QR, RD, RA; rcode 3 (NXDOMAIN) for names the table does not have.
    header.writeUInt16BE(0x8180 | (known ? 0 : 3), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(addresses.length, 6);
    const question = msg.subarray(12, questionEnd);
    // One A record per address, each naming the question (a pointer to offset 12), TTL 1 s.
    const answers = addresses.map((address) => Buffer.concat([Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4]), Buffer.from(address.split('.').map(Number))]));
    socket.send(Buffer.concat([header, question, ...answers]), peer.port, peer.address);
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
    // Held a little, so that concurrent requests overlap and least_conn spreads them over every
    // server it has.
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(address);
    }, 20);
  });
  server.listen(port, address);
  await once(server, 'listening');
  return server;
}

/** A stand-in that receives requests and answers none: the test resets their connections when it chooses. */
async function startHolder(address: string, port: number): Promise<{ server: Server; held: () => number; resetAll: () => void }> {
  const held = new Set<TcpSocket>();
  const server = createServer((req) => {
    held.add(req.socket);
  });
  server.listen(port, address);
  await once(server, 'listening');
  return {
    server,
    held: () => held.size,
    resetAll: () => {
      for (const socket of held) socket.resetAndDestroy();
      held.clear();
    },
  };
}

const close = (s: Server): Promise<void> =>
  new Promise((done) => {
    s.closeAllConnections();
    s.close(() => { done(); });
  });

describe('nginx follows the balancers\' name by itself (frontend image, nginx 1.30 `resolve`)', function () {
  this.timeout(240_000);
  const table = new Map<string, readonly string[]>([[NAME, [X, Y]]]);
  let dns: Awaited<ReturnType<typeof startDns>> | undefined;
  const standIns: Server[] = [];
  let holder: Awaited<ReturnType<typeof startHolder>> | undefined;
  let dir = '';
  let base = '';

  /** Which stand-in answered each of `n` concurrent GETs of `path` through nginx (failures as their status). */
  const servedBy = async (n: number, path = '/images/1'): Promise<string[]> =>
    Promise.all(
      Array.from({ length: n }, async () => {
        const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5_000) });
        const body = await res.text();
        return res.status === 200 ? body : `status ${res.status}: ${body}`;
      }),
    );

  /** How many requests each stand-in answered over `rounds` rounds of `n` concurrent GETs. */
  const tally = async (rounds: number, n: number, path?: string): Promise<Map<string, number>> => {
    const served = new Map<string, number>();
    for (let round = 0; round < rounds; round += 1) for (const who of await servedBy(n, path)) served.set(who, (served.get(who) ?? 0) + 1);
    return served;
  };

  /** Polls until a round of four concurrent GETs is answered by exactly `expected`. */
  const followed = (what: string, expected: readonly string[]): Promise<unknown> =>
    pollUntil(what, async () => ([...new Set(await servedBy(4))].sort().join() === [...expected].sort().join() ? true : undefined), 10_000, { intervalMs: 50 });

  before(async function () {
    this.timeout(20 * 60_000);
    const build = await run('docker', ['build', '-f', 'nginx/Dockerfile', '-t', IMAGE, '.'], { cwd: REPO_ROOT, timeoutMs: 20 * 60_000, allowFailure: true });
    assert.equal(build.code, 0, build.stderr);
    dns = await startDns(table);
    // One free port, on every loopback address: nginx's server lines name a single port.
    const probe = createServer();
    probe.listen(0, X);
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    await close(probe);
    standIns.push(await startStandIn(X, port), await startStandIn(Y, port), await startStandIn(Z, port));
    holder = await startHolder(W, port);
    standIns.push(holder.server);
    // Free loopback ports for the page and the stand-ins for the balancers' ports (host network).
    const free = async (): Promise<number> => {
      const s = createServer();
      s.listen(0, '127.0.0.1');
      await once(s, 'listening');
      const p = (s.address() as AddressInfo).port;
      await close(s);
      return p;
    };
    const [uiPort, dataPort, adminPort] = [await free(), await free(), await free()];
    // The image's own template, with one edit per server: a free loopback port instead of 8080, 8001 and 9001.
    dir = await mkdtemp(join(tmpdir(), 'lcb-resolve-'));
    await chmod(dir, 0o755);
    const template = (await readFile(join(REPO_ROOT, 'nginx', 'default.conf.template'), 'utf8'))
      .replace('listen 8080;', `listen 127.0.0.1:${uiPort};`)
      .replace('listen 8001;', `listen 127.0.0.1:${dataPort};`)
      .replace('listen 9001;', `listen 127.0.0.1:${adminPort};`);
    assert.ok(template.includes(`listen 127.0.0.1:${uiPort};`) && template.includes(`listen 127.0.0.1:${adminPort};`));
    assert.doesNotMatch(template, /listen (8080|8001|9001);/);
    await writeFile(join(dir, 'default.conf.template'), template);
    await chmod(join(dir, 'default.conf.template'), 0o644);
    const started = await run(
      'docker',
      [
        'run', '-d', '--name', CONTAINER, '--network', 'host', '--read-only',
        '--tmpfs', '/tmp:size=16m,mode=1777', '--tmpfs', '/etc/nginx/conf.d:size=1m,uid=101,gid=101,mode=0755',
        '-v', `${join(dir, 'default.conf.template')}:/etc/nginx/templates/default.conf.template:ro`,
        '-e', `BALANCER_HOST=${NAME}`, '-e', `BALANCER_PORT=${port}`, '-e', `BALANCER_ADMIN_PORT=${port}`,
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

  it('spreads requests over every address of the name (no standby)', async () => {
    const served = await tally(10, 4);
    console.log(`      [resolve] ${NAME} = ${X}, ${Y}: ${JSON.stringify(Object.fromEntries(served))}`);
    assert.deepEqual([...served.keys()].sort(), [X, Y]);
    for (const [who, n] of served) assert.ok(n >= 10, `${who} took a share (${n} of 40)`);
    assert.ok((dns?.queries() ?? 0) > 0, 'nginx asked the test DNS');
  });

  it('an address that leaves the answer gets no request from then on; one that joins gets its share', async () => {
    table.set(NAME, [Y]);
    const changed = Date.now();
    // nginx keeps an answer for `valid=1s`: it follows within a few seconds, and from then on no
    // request may reach the address that left.
    await followed(`requests on ${Y} only`, [Y]);
    console.log(`      [resolve] nginx followed ${X} leaving in ${Date.now() - changed} ms`);
    const alone = await tally(25, 4);
    assert.deepEqual([...alone.keys()], [Y], 'only the address still in DNS served');

    table.set(NAME, [Y, Z]);
    await followed(`requests on ${Y} and ${Z}`, [Y, Z]);
    const both = await tally(10, 4);
    console.log(`      [resolve] ${NAME} = ${Y}, ${Z}: ${JSON.stringify(Object.fromEntries(both))}`);
    assert.deepEqual([...both.keys()].sort(), [Y, Z], `${X} left for good, ${Z} joined`);
  });

  it('keeps one client\'s /api/ on one address, and moves it when that address leaves the answer', async () => {
    const before = await tally(5, 2, '/api/upstreams');
    assert.equal(before.size, 1, `one address answered every /api/ request: ${JSON.stringify(Object.fromEntries(before))}`);
    const [sticky = ''] = before.keys();
    const other = sticky === Y ? Z : Y;
    table.set(NAME, [other]);
    await pollUntil(`/api/ on ${other}`, async () => ((await servedBy(1, '/api/upstreams'))[0] === other ? true : undefined), 10_000, { intervalMs: 50 });
    const after = await tally(5, 2, '/api/upstreams');
    assert.deepEqual([...after.keys()], [other]);
    table.set(NAME, [X, Y]);
  });

  /**
   * nginx 1.30 drops the retry of a request whose try on one address failed after nginx
   * re-resolved the name: its list of peers is a generation old (nginx/nginx#1656 has the same
   * cause, reported as "no live upstreams"). In the cluster that is a request on a balancer that is leaving (its connect
   * times out or its connection resets) while nginx drops that balancer's address: a 502 for a
   * request that another replica would have served. The edge sends an idempotent, bodiless request
   * once more through a fresh look at the list; anything else keeps nginx's answer.
   */
  for (const method of ['GET', 'POST'] as const) {
    it(`${method}: a request that fails on an address nginx dropped meanwhile ${method === 'GET' ? 'is served by another (not a 502)' : 'is not sent again (502)'}`, async () => {
      assert.ok(holder && dns);
      const h = holder;
      table.set(NAME, [W, Y]);
      await pollUntil(`requests on ${W} and ${Y}`, async () => {
        const res = await fetch(`${base}/images/1`, { signal: AbortSignal.timeout(300) }).catch(() => undefined);
        return res === undefined || (await res.text()) === Y ? true : undefined;
      }, 10_000, { intervalMs: 50 });
      h.resetAll();
      // Requests until one is held on W (the others go to Y and are answered at once).
      let pending: Promise<{ status: number; body: string }> | undefined;
      await pollUntil(`a ${method} held on ${W}`, async () => {
        if (h.held() > 0) return true;
        const before = h.held();
        const attempt = fetch(`${base}/images/1`, { method, ...(method === 'POST' ? { body: 'once' } : {}), signal: AbortSignal.timeout(30_000) }).then(async (r) => ({ status: r.status, body: await r.text() }));
        const first = await Promise.race([attempt, new Promise<undefined>((r) => setTimeout(r, 200))]);
        if (first === undefined && h.held() > before) pending = attempt;
        return undefined;
      }, 10_000, { intervalMs: 10 });
      assert.ok(pending, `a ${method} is held on ${W}`);
      // W leaves the answer; once nginx has asked again (valid=1s), W's connection resets.
      table.set(NAME, [Y]);
      const asked = dns.queries();
      await pollUntil('nginx to re-resolve the name twice', () => (dns && dns.queries() >= asked + 2 ? true : undefined), 10_000, { intervalMs: 20 });
      h.resetAll();
      const answer = await pending;
      const logs = await run('docker', ['logs', CONTAINER], { allowFailure: true });
      const noLive = `${logs.stdout}${logs.stderr}`.split('\n').filter((l) => l.includes('no live upstreams')).length;
      console.log(`      [resolve] ${method} held on ${W}, ${W} dropped from DNS, then reset: ${answer.status} ${answer.body.slice(0, 80)} ("no live upstreams" in nginx's log so far: ${noLive})`);
      if (method === 'GET') {
        assert.equal(answer.status, 200, `the GET was served by ${Y}: ${answer.body}`);
        assert.equal(answer.body, Y);
      } else {
        assert.equal(answer.status, 502);
        // Sent again, it would have been answered by Y.
        assert.match(answer.body, /BALANCER_UNAVAILABLE/);
      }
      table.set(NAME, [X, Y]);
    });
  }
});
