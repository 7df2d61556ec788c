import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Socket, connect } from 'node:net';
import { request } from 'undici';
import type { Snapshot, UpstreamView } from '../src/snapshot.js';
import { serializeHead, upgradeRequestHeaders } from '../src/data-path/upgrade.js';
import { deadPort, namedHandler, startBalancer, startOrigin, testConfig, waitFor } from './helpers.js';
import type { Origin, Running } from './helpers.js';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const acceptOf = (key: string) => createHash('sha1').update(key + WS_GUID).digest('base64');

/** A WebSocket origin: a real handshake (RFC 6455 §4.2.2), then it echoes raw bytes. */
interface WsOrigin {
  readonly origin: Origin;
  /** Request heads it received (upgrade or not). */
  readonly seen: { url: string; headers: Record<string, string | string[] | undefined>; rawHeaders: string[] }[];
  readonly sockets: Set<Socket>;
  /** 'accept' answers 101; 'refuse' answers 403 like an origin that does not want this client. */
  mode: 'accept' | 'refuse';
  /** When true it ignores the peer's EOF and keeps its own side open (a half-open connection). */
  halfOpen: boolean;
  /** EOFs received from the balancer. */
  eofs: number;
  close(): Promise<void>;
}

async function startWsOrigin(name: string): Promise<WsOrigin> {
  const seen: WsOrigin['seen'] = [];
  const sockets = new Set<Socket>();
  const origin = await startOrigin(namedHandler(name));
  const ws: WsOrigin = {
    origin,
    seen,
    sockets,
    mode: 'accept',
    halfOpen: false,
    eofs: 0,
    close: async () => {
      // Upgraded sockets are no HTTP connections any more: closeAllConnections does not see them.
      for (const s of sockets) s.destroy();
      await origin.close();
    },
  };
  origin.server.on('upgrade', (req, socket, head: Buffer) => {
    assert.ok(socket instanceof Socket);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.on('end', () => {
      ws.eofs++;
      if (!ws.halfOpen) socket.end(); // like a WebSocket server: the peer's EOF ends the connection
    });
    seen.push({ url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders });
    const key = req.headers['sec-websocket-key'];
    if (ws.mode === 'refuse' || typeof key !== 'string') {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 7\r\nconnection: close\r\n\r\nrefused');
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptOf(key)}\r\nX-Origin: ${name}\r\n\r\n`);
    if (head.length > 0) socket.write(head);
    socket.on('data', (chunk: Buffer) => socket.write(chunk));
  });
  return ws;
}

/** A raw client connection: everything it receives is kept in `data`. */
interface Client {
  readonly socket: Socket;
  data: Buffer;
  closed: boolean;
  /** The response head once complete (status line + headers), else undefined. */
  head(): { status: number; headers: Record<string, string>; bodyStart: number } | undefined;
}

function openClient(port: number, payload: string | Buffer): Client {
  const socket = connect(port, '127.0.0.1');
  const client: Client = {
    socket,
    data: Buffer.alloc(0),
    closed: false,
    head() {
      const end = client.data.indexOf('\r\n\r\n');
      if (end === -1) return undefined;
      const lines = client.data.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
      return { status: Number(lines[0]?.split(' ')[1]), headers, bodyStart: end + 4 };
    },
  };
  socket.on('data', (chunk: Buffer) => {
    client.data = Buffer.concat([client.data, chunk]);
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    client.closed = true;
  });
  socket.write(payload);
  return client;
}

function upgradeRequest(key: string, host = 'ws.test'): string {
  return `GET /chat?room=1 HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nX-Request-Id: ws-1\r\n\r\n`;
}

const newKey = () => randomBytes(16).toString('base64');

async function snapshotOf(lb: Running): Promise<Snapshot> {
  return (await (await request(`${lb.adminUrl}/api/upstreams`)).body.json()) as Snapshot;
}
async function viewOf(lb: Running, id: string): Promise<UpstreamView> {
  const v = (await snapshotOf(lb)).upstreams.find((u) => u.id === id);
  assert.ok(v, id);
  return v;
}
async function metricsOf(lb: Running): Promise<string> {
  return (await request(`${lb.adminUrl}/metrics`)).body.text();
}

describe('Upgrade (WebSocket) pass-through', () => {
  describe('request head for the upstream (pure)', () => {
    it('keeps Upgrade and Connection: Upgrade, strips other hop-by-hop headers, adds X-Forwarded-*', () => {
      const out = upgradeRequestHeaders(
        ['Host', 'ws.test', 'Connection', 'keep-alive, Upgrade, X-Hop', 'Upgrade', 'websocket', 'X-Hop', '1', 'Sec-WebSocket-Key', 'k', 'Keep-Alive', 'timeout=5'],
        { remoteAddress: '10.1.2.3', proto: 'http', requestId: 'id-1', trusted: false },
      );
      const pairs = new Map<string, string>();
      for (let i = 0; i < out.length; i += 2) pairs.set((out[i] ?? '').toLowerCase(), out[i + 1] ?? '');
      assert.equal(pairs.get('connection'), 'upgrade');
      assert.equal(pairs.get('upgrade'), 'websocket');
      assert.equal(pairs.get('sec-websocket-key'), 'k');
      assert.equal(pairs.get('x-forwarded-for'), '10.1.2.3');
      assert.equal(pairs.get('x-forwarded-host'), 'ws.test');
      assert.equal(pairs.get('x-forwarded-proto'), 'http');
      assert.equal(pairs.get('x-request-id'), 'id-1');
      assert.equal(pairs.has('x-hop'), false);
      assert.equal(pairs.has('keep-alive'), false);
    });

    it('refuses to serialise a head with CR, LF or NUL anywhere (it goes onto the socket as is)', () => {
      assert.equal(serializeHead('GET', '/a', ['host', 'x']), 'GET /a HTTP/1.1\r\nhost: x\r\n\r\n');
      assert.equal(serializeHead('GET', '/a', ['x-id', 'a\r\nInjected: 1']), undefined);
      assert.equal(serializeHead('GET', '/a', ['x-id', 'a\nb']), undefined);
      assert.equal(serializeHead('GET', '/a', ['x\r\nid', 'a']), undefined);
      assert.equal(serializeHead('GET', '/a', ['x-id', 'a\0']), undefined);
      assert.equal(serializeHead('GET', '/a HTTP/1.1\r\nX: y', []), undefined);
      assert.equal(serializeHead('GET', '/a b', []), undefined);
    });
  });

  describe('through a running balancer', () => {
    let ws: WsOrigin[] = [];
    let others: Origin[] = [];
    let clients: Client[] = [];
    let lb: Running | undefined;

    afterEach(async () => {
      for (const c of clients) c.socket.destroy();
      clients = [];
      await lb?.balancer.stop();
      lb = undefined;
      await Promise.all([...ws.map((w) => w.close()), ...others.map((o) => o.close())]);
      ws = [];
      others = [];
    });

    const client = (payload: string | Buffer): Client => {
      assert.ok(lb);
      const c = openClient(lb.addresses.data.port, payload);
      clients.push(c);
      return c;
    };
    const switched = async (c: Client): Promise<void> => {
      await waitFor(() => c.head() !== undefined || c.closed, 3000, 'the upgrade answer');
      assert.equal(c.head()?.status, 101, c.data.toString('latin1'));
    };

    it('completes a real handshake, exchanges bytes both ways, counts in-flight and longLived while open', async () => {
      const w = await startWsOrigin('ws');
      ws = [w];
      lb = await startBalancer(testConfig([w.origin.port]));
      const running = lb;
      const key = newKey();
      const c = client(upgradeRequest(key));
      await switched(c);
      const head = c.head();
      assert.equal(head?.headers['sec-websocket-accept'], acceptOf(key));
      assert.equal(head.headers.upgrade, 'websocket');

      // The upstream saw the upgrade with the proxy's forwarding headers.
      const seen = w.seen[0];
      assert.ok(seen);
      assert.equal(seen.url, '/chat?room=1');
      assert.equal(seen.headers.upgrade, 'websocket');
      assert.match(String(seen.headers.connection), /upgrade/i);
      assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(seen.headers['x-forwarded-host'], 'ws.test');
      assert.equal(seen.headers['x-forwarded-proto'], 'http');
      assert.equal(seen.headers['x-request-id'], 'ws-1');
      assert.equal(seen.headers.host, 'ws.test');

      // Bytes both ways, every byte value included.
      const payload = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const before = c.data.length;
      c.socket.write(payload);
      await waitFor(() => c.data.length >= before + payload.length, 2000, 'echo');
      assert.deepEqual(c.data.subarray(before), payload);

      const open = await viewOf(running, w.origin.id);
      assert.equal(open.inFlight, 1);
      assert.equal(open.longLived, 1);
      const metrics = await metricsOf(running);
      assert.match(metrics, new RegExp(`^lb_upstream_long_lived_connections\\{upstream="${w.origin.id}"\\} 1$`, 'm'));
      assert.match(metrics, new RegExp(`^lb_upgrades_total\\{upstream="${w.origin.id}",outcome="tunnel"\\} 1$`, 'm'));

      c.socket.end();
      await waitFor(() => w.sockets.size === 0, 2000, 'the upstream side closed too');
      await waitFor(async () => {
        const v = await viewOf(running, w.origin.id);
        return v.inFlight === 0 && v.longLived === 0;
      }, 2000, 'inFlight and longLived back to 0');
      assert.match(await metricsOf(running), new RegExp(`^lb_upstream_long_lived_connections\\{upstream="${w.origin.id}"\\} 0$`, 'm'));
      assert.equal(running.balancer.registry.get(w.origin.id)?.requests, 1, 'released exactly once');
    });

    it('forwards bytes sent right behind the request head (the head buffer)', async () => {
      const w = await startWsOrigin('ws');
      ws = [w];
      lb = await startBalancer(testConfig([w.origin.port]));
      const early = Buffer.from([0x81, 0x02, 0x68, 0x69]);
      const c = client(Buffer.concat([Buffer.from(upgradeRequest(newKey())), early]));
      await switched(c);
      const bodyStart = c.head()?.bodyStart ?? 0;
      await waitFor(() => c.data.length >= bodyStart + early.length, 2000, 'early bytes echoed');
      assert.deepEqual(c.data.subarray(bodyStart, bodyStart + early.length), early);
    });

    it('closes the client when the upstream closes, and releases once', async () => {
      const w = await startWsOrigin('ws');
      ws = [w];
      lb = await startBalancer(testConfig([w.origin.port]));
      const running = lb;
      const c = client(upgradeRequest(newKey()));
      await switched(c);
      await waitFor(() => w.sockets.size === 1);
      for (const s of w.sockets) s.destroy();
      await waitFor(() => c.closed, 2000, 'client closed');
      await waitFor(() => running.balancer.registry.inFlight() === 0, 2000, 'released');
      const u = running.balancer.registry.get(w.origin.id);
      assert.equal(u?.longLived, 0);
      assert.equal(u.inFlight, 0);
      assert.equal(u.requests, 1);
    });

    it('ends the tunnel on an EOF from the client even when the upstream would keep its side open', async () => {
      const w = await startWsOrigin('ws');
      w.halfOpen = true;
      ws = [w];
      lb = await startBalancer(testConfig([w.origin.port]));
      const running = lb;
      const c = client(upgradeRequest(newKey()));
      await switched(c);
      c.socket.end();
      await waitFor(() => c.closed, 2000, 'client side closed');
      await waitFor(() => w.eofs === 1, 2000, 'the upstream got the EOF');
      await waitFor(() => running.balancer.registry.inFlight() === 0, 2000, 'released');
      assert.equal(running.balancer.registry.get(w.origin.id)?.longLived, 0);
    });

    it('passes an upstream refusal through unchanged and releases when it closes', async () => {
      const w = await startWsOrigin('ws');
      w.mode = 'refuse';
      ws = [w];
      lb = await startBalancer(testConfig([w.origin.port]));
      const running = lb;
      const c = client(upgradeRequest(newKey()));
      await waitFor(() => c.closed, 2000, 'refused and closed');
      const head = c.head();
      assert.equal(head?.status, 403);
      assert.equal(c.data.subarray(head.bodyStart).toString(), 'refused');
      await waitFor(() => running.balancer.registry.inFlight() === 0, 2000, 'released');
      assert.equal(running.balancer.registry.get(w.origin.id)?.longLived, 0);
    });

    it('502 LB_UPSTREAM_CONNECT (raw JSON) when the upstream refuses the connection', async () => {
      lb = await startBalancer(testConfig([await deadPort()]));
      const running = lb;
      const c = client(upgradeRequest(newKey()));
      await waitFor(() => c.closed, 3000, 'answered and closed');
      const head = c.head();
      assert.equal(head?.status, 502);
      assert.equal(head.headers['content-type'], 'application/json');
      const body = JSON.parse(c.data.subarray(head.bodyStart).toString()) as { error: string; message: string };
      assert.equal(body.error, 'LB_UPSTREAM_CONNECT');
      assert.match(body.message, /ECONNREFUSED/);
      const u = running.balancer.registry.list()[0];
      assert.equal(u?.inFlight, 0);
      assert.equal(u.longLived, 0);
      assert.match(await metricsOf(running), /^lb_upgrades_total\{upstream="127\.0\.0\.1:\d+",outcome="connect_error"\} 1$/m);
    });

    it('503 LB_NO_UPSTREAM when none is available, and when every one is at its cap', async () => {
      const w = await startWsOrigin('ws');
      ws = [w];
      // Without panic mode, which would still try the one upstream once it is down.
      lb = await startBalancer(testConfig([w.origin.port], { maxInFlight: 1, panic: false }));
      const running = lb;
      const first = client(upgradeRequest(newKey()));
      await switched(first);
      const capped = client(upgradeRequest(newKey()));
      await waitFor(() => capped.closed, 2000, 'capped answer');
      assert.equal(capped.head()?.status, 503);
      assert.match(capped.data.toString(), /"error":"LB_NO_UPSTREAM","message":"every upstream is at its in-flight cap"/);

      const u = running.balancer.registry.get(w.origin.id);
      assert.ok(u);
      running.balancer.registry.setState(u, 'down', 'test');
      const none = client(upgradeRequest(newKey()));
      await waitFor(() => none.closed, 2000, 'no-upstream answer');
      assert.equal(none.head()?.status, 503);
      assert.match(none.data.toString(), /"error":"LB_NO_UPSTREAM","message":"no upstream is available"/);
      assert.equal(w.seen.length, 1, 'only the first upgrade reached the upstream');
    });

    it('a tunnel counts for least-connections: plain requests go to the other upstream while it is open', async () => {
      const w = await startWsOrigin('ws');
      const plain = await startOrigin(namedHandler('plain'));
      ws = [w];
      others = [plain];
      lb = await startBalancer(testConfig([w.origin.port, plain.port], { exposeUpstream: true }));
      const running = lb;
      // Only the WebSocket upstream is up while the tunnel is opened.
      const p = running.balancer.registry.get(plain.id);
      assert.ok(p);
      running.balancer.registry.setState(p, 'down', 'test');
      const c = client(upgradeRequest(newKey()));
      await switched(c);
      running.balancer.registry.setState(p, 'up', 'test');
      for (let i = 0; i < 5; i++) {
        const res = await request(`${running.url}/x`);
        assert.equal(await res.body.text(), 'plain');
        assert.equal(res.headers['x-upstream'], plain.id);
      }
    });

    it('refuses a bad upgrade head (two Host headers) before any upstream sees it', async () => {
      const w = await startWsOrigin('ws');
      ws = [w];
      lb = await startBalancer(testConfig([w.origin.port]));
      const c = client(upgradeRequest(newKey()).replace('Host: ws.test\r\n', 'Host: ws.test\r\nHost: evil.test\r\n'));
      await waitFor(() => c.closed, 2000, 'refused');
      assert.equal(c.head()?.status, 400);
      assert.match(c.data.toString(), /"error":"LB_BAD_REQUEST"/);
      assert.equal(w.seen.length, 0);
      assert.equal(lb.balancer.registry.inFlight(), 0);
    });

    it('outlives the client header and keep-alive timeouts (they are for HTTP, not tunnels)', async () => {
      const w = await startWsOrigin('ws');
      ws = [w];
      lb = await startBalancer(testConfig([w.origin.port], { clientHeaderTimeoutMs: 200, clientKeepAliveTimeoutMs: 200 }));
      const c = client(upgradeRequest(newKey()));
      await switched(c);
      // Witnesses on the same server: a silent connection (header timeout) and an idle keep-alive one.
      const silent = client('');
      const idle = client('GET /x HTTP/1.1\r\nHost: a\r\n\r\n');
      await waitFor(() => silent.closed && idle.closed, 3000, 'both timeouts fired');
      assert.equal(c.closed, false);
      const before = c.data.length;
      c.socket.write('still here');
      await waitFor(() => c.data.length >= before + 10, 2000, 'echo after the timeouts');
      assert.equal(c.data.subarray(before).toString(), 'still here');
    });

    it('stop() cuts open tunnels at the shutdown deadline instead of hanging', async () => {
      const w = await startWsOrigin('ws');
      ws = [w];
      lb = await startBalancer(testConfig([w.origin.port], { shutdownTimeoutMs: 200 }));
      const running = lb;
      const c = client(upgradeRequest(newKey()));
      await switched(c);
      // A stop() that waited for the tunnel would hang here, past the test's timeout.
      await running.balancer.stop();
      await waitFor(() => c.closed, 2000, 'the client side was cut');
      await waitFor(() => w.sockets.size === 0, 2000, 'the upstream side was cut');
    });
  });
});
