import assert from 'node:assert/strict';
import { request } from 'undici';
import { RELAYED_HEADER } from '../src/peers/write-relay.js';
import { freeUdpPort, namedHandler, startBalancer, startOrigin, testConfig, waitFor } from './helpers.js';
import type { Origin, Running } from './helpers.js';

// Active-active balancers behind one nginx: an admin client reaches one of them. A write it makes
// (drain, weight, policy...) must hold on every balancer, or the others keep routing to a drained
// upstream or by another policy.

const TOKEN = 'relay-test-token';

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

async function write(via: Running, method: 'PUT' | 'POST', path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(`${via.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

describe('admin writes relayed to the live peers (active-active)', () => {
  let x: Origin | undefined;
  let y: Origin | undefined;
  let balancers: Running[] = [];

  beforeEach(async () => {
    x = await startOrigin(namedHandler('X'));
    y = await startOrigin(namedHandler('Y'));
  });
  afterEach(async () => {
    await Promise.all(balancers.map((b) => b.balancer.stop()));
    balancers = [];
    await Promise.all([x?.close(), y?.close()]);
  });

  /** Two balancers over X and Y, each the other's --peer, both live with their admin URL known. */
  async function pair(tokens: readonly [string, string] = [TOKEN, TOKEN]): Promise<[Running, Running]> {
    assert.ok(x && y);
    const [portA, portB] = [await freeUdpPort(), await freeUdpPort()];
    const start = async (own: number, other: number, token: string): Promise<Running> => {
      assert.ok(x && y);
      const running = await startBalancer(testConfig([x.port, y.port], { adminToken: token }, ['--peers-port', String(own), '--peer', `127.0.0.1:${other}`]));
      balancers.push(running);
      return running;
    };
    const a = await start(portA, portB, tokens[0]);
    const b = await start(portB, portA, tokens[1]);
    for (const [self, other] of [[a, b], [b, a]] as const) {
      await waitFor(() => self.balancer.peers.view()[0]?.adminUrl === other.adminUrl && self.balancer.peers.view()[0]?.state === 'live', 5000, 'the peer live with its admin URL');
    }
    return [a, b];
  }

  const stateOf = (r: Running, id: string): string | undefined => r.balancer.snapshot().upstreams.find((u) => u.id === id)?.state;
  const peerAddress = (r: Running): string => `127.0.0.1:${String(r.balancer.peers.port)}`;

  it('a policy set on one balancer is set on its peer, and the answer says so', async () => {
    const [a, b] = await pair();
    const answer = await write(a, 'PUT', '/api/policy', { policy: 'p2c' });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body.peers, [{ peer: peerAddress(b), status: 200 }]);
    assert.equal(a.balancer.policy.current, 'p2c');
    assert.equal(b.balancer.policy.current, 'p2c');
  });

  it('drain, weight, max in-flight and undrain of an upstream (id percent-encoded) hold on both', async () => {
    const [a, b] = await pair();
    assert.ok(x);
    const id = x.id;
    const path = `/api/upstreams/${encodeURIComponent(id)}`;
    assert.equal((await write(b, 'POST', `${path}/drain`, { timeoutMs: 60_000 })).status, 200);
    assert.equal(stateOf(a, id), 'draining');
    assert.equal(stateOf(b, id), 'draining');
    // Every request now goes to Y, through either balancer.
    for (const via of [a, b]) {
      for (let i = 0; i < 3; i++) assert.equal(await (await request(`${via.url}/`)).body.text(), 'Y');
    }
    assert.equal((await write(a, 'PUT', `${path}/weight`, { weight: 7 })).status, 200);
    assert.equal((await write(a, 'PUT', `${path}/max-in-flight`, { maxInFlight: 3 })).status, 200);
    for (const r of [a, b]) {
      const view = r.balancer.snapshot().upstreams.find((u) => u.id === id);
      assert.ok(view);
      assert.equal(view.weight, 7);
      assert.equal(view.maxInFlight, 3);
    }
    assert.equal((await write(a, 'POST', `${path}/undrain`, {})).status, 200);
    assert.equal(stateOf(a, id), 'up');
    assert.equal(stateOf(b, id), 'up');
  });

  it('a peer that refuses the write: 502 LB_PEER_WRITE_FAILED naming it and why; applied here, not there', async () => {
    const [a, b] = await pair([TOKEN, 'another-token']);
    const answer = await write(a, 'PUT', '/api/policy', { policy: 'round-robin' });
    assert.equal(answer.status, 502);
    assert.equal(answer.body.error, 'LB_PEER_WRITE_FAILED');
    assert.match(String(answer.body.message), new RegExp(`applied on this balancer and on 0 of 1 live peers; not on ${peerAddress(b).replace(/\./g, '\\.')} \\(LB_UNAUTHORIZED`));
    assert.equal((answer.body.applied as { policy: string }).policy, 'round-robin');
    assert.deepEqual((answer.body.peers as { peer: string; status: number; reason: string }[]).map((p) => [p.peer, p.status, p.reason]), [[peerAddress(b), 401, 'LB_UNAUTHORIZED']]);
    assert.equal(a.balancer.policy.current, 'round-robin');
    assert.equal(b.balancer.policy.current, 'least-connections');
  });

  it('a write a peer relayed is applied and not relayed again (each write crosses each peer once)', async () => {
    const [a, b] = await pair();
    const answer = await write(a, 'PUT', '/api/policy', { policy: 'random' }, { [RELAYED_HEADER]: b.balancer.peers.instanceId });
    assert.equal(answer.status, 200);
    assert.equal(answer.body.relayedBy, b.balancer.peers.instanceId);
    assert.equal(answer.body.peers, undefined);
    assert.equal(a.balancer.policy.current, 'random');
    assert.equal(b.balancer.policy.current, 'least-connections', 'not sent back to B');
  });

  it('a refused write (bad body) is relayed nowhere', async () => {
    const [a, b] = await pair();
    const answer = await write(a, 'PUT', '/api/policy', { policy: 'fastest' });
    assert.equal(answer.status, 400);
    assert.equal(b.balancer.policy.current, 'least-connections');
    assert.equal(a.balancer.policy.current, 'least-connections');
  });
});
