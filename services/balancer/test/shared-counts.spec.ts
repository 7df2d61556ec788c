import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { request } from 'undici';
import { Registry as PromRegistry } from 'prom-client';
import { parseConfig } from '../src/config.js';
import { createPeers } from '../src/peers/peers.js';
import { encodeReport, MAX_REPORT_BYTES } from '../src/peers/report.js';
import { createBalancer } from '../src/server.js';
import type { Balancer } from '../src/server.js';
import { namedHandler, parseMetrics, silentLogger, startBalancer, startOrigin, testConfig, testRegistry, waitFor } from './helpers.js';
import type { Origin, Running } from './helpers.js';

// Issue 25: balancers that know each other's load. Two balancers share their in-flight counts over
// UDP; least-connections on one of them avoids the backend the other one keeps busy.

/** A UDP socket bound on `host` (port 0 = any free one). */
async function udpSocket(host = '127.0.0.1', port = 0): Promise<Socket> {
  const socket = createSocket('udp4');
  socket.bind(port, host);
  await once(socket, 'listening');
  return socket;
}

/** A UDP port that was free a moment ago on `host` (bound, then released). */
async function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  const socket = await udpSocket(host);
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => { resolve(); }));
  return port;
}

const send = (socket: Socket, bytes: Uint8Array | string, port: number, host = '127.0.0.1'): Promise<void> =>
  new Promise((resolve, reject) => {
    socket.send(bytes, port, host, (err) => {
      if (err === null) resolve();
      else reject(err);
    });
  });

/** Which backend answered each of `n` requests in a row. */
async function servedBy(url: string, n: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await request(`${url}/`);
    names.push(await res.body.text());
  }
  return names;
}

const upstreamView = (balancer: Balancer, id: string) => {
  const view = balancer.snapshot().upstreams.find((u) => u.id === id);
  assert.ok(view, `${id} is known`);
  return view;
};

async function metricsOf(running: Running): Promise<Map<string, number>> {
  const res = await request(`${running.adminUrl}/metrics`);
  return parseMetrics(await res.body.text());
}

describe('shared in-flight counts between balancers (issue 25)', () => {
  let x: Origin | undefined;
  let y: Origin | undefined;
  let balancers: Running[] = [];
  const sockets: Socket[] = [];
  const held: ServerResponse[] = [];

  beforeEach(async () => {
    // X holds /hold until the test releases it; both answer anything else with their name at once.
    x = await startOrigin((req, res) => {
      if (req.url === '/hold') held.push(res);
      else namedHandler('X')(req, res);
    });
    y = await startOrigin(namedHandler('Y'));
  });

  afterEach(async () => {
    for (const res of held.splice(0)) res.end('X');
    await Promise.all(balancers.map((b) => b.balancer.stop()));
    balancers = [];
    for (const s of sockets.splice(0)) s.close();
    await Promise.all([x?.close(), y?.close()]);
  });

  const backends = (): { x: Origin; y: Origin } => {
    assert.ok(x && y);
    return { x, y };
  };

  /** A balancer over X and Y; rotation ties, so that with equal counts sequential requests alternate. */
  async function balancer(argv: readonly string[] = [], deps: Parameters<typeof startBalancer>[1] = {}): Promise<Running> {
    const { x: bx, y: by } = backends();
    const running = await startBalancer(testConfig([bx.port, by.port], {}, ['--tie-break', 'rotation', ...argv]), deps);
    balancers.push(running);
    return running;
  }

  /** Two balancers, each the other's --peer. */
  async function pair(extra: readonly string[] = []): Promise<[Running, Running]> {
    const [portA, portB] = [await freeUdpPort(), await freeUdpPort()];
    const a = await balancer(['--peers-port', String(portA), '--peer', `127.0.0.1:${portB}`, ...extra]);
    const b = await balancer(['--peers-port', String(portB), '--peer', `127.0.0.1:${portA}`, ...extra]);
    return [a, b];
  }

  /**
   * Sends /hold through `via` until one lands on X (one on Y is answered at once); resolves when X
   * holds it, with its response to come (wrapped: an async function would wait for a returned promise).
   */
  async function holdOnX(via: Running): Promise<{ readonly response: Promise<string> }> {
    const { x: bx } = backends();
    const before = held.length;
    for (;;) {
      let done = false;
      const response = request(`${via.url}/hold`).then((r) => r.body.text()).finally(() => (done = true));
      await waitFor(() => held.length > before || done, 5000, 'the hold to land');
      if (held.length > before) {
        assert.equal(upstreamView(via.balancer, bx.id).inFlight, 1);
        return { response };
      }
    }
  }

  it('THE test: while A holds a request on X, four requests in a row through B all go to Y', async () => {
    const { x: bx } = backends();
    const [a, b] = await pair();
    const { response: long } = await holdOnX(a);
    // B has A's report: X is busy across the balancers, though not on B.
    await waitFor(() => upstreamView(b.balancer, bx.id).inFlightCluster === 1, 5000, 'B to hear of A\'s request on X');
    assert.equal(upstreamView(b.balancer, bx.id).inFlight, 0, 'B\'s own count is its own');

    assert.deepEqual(await servedBy(b.url, 4), ['Y', 'Y', 'Y', 'Y']);

    // Seen: B's snapshot and metrics show A as a live peer and X's cluster-wide count.
    const peers = b.balancer.snapshot().peers;
    assert.equal(peers.length, 1);
    const [peer] = peers;
    assert.ok(peer);
    assert.equal(peer.address, `127.0.0.1:${a.balancer.peers.port}`);
    assert.equal(peer.id, a.balancer.peers.instanceId);
    assert.equal(peer.state, 'live');
    assert.equal(typeof peer.ageMs, 'number');
    const metrics = await metricsOf(b);
    assert.equal(metrics.get(`lb_upstream_in_flight_cluster{upstream="${bx.id}"}`), 1);
    assert.equal(metrics.get(`lb_upstream_in_flight{upstream="${bx.id}"}`), 0);
    assert.equal(metrics.get('lb_peers_live'), 1);
    assert.ok((metrics.get('lb_peer_reports_received_total') ?? 0) > 0);
    assert.ok(metrics.has(`lb_peer_report_age_seconds{peer="127.0.0.1:${a.balancer.peers.port}"}`));

    for (const res of held.splice(0)) res.end('X');
    assert.equal(await long, 'X');
    // Released on A, and B hears of that too.
    await waitFor(() => upstreamView(b.balancer, bx.id).inFlightCluster === 0, 5000, 'B to hear that A\'s request ended');
  });

  it('with sharing off, B does not know of A\'s request: its requests alternate over X and Y', async () => {
    const { x: bx } = backends();
    const a = await balancer();
    const b = await balancer();
    const { response: long } = await holdOnX(a);
    const names = await servedBy(b.url, 4);
    assert.ok(names.includes('X'), names.join(','));
    for (let i = 1; i < names.length; i++) assert.notEqual(names[i], names[i - 1], `alternate: ${names.join(',')}`);
    assert.equal(upstreamView(b.balancer, bx.id).inFlightCluster, 0);
    assert.deepEqual(b.balancer.snapshot().peers, []);
    for (const res of held.splice(0)) res.end('X');
    await long;
  });

  const TOKEN = 'peer-admin';
  const putSharing = async (via: Running, body: unknown, token: string | null = TOKEN) => {
    const res = await request(`${via.adminUrl}/api/peers`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
      body: JSON.stringify(body),
    });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
  };
  const alternates = (names: readonly string[]): void => {
    assert.ok(names.includes('X'), names.join(','));
    for (let i = 1; i < names.length; i++) assert.notEqual(names[i], names[i - 1], `alternate: ${names.join(',')}`);
  };
  const peerState = (of: Running): string | undefined => of.balancer.snapshot().peers[0]?.state;

  it('switched off on B (PUT /api/peers): B picks on its own counts, so the done-when alternates; it still hears A; back on, it shares again', async () => {
    const { x: bx } = backends();
    const [a, b] = await pair(['--admin-token', TOKEN]);
    const { response: long } = await holdOnX(a);
    await waitFor(() => upstreamView(b.balancer, bx.id).inFlightCluster === 1, 5000, 'B to hear of A\'s request on X');

    const off = await putSharing(b, { sharing: false });
    assert.equal(off.status, 200, JSON.stringify(off.body));
    assert.equal(off.body.sharing, false);
    assert.equal(b.balancer.snapshot().sharing, false);
    assert.equal((await metricsOf(b)).get('lb_peer_sharing'), 0);
    assert.equal(upstreamView(b.balancer, bx.id).inFlightCluster, 0, 'own counts only');
    alternates(await servedBy(b.url, 4));
    assert.equal(peerState(b), 'live', 'B still hears A and shows its age');
    // B sends nothing now: A drops it after the timeout.
    await waitFor(() => peerState(a) === 'dropped', 5000, 'A to drop the silent B');

    const on = await putSharing(b, { sharing: true });
    assert.equal(on.body.sharing, true);
    assert.equal((await metricsOf(b)).get('lb_peer_sharing'), 1);
    await waitFor(() => upstreamView(b.balancer, bx.id).inFlightCluster === 1, 5000, 'B to count A\'s request again');
    assert.deepEqual(await servedBy(b.url, 4), ['Y', 'Y', 'Y', 'Y']);
    await waitFor(() => peerState(a) === 'live', 5000, 'A to hear B again');
    for (const res of held.splice(0)) res.end('X');
    await long;
  });

  it('switched off on A, the one holding the request: B drops A after --peer-timeout-ms and alternates; one switch isolates the pair', async () => {
    const { x: bx } = backends();
    const [a, b] = await pair(['--admin-token', TOKEN]);
    const { response: long } = await holdOnX(a);
    await waitFor(() => upstreamView(b.balancer, bx.id).inFlightCluster === 1, 5000, 'B to hear of A\'s request on X');
    assert.equal((await putSharing(a, { sharing: false })).status, 200);
    await waitFor(() => peerState(b) === 'dropped', 5000, 'B to drop the silent A');
    await waitFor(() => upstreamView(b.balancer, bx.id).inFlightCluster === 0, 5000, 'A\'s counts to stop counting on B');
    alternates(await servedBy(b.url, 4));
    for (const res of held.splice(0)) res.end('X');
    await long;
  });

  it('GET /api/peers names each peer\'s data and admin URL (from its reports); the switch is guarded like every admin write', async () => {
    const [a, b] = await pair(['--admin-token', TOKEN]);
    await waitFor(() => b.balancer.peers.view()[0]?.dataUrl != null, 5000, 'B to learn A\'s ports');
    const res = await request(`${b.adminUrl}/api/peers`);
    const view = (await res.body.json()) as { sharing: boolean; enabled: boolean; instanceId: string; peers: { id: string; dataUrl: string; adminUrl: string; state: string }[] };
    assert.equal(view.sharing, true);
    assert.equal(view.enabled, true);
    assert.equal(view.instanceId, b.balancer.peers.instanceId);
    const [seen] = view.peers;
    assert.ok(seen);
    assert.equal(seen.id, a.balancer.peers.instanceId);
    assert.equal(seen.dataUrl, a.url);
    assert.equal(seen.adminUrl, a.adminUrl);

    assert.equal((await putSharing(b, { sharing: false }, null)).status, 401);
    assert.equal((await putSharing(b, { sharing: false }, 'wrong')).status, 401);
    const bad = await putSharing(b, { sharing: 'off' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'LB_BAD_REQUEST');
    assert.equal((await putSharing(b, { sharing: false, extra: 1 })).status, 400);
    assert.equal(b.balancer.peers.sharing, true, 'nothing refused changed anything');

    const alone = await balancer(['--admin-token', TOKEN]);
    const refused = await putSharing(alone, { sharing: false });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error, 'LB_NO_PEERS');
    assert.match(String(refused.body.message), /--peer/);
    assert.equal((await metricsOf(alone)).get('lb_peer_sharing'), 0);
    assert.equal(alone.balancer.snapshot().sharing, false);
  });

  it('--no-peer-sharing: the balancer starts isolated (hears, sends nothing) until switched on', async () => {
    const [portA, portB] = [await freeUdpPort(), await freeUdpPort()];
    const a = await balancer(['--peers-port', String(portA), '--peer', `127.0.0.1:${portB}`, '--no-peer-sharing', '--admin-token', TOKEN]);
    const b = await balancer(['--peers-port', String(portB), '--peer', `127.0.0.1:${portA}`]);
    await waitFor(() => peerState(a) === 'live', 5000, 'A to hear B');
    assert.equal(a.balancer.peers.sharing, false);
    assert.equal((await metricsOf(a)).get('lb_peer_sharing'), 0);
    assert.notEqual(peerState(b), 'live', 'B has heard nothing from A');
    assert.equal((await putSharing(a, { sharing: true })).status, 200);
    await waitFor(() => peerState(b) === 'live', 5000, 'B to hear A once it shares');
  });

  it('p2c and peak-EWMA read the cluster-wide count too', async () => {
    const { x: bx } = backends();
    const [a, b] = await pair();
    const { response: long } = await holdOnX(a);
    await waitFor(() => upstreamView(b.balancer, bx.id).inFlightCluster === 1, 5000, 'B to hear of A\'s request on X');
    for (const policy of ['p2c', 'peak-ewma'] as const) {
      b.balancer.policy.set(policy);
      // Two candidates: P2C draws both every time, so the less loaded one always wins.
      assert.deepEqual(await servedBy(b.url, 4), ['Y', 'Y', 'Y', 'Y'], policy);
    }
    for (const res of held.splice(0)) res.end('X');
    await long;
  });

  it('with --workers 2, the worker threads\' pickers read the peers\' counts too (shared cells)', async () => {
    const { x: bx } = backends();
    const [a, b] = await pair(['--workers', '2']);
    assert.equal(b.balancer.workers, 2);
    const { response: long } = await holdOnX(a);
    await waitFor(() => upstreamView(b.balancer, bx.id).inFlightCluster === 1, 5000, 'B to hear of A\'s request on X');
    // New connections until the worker thread has served a few (the kernel spreads them over both threads).
    const names: string[] = [];
    const workerServed = async (): Promise<number> => (await metricsOf(b)).get('lb_thread_requests_total{thread="1"}') ?? 0;
    while ((await workerServed()) < 3 && names.length < 400) {
      const res = await request(`${b.url}/`, { reset: true });
      names.push(await res.body.text());
    }
    assert.ok((await workerServed()) >= 3, `the worker served ${await workerServed()} of ${names.length}`);
    assert.deepEqual([...new Set(names)], ['Y'], 'every thread avoided X');
    for (const res of held.splice(0)) res.end('X');
    await long;
  });

  it('a peer that stops reporting is dropped after --peer-timeout-ms: B falls back to its own counts', async () => {
    const { x: bx } = backends();
    // The peer is this test's socket: it reports once and then says nothing more.
    const peer = await udpSocket();
    sockets.push(peer);
    const b = await balancer(['--peers-port', '0', '--peer', `127.0.0.1:${peer.address().port}`, '--peer-timeout-ms', '200']);
    const bPort = b.balancer.peers.port;
    assert.ok(bPort !== undefined);
    await send(peer, encodeReport('00000000000000aa', 1, [[bx.id, 3]]).bytes, bPort);
    await waitFor(() => upstreamView(b.balancer, bx.id).inFlightCluster === 3, 5000, 'B to take the report');
    assert.equal(b.balancer.snapshot().peers[0]?.state, 'live');
    assert.deepEqual(await servedBy(b.url, 2), ['Y', 'Y']);

    await waitFor(() => b.balancer.snapshot().peers[0]?.state === 'dropped', 5000, 'the silent peer to be dropped');
    const dropped = b.balancer.snapshot().peers[0];
    // Dropped once silent for more than 200 ms; the age is shown rounded to the millisecond, so 200.3 shows 200.
    assert.ok(dropped?.ageMs !== null && dropped?.ageMs !== undefined && dropped.ageMs >= 200, `dropped after the timeout (age ${String(dropped?.ageMs)} ms)`);
    assert.equal(dropped.id, '00000000000000aa', 'still listed, with its last id and age');
    await waitFor(() => upstreamView(b.balancer, bx.id).inFlightCluster === 0, 5000, 'its counts to stop counting');
    assert.equal((await metricsOf(b)).get('lb_peers_live'), 0);
    const names = await servedBy(b.url, 4);
    assert.ok(names.includes('X'), `own counts again: ${names.join(',')}`);

    // Reporting again, it counts again (a newer report of the same instance).
    await send(peer, encodeReport('00000000000000aa', 2, [[bx.id, 1]]).bytes, bPort);
    await waitFor(() => upstreamView(b.balancer, bx.id).inFlightCluster === 1, 5000, 'the peer to count again');
  });

  it('malformed, oversized, stale and foreign datagrams are ignored and counted; the balancer carries on', async () => {
    const { x: bx } = backends();
    const peer = await udpSocket();
    const stranger = await udpSocket();
    sockets.push(peer, stranger);
    const b = await balancer(['--peers-port', '0', '--peer', `127.0.0.1:${peer.address().port}`]);
    const bPort = b.balancer.peers.port;
    assert.ok(bPort !== undefined);
    const before = await metricsOf(b);
    const rejected = (m: Map<string, number>, reason: string): number => (m.get(`lb_peer_reports_rejected_total{reason="${reason}"}`) ?? 0) - (before.get(`lb_peer_reports_rejected_total{reason="${reason}"}`) ?? 0);

    const malformed = [
      'not json',
      '',
      '[]',
      'null',
      Buffer.from([0xff, 0xfe, 0x00]),
      JSON.stringify({ v: 2, from: '00000000000000aa', seq: 1, inFlight: {} }),
      JSON.stringify({ v: 1, from: 'me', seq: 1, inFlight: {} }),
      JSON.stringify({ v: 1, from: '00000000000000aa', seq: -1, inFlight: {} }),
      JSON.stringify({ v: 1, from: '00000000000000aa', seq: 1, inFlight: [] }),
      JSON.stringify({ v: 1, from: '00000000000000aa', seq: 1, inFlight: { [bx.id]: -5 } }),
      JSON.stringify({ v: 1, from: '00000000000000aa', seq: 1, inFlight: { [bx.id]: 1.5 } }),
      JSON.stringify({ v: 1, from: '00000000000000aa', seq: 1, inFlight: { [bx.id]: 1e9 } }),
      JSON.stringify({ v: 1, from: '00000000000000aa', seq: 1, inFlight: { [bx.id]: '3' } }),
      JSON.stringify({ v: 1, from: '00000000000000aa', seq: 1, inFlight: { ['x'.repeat(300)]: 1 } }),
      JSON.stringify({ v: 1, from: '00000000000000aa', seq: 1, inFlight: Object.fromEntries(Array.from({ length: 1100 }, (_, i) => [`h${i}:1`, 1])) }),
    ];
    for (const datagram of malformed) await send(peer, datagram, bPort);
    await send(peer, Buffer.alloc(MAX_REPORT_BYTES + 1, 0x20), bPort);
    // Well formed, from an address that is no peer of B's.
    await send(stranger, encodeReport('00000000000000bb', 1, [[bx.id, 7]]).bytes, bPort);
    // A report, then an older one of the same sender (reordered on the way).
    await send(peer, encodeReport('00000000000000aa', 5, [[bx.id, 2]]).bytes, bPort);
    await send(peer, encodeReport('00000000000000aa', 4, [[bx.id, 9]]).bytes, bPort);
    // `__proto__` as an upstream id is just an id no upstream has.
    await send(peer, `{"v":1,"from":"00000000000000aa","seq":6,"inFlight":{"__proto__":4,"${bx.id}":2}}`, bPort);

    await waitFor(async () => {
      const m = await metricsOf(b);
      return rejected(m, 'malformed') === malformed.length && rejected(m, 'too_large') === 1 && rejected(m, 'unknown_sender') === 1 && rejected(m, 'stale') === 1 && (m.get('lb_peer_reports_received_total') ?? 0) === 2;
    }, 5000, 'every datagram to be counted');
    // Only the good reports count; the stranger's 7 and the stale 9 never did.
    assert.equal(upstreamView(b.balancer, bx.id).inFlightCluster, 2);
    assert.deepEqual(await servedBy(b.url, 2), ['Y', 'Y'], 'still serving, on the counts it believes');
  });

  it('--peers-dns: each balancer finds itself in the answer and skips it, and hears the other', async () => {
    const { x: bx } = backends();
    // Two balancers as in Compose: one address each, the same peer port, one name for both.
    const port = await freeUdpPort('127.0.0.2');
    const resolved: string[] = [];
    const resolve = (name: string): Promise<string[]> => {
      resolved.push(name);
      return Promise.resolve(name === 'balancers' ? ['127.0.0.2', '127.0.0.3'] : []);
    };
    const dns = ['--peers-dns', 'balancers', '--peers-port', String(port), '--peers-dns-interval-ms', '100'];
    const a = await balancer(['--admin-host', '127.0.0.2', ...dns], { resolve });
    const b = await balancer(['--admin-host', '127.0.0.3', ...dns], { resolve });
    assert.ok(resolved.includes('balancers'));
    const addressesOf = (r: Running) => (r.balancer.snapshot().peers).map((p) => p.address);
    await waitFor(() => addressesOf(a).length === 1 && addressesOf(b).length === 1, 5000, 'each to recognise its own address');
    assert.deepEqual(addressesOf(a), [`127.0.0.3:${port}`]);
    assert.deepEqual(addressesOf(b), [`127.0.0.2:${port}`]);
    await waitFor(() => b.balancer.snapshot().peers[0]?.state === 'live', 5000, 'B to hear A');
    assert.equal(b.balancer.snapshot().peers[0]?.id, a.balancer.peers.instanceId);

    const { response: long } = await holdOnX(a);
    await waitFor(() => upstreamView(b.balancer, bx.id).inFlightCluster === 1, 5000, 'B to hear of A\'s request on X');
    // A does not count its own report back: its request counts once.
    assert.equal(upstreamView(a.balancer, bx.id).inFlightCluster, 1);
    const dataUrl = `http://127.0.0.1:${b.addresses.data.port}`;
    assert.deepEqual(await servedBy(dataUrl, 4), ['Y', 'Y', 'Y', 'Y']);
    for (const res of held.splice(0)) res.end('X');
    await long;
  });

  it('config: --peer repeatable and LB_PEERS comma-separated; bad values are named clearly', () => {
    const ok = (argv: string[], env: Record<string, string> = {}) => {
      const r = parseConfig(argv, env);
      if (r.kind !== 'config') assert.fail(JSON.stringify(r));
      return r.config.peers;
    };
    const errorsOf = (argv: string[], env: Record<string, string> = {}) => {
      const r = parseConfig(argv, env);
      return r.kind === 'error' ? r.errors : [];
    };
    assert.deepEqual(ok(['a:1']), { static: [], dns: '', port: 9001, intervalMs: 20, timeoutMs: 250, sharing: true, dnsIntervalMs: 1000 });
    assert.equal(ok(['a:1', '--no-peer-sharing']).sharing, false);
    assert.equal(ok(['a:1'], { LB_PEER_SHARING: 'off' }).sharing, false);
    assert.deepEqual(ok(['a:1', '--peer', '10.0.0.2:9001', '--peer', '[fd00::3]:9001', '--peer', 'balancer-b:9001']).static, [
      { host: '10.0.0.2', port: 9001 },
      { host: 'fd00::3', port: 9001 },
      { host: 'balancer-b', port: 9001 },
    ]);
    assert.deepEqual(ok(['a:1'], { LB_PEERS: '10.0.0.2:9001, 10.0.0.3:9001' }).static.map((p) => p.host), ['10.0.0.2', '10.0.0.3']);
    assert.deepEqual(ok(['a:1', '--peer', '10.0.0.9:1'], { LB_PEERS: '10.0.0.2:9001' }).static.map((p) => p.host), ['10.0.0.9'], 'flags win over env');
    assert.equal(ok(['a:1'], { LB_PEERS_DNS: ' balancer ' }).dns, 'balancer');

    assert.deepEqual(errorsOf(['a:1', '--peer', 'balancer-b']), ['--peer "balancer-b": expected host:port (the peer\'s --peers-port)']);
    assert.deepEqual(errorsOf(['a:1', '--peer', '10.0.0.2:70000']), ['--peer "10.0.0.2:70000": port must be 1-65535']);
    assert.deepEqual(errorsOf(['a:1', '--peer', '10.0.0.2:1', '--peer', '10.0.0.2:1']), ['--peer "10.0.0.2:1": listed twice']);
    assert.deepEqual(errorsOf(['a:1'], { LB_PEERS: '10.0.0.2:9001,nope' }), ['LB_PEERS "nope": expected host:port (the peer\'s --peers-port)']);
    assert.deepEqual(errorsOf(['a:1', '--peer-timeout-ms', '40', '--peer-interval-ms', '50']), [
      '--peer-timeout-ms / LB_PEER_TIMEOUT_MS (40) must be longer than --peer-interval-ms / LB_PEER_INTERVAL_MS (50): every peer would be dropped between two of its reports',
    ]);
    assert.deepEqual(errorsOf(['a:1', '--peers-dns', 'balancer', '--peers-port', '0']), [
      '--peers-dns / LB_PEERS_DNS needs a --peers-port / LB_PEERS_PORT other than 0: it is the port of every peer it finds',
    ]);
    assert.deepEqual(errorsOf(['a:1'], { LB_PEER_INTERVAL_MS: '2' }), ['LB_PEER_INTERVAL_MS "2": expected an integer 5-10000']);
  });

  it('stopped while starting, the peers leave no socket or timer behind (mocha runs without --exit)', async () => {
    const registry = testRegistry();
    const config = testConfig([1], {}, ['--peers-port', '0', '--peer', 'balancer-b:9001']);
    for (const stopAfter of ['bind', 'resolve'] as const) {
      let resolved = (): void => undefined;
      const resolving = new Promise<void>((r) => (resolved = r));
      const peers = createPeers({
        config,
        upstreams: registry,
        logger: silentLogger,
        metrics: new PromRegistry(),
        resolve: async () => {
          resolved();
          await new Promise((r) => setImmediate(r));
          return ['127.0.0.1'];
        },
      });
      const started = peers.start();
      if (stopAfter === 'resolve') await resolving;
      await peers.stop();
      await started;
      assert.equal(peers.port, undefined, stopAfter);
    }
    await registry.stop();
  });

  it('a peer port already taken fails the start, as a taken data or admin port does', async () => {
    const taken = await udpSocket();
    sockets.push(taken);
    const { x: bx } = backends();
    const config = testConfig([bx.port], {}, ['--peers-port', String(taken.address().port), '--peer', '127.0.0.1:1']);
    const lb = createBalancer(config, { logger: silentLogger });
    await assert.rejects(lb.start(), /EADDRINUSE/);
    await lb.stop();
  });
});
