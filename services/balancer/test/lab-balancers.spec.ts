import assert from 'node:assert/strict';
import { request } from 'undici';
import { RELAYED_HEADER } from '../src/peers/write-relay.js';
import type { LabStatus } from '../src/lab/runner.js';
import { BACKEND_TOKEN, TOKEN, fakeBackend } from './lab-backend.js';
import type { FakeBackend } from './lab-backend.js';
import { freeUdpPort, startBalancer, testConfig, waitFor } from './helpers.js';
import type { Running } from './helpers.js';

// Issue 25, point 4: the lab's "balancers" dimension. The same seeded traffic through one balancer,
// two with isolated counts, or two sharing them; measured from the lab's own records of each request.

const json = async (url: string, method = 'GET', body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> => {
  const res = await request(url, {
    method: method as 'GET',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
};

describe('lab: one balancer, two isolated, two sharing (issue 25)', () => {
  let origins: FakeBackend[] = [];
  let a: Running | undefined;
  let b: Running | undefined;
  let alone: Running | undefined;

  beforeEach(async () => {
    origins = await Promise.all(['a', 'b', 'c'].map((n) => fakeBackend(n, 40, true)));
    const [portA, portB] = [await freeUdpPort(), await freeUdpPort()];
    const ports = origins.map((o) => o.port);
    const common = ['--admin-token', TOKEN, '--backend-admin-token', BACKEND_TOKEN, '--lab', '--peer-timeout-ms', '150'];
    a = await startBalancer(testConfig(ports, {}, [...common, '--peers-port', String(portA), '--peer', `127.0.0.1:${portB}`]));
    b = await startBalancer(testConfig(ports, {}, [...common, '--peers-port', String(portB), '--peer', `127.0.0.1:${portA}`]));
    const [ra, rb] = [a, b];
    await waitFor(() => ra.balancer.peers.view()[0]?.dataUrl != null && rb.balancer.peers.view()[0]?.dataUrl != null, 5000, 'each to learn the other\'s ports');
  });
  afterEach(async () => {
    for (const r of [a, b, alone]) await r?.balancer.stop();
    a = b = alone = undefined;
    await Promise.all(origins.map((o) => o.close()));
  });

  const both = (): [Running, Running] => {
    assert.ok(a && b);
    return [a, b];
  };
  const lab = async (via: Running): Promise<LabStatus> => (await json(`${via.adminUrl}/api/lab`)).body as unknown as LabStatus;
  const runTo = async (via: Running, spec: Record<string, unknown>): Promise<LabStatus> => {
    const started = await json(`${via.adminUrl}/api/lab/run`, 'POST', spec);
    assert.equal(started.status, 202, JSON.stringify(started.body));
    let status = await lab(via);
    await waitFor(async () => (status = await lab(via)).state !== 'running', 20_000, 'the run to end');
    return status;
  };
  const spec = { rate: 40, durationMs: 1500, mix: [1], seed: 3 };

  it('two-sharing: every other request goes through the peer; the row says so and is measured from the responses', async () => {
    const [ra, rb] = both();
    const slow = origins[2];
    assert.ok(slow);
    const status = await runTo(ra, { ...spec, balancers: 'two-sharing', scenario: { upstream: slow.id, fault: { extraLatencyMs: 60 } } });
    assert.equal(status.state, 'done', String(status.error));
    const [row] = status.results;
    assert.ok(row);
    assert.equal(row.balancers, 'two-sharing');
    assert.equal(row.attribution, 'response');
    assert.equal(row.errors, 0);
    assert.ok(row.spread !== null && row.spread >= 1, `spread ${String(row.spread)}`);
    // Measured over both balancers' traffic: the upstreams' requests are every answered one.
    const answered = row.upstreams.reduce((sum, u) => sum + u.requests, 0);
    assert.equal(answered, row.requests - row.dropped);
    assert.deepEqual(row.upstreams.map((u) => u.id).sort(), origins.map((o) => o.id).sort());
    assert.equal(row.badUpstream, slow.id);
    assert.ok(row.badShare !== null && row.badShare < 1 / 3, `the slow one's share ${String(row.badShare)}`);
    // B routed about half of it (its own counters; the warm-up second went through both too).
    const viaB = rb.balancer.snapshot().totals.requests;
    assert.ok(viaB >= row.requests / 2 - 1, `B routed ${viaB} of ${row.requests}`);
    assert.equal(ra.balancer.peers.sharing, true);
  });

  it('two-isolated: this balancer stops sharing until the peer has dropped it, runs, and shares again afterwards', async () => {
    const [ra, rb] = both();
    const started = await json(`${ra.adminUrl}/api/lab/run`, 'POST', { ...spec, balancers: 'two-isolated' });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    // While it runs, B no longer counts A: both pick on their own counts.
    await waitFor(async () => (await lab(ra)).progress?.warmUp === false, 10_000, 'the measured pass');
    assert.equal(ra.balancer.peers.sharing, false);
    assert.notEqual(rb.balancer.snapshot().peers[0]?.state, 'live');
    let status = await lab(ra);
    await waitFor(async () => (status = await lab(ra)).state !== 'running', 20_000, 'the run to end');
    assert.equal(status.state, 'done', String(status.error));
    assert.equal(status.results[0]?.balancers, 'two-isolated');
    assert.equal(ra.balancer.peers.sharing, true, 'restored');
    await waitFor(() => rb.balancer.snapshot().peers[0]?.state === 'live', 5000, 'B to count A again');
  });

  it('cancelled during a two-isolated run, the balancer shares again', async () => {
    const [ra] = both();
    const started = await json(`${ra.adminUrl}/api/lab/run`, 'POST', { rate: 40, durationMs: 10_000, mix: [1], seed: 3, balancers: 'two-isolated' });
    assert.equal(started.status, 202);
    await waitFor(() => !ra.balancer.peers.sharing, 5000, 'sharing off for the run');
    assert.equal((await json(`${ra.adminUrl}/api/lab/cancel`, 'POST', {})).status, 200);
    await waitFor(async () => (await lab(ra)).state === 'cancelled', 10_000, 'the cancel');
    assert.equal(ra.balancer.peers.sharing, true);
  });

  it('one: everything through this balancer, measured the same way', async () => {
    const [ra, rb] = both();
    const status = await runTo(ra, { rate: 40, durationMs: 1000, mix: [1], seed: 3 });
    assert.equal(status.state, 'done', String(status.error));
    const [row] = status.results;
    assert.ok(row);
    assert.equal(row.balancers, 'one');
    assert.equal(row.attribution, 'response');
    assert.equal(rb.balancer.snapshot().totals.requests, 0, 'nothing through B');
  });

  it('refused: a two-balancer run with no live peer (409 LB_LAB_NO_PEER), or a peer on another policy (409 LB_LAB_PEER_POLICY); a bad mode is a 400', async () => {
    const [, rb] = both();
    alone = await startBalancer(testConfig(origins.map((o) => o.port), {}, ['--admin-token', TOKEN, '--backend-admin-token', BACKEND_TOKEN, '--lab']));
    const noPeer = await json(`${alone.adminUrl}/api/lab/run`, 'POST', { rate: 10, durationMs: 1000, balancers: 'two-sharing' });
    assert.equal(noPeer.status, 409);
    assert.equal(noPeer.body.error, 'LB_LAB_NO_PEER');
    assert.match(String(noPeer.body.message), /--peer/);

    const [ra] = both();
    // Marked as relayed, so that B alone changes (a client's write would reach A too: write-relay.ts),
    // as when B's policy was set before A joined or the relay to A failed.
    assert.equal((await json(`${rb.adminUrl}/api/policy`, 'PUT', { policy: 'round-robin' }, { [RELAYED_HEADER]: 'test' })).status, 200);
    const otherPolicy = await json(`${ra.adminUrl}/api/lab/run`, 'POST', { rate: 10, durationMs: 1000, balancers: 'two-sharing' });
    assert.equal(otherPolicy.status, 409);
    assert.equal(otherPolicy.body.error, 'LB_LAB_PEER_POLICY');
    assert.match(String(otherPolicy.body.message), /round-robin/);
    const compare = await json(`${ra.adminUrl}/api/lab/compare`, 'POST', { rate: 10, durationMs: 1000, balancers: 'two-isolated', policies: ['round-robin', 'p2c'] });
    assert.equal(compare.body.error, 'LB_LAB_PEER_POLICY', 'a comparison switches only this balancer\'s policy');

    const bad = await json(`${ra.adminUrl}/api/lab/run`, 'POST', { rate: 10, durationMs: 1000, balancers: 'three' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'LB_BAD_REQUEST');
    assert.equal((await lab(ra)).state, 'idle', 'nothing ran');
  });
});
