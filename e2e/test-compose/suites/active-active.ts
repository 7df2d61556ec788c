import assert from 'node:assert/strict';
import { parseDecision, type Snapshot } from '../../lib/balancer-api.js';
import type { ClusterHarness } from '../../lib/cluster-harness.js';
import type { HttpResult } from '../../lib/http.js';
import { waitFor } from '../../lib/wait.js';
import { ADMIN_PORT, type BalancerReplica } from '../lib/balancers.js';
import { BALANCER_REPLICAS, BALANCER_SERVICE, type Cluster } from '../lib/cluster.js';

/** Requests in flight across the balancers, as one balancer sees them (its own plus its live peers' reports). */
const clusterInFlight = (s: Snapshot): number => s.upstreams.reduce((n, u) => n + u.inFlightCluster, 0);
/** Requests in flight that this balancer routed itself. */
const ownInFlight = (s: Snapshot): number => s.upstreams.reduce((n, u) => n + u.inFlight, 0);

/** The balancer's peer-report timeout (--peer-timeout-ms, default 250): a live peer's report is younger. */
const PEER_TIMEOUT_MS = 250;

/** `name value` of one unlabelled sample in Prometheus text, or undefined. */
const sample = (text: string, name: string): number | undefined => {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
};

/** Each replica's live peers are exactly the other replicas (at their peer port), with fresh reports. */
async function peersOfEach(c: Cluster, replicas: readonly BalancerReplica[]): Promise<Snapshot[] | undefined> {
  const views = await Promise.all(replicas.map((r) => c.balancerReplicas.client(r.admin).json<Snapshot>('/api/upstreams', 5_000)));
  const ok = views.every((view, i) => {
    const others = replicas.filter((_, j) => j !== i).map((r) => `${r.container.ip ?? '?'}:${ADMIN_PORT}`).sort();
    const live = view.peers.filter((p) => p.state === 'live');
    return live.map((p) => p.address).sort().join() === others.join() && live.every((p) => p.ageMs !== null && p.ageMs <= PEER_TIMEOUT_MS);
  });
  return ok ? views : undefined;
}

/** Every replica sees `replicas - 1` live peers with reports younger than the peer timeout. */
const allLive = (views: readonly Snapshot[], replicas: number): boolean =>
  views.length === replicas &&
  views.every((v) => {
    const live = v.peers.filter((p) => p.state === 'live');
    return live.length === replicas - 1 && live.every((p) => p.ageMs !== null && p.ageMs <= PEER_TIMEOUT_MS);
  });

/**
 * Every balancer replica is active (nginx spreads requests over all of them) and each picks on the
 * in-flight counts of all of them (issue 25): they report their own counts to each other over UDP
 * (the service's DNS name), and each one's /api/upstreams lists the others. Needs only the
 * harness: Compose and Swarm alike.
 */
export function activeActiveSuite(cluster: () => ClusterHarness, replicas: number): void {
  describe(`active-active balancers (${replicas} replicas sharing in-flight counts)`, () => {
    it('each replica lists the others as live peers, with reports younger than the peer timeout', async () => {
      const c = cluster();
      await waitFor(async () => (allLive(await c.balancerSnapshots(), replicas) ? true : undefined), {
        what: `${replicas} replicas, each seeing the others live`,
        timeoutMs: 10_000,
        intervalMs: 200,
      });
    });

    it('nginx spreads requests over every balancer replica: each routes a share', async () => {
      const c = cluster();
      await c.waitForBackends(4);
      const idle = async (): Promise<Snapshot[] | undefined> => {
        const views = await c.balancerSnapshots();
        return views.every((s) => s.totals.inFlight === 0) ? views : undefined;
      };
      const before = await waitFor(idle, { what: 'idle balancers', timeoutMs: 30_000 });
      const sent = 40;
      for (let i = 0; i < sent; i++) {
        const res = await c.web.get(`/images/1?share=${i}`);
        assert.equal(res.status, 200);
      }
      // A balancer counts a request once the backend's answer has fully arrived: poll until all are counted.
      const after = await waitFor(
        async () => {
          const views = await idle();
          const routed = views?.reduce((n, s, i) => n + s.totals.requests - (before[i]?.totals.requests ?? 0), 0);
          return routed === sent ? views : undefined;
        },
        { what: `the balancers to count the ${sent} requests`, timeoutMs: 10_000 },
      );
      const shares = after.map((s, i) => s.totals.requests - (before[i]?.totals.requests ?? 0));
      console.log(`      [active-active] ${sent} requests through nginx, routed per balancer: ${shares.join(', ')}`);
      assert.equal(shares.length, replicas);
      for (const share of shares) assert.ok(share >= sent / replicas / 2, `every balancer routes a share: ${shares.join(', ')}`);
    });
  });
}

/**
 * The shared counts at work on the Compose cluster, with each balancer replica reached at its own
 * container address: one replica's requests steer the other's picks, /metrics shows the peers, and
 * `--scale balancer=3` adds an active peer.
 */
export function sharedCountsSuite(cluster: () => Cluster): void {
  describe(`shared in-flight counts (${BALANCER_REPLICAS} replicas of \`${BALANCER_SERVICE}\`, each reached directly)`, () => {
    it('each replica\'s live peers are the other replicas\' addresses; lb_peers_live says so too', async () => {
      const c = cluster();
      const replicas = await c.balancerReplicas.replicas();
      assert.equal(replicas.length, BALANCER_REPLICAS);
      await waitFor(() => peersOfEach(c, replicas), { what: 'every replica to see the others live', timeoutMs: 10_000, intervalMs: 100 });
      for (const r of replicas) {
        const metrics = (await c.balancerReplicas.client(r.admin).get('/metrics')).body.toString('utf8');
        assert.equal(sample(metrics, 'lb_peers_live'), BALANCER_REPLICAS - 1, `${r.container.hostname}: lb_peers_live`);
      }
    });

    it('the issue\'s done-when on the cluster: while three slow requests are in flight through replica A, four requests in a row through replica B all go to the fourth backend', async () => {
      const c = cluster();
      await c.waitForBackends(4);
      const [a, b] = await c.balancerReplicas.replicas();
      assert.ok(a && b, 'two balancer replicas');
      await waitFor(async () => ((await c.balancerSnapshots()).every((s) => clusterInFlight(s) === 0) ? true : undefined), { what: 'idle balancers', timeoutMs: 30_000 });
      const viaA = c.balancerReplicas.client(a.data);
      const viaB = c.balancerReplicas.client(b.data);
      const viewOfB = c.balancerReplicas.client(b.admin);
      // /images/4 takes 3 s here: A picks for all three itself, on its own exact counts, so they land
      // on three different backends.
      const slow = [0, 1, 2].map((i) => viaA.get(`/images/4?held-by-a=${i}`, 30_000));
      let settled: PromiseSettledResult<HttpResult>[];
      try {
        // B routed none of them: its own count is 0 and its cluster count A's report.
        const seen = await waitFor(
          async () => {
            const s = await viewOfB.json<Snapshot>('/api/upstreams', 5_000);
            return clusterInFlight(s) === 3 && ownInFlight(s) === 0 ? s : undefined;
          },
          { what: 'replica B to count A\'s three requests', timeoutMs: 2_000, intervalMs: 20 },
        );
        const busy = seen.upstreams.filter((u) => u.inFlightCluster > 0);
        assert.equal(busy.length, 3, `one request on each of three backends, in B's view: ${JSON.stringify(seen.upstreams)}`);
        const idle = seen.upstreams.filter((u) => u.available && u.inFlightCluster === 0).map((u) => u.id);
        assert.equal(idle.length, 1);
        const metrics = (await viewOfB.get('/metrics')).body.toString('utf8');
        const clusterSamples = [...metrics.matchAll(/^lb_upstream_in_flight_cluster\{[^}]*\} (\S+)$/gm)].map((m) => Number(m[1]));
        assert.equal(clusterSamples.reduce((n, v) => n + v, 0), 3, 'lb_upstream_in_flight_cluster on B adds up to A\'s three');

        const chosen: string[] = [];
        for (let i = 0; i < 4; i++) {
          const res = await viaB.get(`/images/1?via-b=${i}`);
          assert.equal(res.status, 200);
          const header = res.headers['x-lb-decision'] ?? '';
          const d = parseDecision(header);
          // Precondition: A's requests were still in flight (else the test proves nothing).
          assert.equal(d.candidates.filter((x) => x.inFlight > 0).length, 3, `A's requests still counted by B: ${header}`);
          assert.equal(d.reason, 'least-loaded', header);
          chosen.push(res.headers['x-upstream'] ?? '');
        }
        // With isolated counts B would see four idle backends and spread the four over them.
        assert.deepEqual(chosen, [idle[0], idle[0], idle[0], idle[0]], 'every request through B went to the backend A left idle');
      } finally {
        settled = await Promise.allSettled(slow);
      }
      const heldOn = settled.map((r) => (r.status === 'fulfilled' ? r.value.headers['x-upstream'] : String(r.reason)));
      assert.equal(new Set(heldOn).size, 3, `A's requests on three distinct backends: ${JSON.stringify(heldOn)}`);
    });

    it('an admin write made on one replica holds on every replica (relayed to its live peers)', async () => {
      const c = cluster();
      const replicas = await c.balancerReplicas.replicas();
      await waitFor(() => peersOfEach(c, replicas), { what: 'every replica to see the others live', timeoutMs: 10_000, intervalMs: 100 });
      const policyOfEach = async (): Promise<string[]> =>
        Promise.all(replicas.map(async (r) => (await c.balancerReplicas.client(r.admin).json<{ policy: string }>('/api/policy', 5_000)).policy));
      const [backend] = (await c.balancerSnapshots())[0]?.upstreams ?? [];
      assert.ok(backend, 'a backend to drain');
      const drainPath = (action: string): string => `/api/upstreams/${encodeURIComponent(backend.id)}/${action}`;
      try {
        // c.admin writes to the first replica only; the relay does the rest.
        const set = await c.admin('PUT', '/api/policy', { policy: 'p2c' });
        assert.equal(set.status, 200, JSON.stringify(set.body));
        const outcomes = (set.body as { peers?: { status: number }[] }).peers ?? [];
        assert.equal(outcomes.length, BALANCER_REPLICAS - 1, JSON.stringify(set.body));
        assert.ok(outcomes.every((o) => o.status === 200), JSON.stringify(set.body));
        assert.deepEqual(await policyOfEach(), replicas.map(() => 'p2c'));
        const drained = await c.admin('POST', drainPath('drain'), { timeoutMs: 60_000 });
        assert.equal(drained.status, 200, JSON.stringify(drained.body));
        const states = (await c.balancerSnapshots()).map((s) => s.upstreams.find((u) => u.id === backend.id)?.state);
        assert.deepEqual(states, replicas.map(() => 'draining'));
      } finally {
        await c.admin('POST', drainPath('undrain'), {});
        await c.admin('PUT', '/api/policy', { policy: 'least-connections' });
      }
      assert.deepEqual(await policyOfEach(), replicas.map(() => 'least-connections'));
      await c.waitForBackends(4);
    });

    it('--scale balancer=3: a third replica joins the peers and takes requests from nginx; back to 2', async function () {
      this.timeout(240_000);
      const c = cluster();
      await c.waitForBackends(4);
      const scaleTo = (n: number) => c.compose.compose(['up', '-d', '--no-deps', '--no-recreate', '--scale', `${BALANCER_SERVICE}=${n}`, BALANCER_SERVICE], 300_000);
      try {
        await scaleTo(3);
        const three = await waitFor(
          async () => {
            const replicas = await c.balancerReplicas.replicas();
            return replicas.length === 3 && (await peersOfEach(c, replicas)) ? replicas : undefined;
          },
          { what: 'three replicas, each seeing the other two live', timeoutMs: 60_000, intervalMs: 500 },
        );
        const newcomer = three[2];
        assert.ok(newcomer);
        const view = c.balancerReplicas.client(newcomer.admin);
        const routedBy = async (): Promise<number> => (await view.json<Snapshot>('/api/upstreams', 5_000)).totals.requests;
        const before = await routedBy();
        // nginx re-resolves `balancer` every second: within a few the new address gets requests.
        let sent = 0;
        const failed: number[] = [];
        await waitFor(
          async () => {
            for (let i = 0; i < 6; i++, sent++) {
              const { status } = await c.web.get(`/images/1?third=${sent}`);
              if (status !== 200) failed.push(status);
            }
            return (await routedBy()) > before ? true : undefined;
          },
          { what: 'nginx to send requests to the third replica', timeoutMs: 30_000, intervalMs: 100 },
        );
        console.log(`      [active-active] the third replica routed requests after ${sent} were sent through nginx`);
        assert.deepEqual(failed, [], 'no request failed while the third replica joined');
      } finally {
        await scaleTo(BALANCER_REPLICAS);
      }
      const replicas = await c.balancerReplicas.replicas();
      assert.equal(replicas.length, BALANCER_REPLICAS);
      await waitFor(() => peersOfEach(c, replicas), { what: 'the remaining replicas to see only each other live', timeoutMs: 10_000, intervalMs: 100 });
      await c.waitForBackends(4);
    });
  });
}
