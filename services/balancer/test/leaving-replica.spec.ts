/**
 * Issue 22: no request is lost when a backend replica leaves. A leaving replica fails /healthz
 * while it keeps serving (the backend's BACKEND_SHUTDOWN_DELAY_MS), then stops accepting and
 * finishes what it has. The balancer takes it out of rotation for new requests; the requests in
 * flight on it end there, answered in full. Only an upstream that stops answering altogether has
 * its requests moved elsewhere (faults.spec.ts, "hung upstreams cost nothing").
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { startBalancer, startOrigin, stopAfterEach, testConfig, waitFor } from './helpers.js';
import type { Origin, Running } from './helpers.js';

/** The "image": large enough to take several writes, checked byte for byte by its digest. */
const IMAGE = randomBytes(256 * 1024);
const IMAGE_SHA256 = createHash('sha256').update(IMAGE).digest('hex');

/** Probes every 50 ms (and 50 ms after a failed one), fall 2: a leaving replica is down within about 150 ms. */
const FAST_PROBES = ['--health-interval-ms', '50', '--health-down-interval-ms', '50'];

/**
 * A backend replica whose image requests are slow: each is held until the test opens the gate (a
 * response as long as the test needs, without a timer). /healthz answers at once: 503 while it
 * drains, as services/backend does after SIGTERM.
 */
interface Replica {
  readonly origin: Origin;
  /** The X-Request-Id of every image request that reached it, in arrival order. */
  readonly seen: string[];
  /** Image requests whose connection closed before their answer was written. */
  readonly aborted: string[];
  draining: boolean;
}

describe('a replica that leaves (issue 22): its in-flight requests finish there', function () {
  this.timeout(20_000);
  let lb: Running | undefined;
  let replicas: Replica[] = [];
  let open: () => void = () => undefined;
  stopAfterEach(() => ({ lb, origins: replicas.map((r) => r.origin) }));
  afterEach(() => {
    open();
  });

  const startReplicas = async (count: number): Promise<void> => {
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    replicas = await Promise.all(
      Array.from({ length: count }, async () => {
        const replica: Replica = { origin: undefined as unknown as Origin, seen: [], aborted: [], draining: false };
        const origin = await startOrigin((req, res) => {
          if (req.url === '/healthz') {
            res.writeHead(replica.draining ? 503 : 200, { 'content-length': 0 }).end();
            return;
          }
          const id = String(req.headers['x-request-id']);
          replica.seen.push(id);
          res.once('close', () => {
            if (!res.writableFinished) replica.aborted.push(id);
          });
          void gate.then(() => {
            if (!res.destroyed) res.writeHead(200, { 'content-type': 'image/png', 'content-length': IMAGE.length }).end(IMAGE);
          });
        });
        return Object.assign(replica, { origin });
      }),
    );
  };

  const stateOf = (r: Replica): string | undefined => lb?.balancer.registry.get(r.origin.id)?.state;
  const seenAnywhere = (id: string): boolean => replicas.some((r) => r.seen.includes(id));

  /** One GET of the image: its status and whether the body arrived whole. */
  const fetchImage = async (agent: Agent, id: string): Promise<{ id: string; status: number; whole: boolean; text: string }> => {
    const res = await request(`${lb?.url ?? ''}/images/1`, { dispatcher: agent, headers: { 'x-request-id': id } });
    const body = Buffer.from(await res.body.arrayBuffer());
    const whole = createHash('sha256').update(body).digest('hex') === IMAGE_SHA256;
    return { id, status: res.statusCode, whole, text: whole ? '' : body.toString('utf8', 0, 200) };
  };

  /** Every request 200 with the whole image, and every request reached exactly one replica, once, and was not cut there. */
  const assertNoneLost = (replies: readonly { id: string; status: number; whole: boolean; text: string }[]): void => {
    const lost = replies.filter((r) => r.status !== 200 || !r.whole);
    assert.deepEqual(lost, [], `${lost.length} of ${replies.length} requests lost`);
    const arrivals = new Map<string, number>();
    for (const r of replicas) for (const id of r.seen) arrivals.set(id, (arrivals.get(id) ?? 0) + 1);
    const resent = [...arrivals].filter(([, n]) => n > 1);
    assert.deepEqual(resent, [], 'requests sent to more than one replica (moved off a replica that was still serving them)');
    assert.deepEqual(replicas.map((r) => r.aborted), replicas.map(() => []), 'requests cut on the replica that was serving them');
  };

  it('four of six replicas fail /healthz one after another while serving: all in-flight requests end 200 on their replica; new ones go to the others', async () => {
    await startReplicas(6);
    lb = await startBalancer(testConfig(replicas.map((r) => r.origin.port), {}, FAST_PROBES));
    const agent = new Agent({ connections: 64 });
    try {
      const inFlight = Array.from({ length: 30 }, (_, i) => fetchImage(agent, `before-${i}`));
      await waitFor(() => replicas.reduce((n, r) => n + r.seen.length, 0) >= 30, 5000, 'all 30 requests to reach a replica');
      const leaving = replicas.slice(0, 4);
      for (const r of leaving) assert.ok(r.seen.length > 0, 'every leaving replica has requests in flight');
      // One after another, as `docker compose up --scale backend=2` stops them; each is seen down
      // before the next leaves, so a request moved off one could land on the next.
      for (const r of leaving) {
        r.draining = true;
        await waitFor(() => stateOf(r) === 'down', 5000, `${r.origin.id} down after failing /healthz`);
      }
      const after = Array.from({ length: 6 }, (_, i) => fetchImage(agent, `after-${i}`));
      await waitFor(() => Array.from({ length: 6 }, (_, i) => `after-${i}`).every(seenAnywhere), 5000, 'the new requests to reach a replica');
      for (const r of leaving) assert.ok(!r.seen.some((id) => id.startsWith('after-')), `a new request went to ${r.origin.id}, which fails /healthz`);
      open();
      assertNoneLost(await Promise.all([...inFlight, ...after]));
    } finally {
      await agent.close();
    }
  });

  it('a replica that stops accepting connections (refused probes) still finishes what it has', async () => {
    await startReplicas(3);
    lb = await startBalancer(testConfig(replicas.map((r) => r.origin.port), {}, FAST_PROBES));
    const agent = new Agent({ connections: 64 });
    try {
      const inFlight = Array.from({ length: 9 }, (_, i) => fetchImage(agent, `before-${i}`));
      await waitFor(() => replicas.reduce((n, r) => n + r.seen.length, 0) >= 9, 5000, 'all 9 requests to reach a replica');
      const [leaving] = replicas;
      assert.ok(leaving !== undefined && leaving.seen.length > 0);
      // What the backend does once its shutdown delay is over: close the listener (probes are
      // refused from now on) and finish the requests it has.
      leaving.origin.server.close();
      await waitFor(() => stateOf(leaving) === 'down', 5000, `${leaving.origin.id} down after refused probes`);
      open();
      assertNoneLost(await Promise.all(inFlight));
    } finally {
      await agent.close();
    }
  });
});
