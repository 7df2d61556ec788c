import assert from 'node:assert/strict';
import type { BackendDelayEnv } from '../../lib/suite-delays.js';
import { taggedLog } from '../../lib/tagged-log.js';
import { upstreamIdOf } from '../../lib/upstream-id.js';
import { fatalError, waitFor } from '../../lib/wait.js';
import type { BalancerReplica } from '../lib/balancers.js';
import type { Cluster } from '../lib/cluster.js';

const log = taggedLog('balancers');

/** The seed's image delays (1, 3, 5 and 10 s): the backend's defaults at scale 1. */
const SEED_DELAYS: BackendDelayEnv = { BACKEND_DELAY_SCALE: '1', BACKEND_DELAYS_MS: '' };
const MODES = ['one', 'two-isolated', 'two-sharing'] as const;
type Mode = (typeof MODES)[number];

/**
 * The traffic, as in `make lab-peers` (bench/lab-peers.mjs, bench/PEERS.md): 1 request a second
 * over /images/1..4 in equal parts, one backend 5 s slower, so that each backend holds a request or
 * two (low concurrency, where counts matter), for 120 s per mode; the same seed for the three.
 */
const RATE = 1;
const DURATION_MS = 120_000;
const SLOW_MS = 5000;
const SEED = 1;

/**
 * How much worse than isolated sharing may look on one round and still pass. Measured locally with
 * these settings (bench/PEERS.md, 8 rounds at 1 req/s): sharing's spread minus isolated's on the
 * same seed was −0.17 on average with a standard deviation of 0.10 (never above −0.06), and the
 * slow shares differed by +0.5 ± 1.5 points (at most +2.7; no mode measurably apart). The margins
 * are two and a half of those deviations above "equal" (0.25 and 4 points): "sharing not worse than
 * isolated beyond one run's noise". A cluster that shares as measured passes with a wide berth; one where sharing makes
 * the balance clearly worse fails. Sharing that silently does nothing would measure like isolated
 * and pass here: the done-when test on the cluster (active-active.ts) catches that. One round cannot
 * show that sharing is better, nor the goal itself (within 10 % of one balancer, isolated measurably
 * worse): `make lab-peers` judges that over several rounds.
 */
const SPREAD_NOISE = 0.25;
const SHARE_NOISE = 0.04;

interface Row {
  readonly balancers: Mode;
  readonly attribution: string;
  readonly requests: number;
  readonly errors: number;
  readonly dropped: number;
  readonly p99Ms: number;
  readonly spread: number | null;
  readonly badShare: number | null;
}

interface LabStatus {
  readonly state: 'idle' | 'running' | 'done' | 'failed' | 'cancelled';
  readonly results: readonly Row[];
  readonly error: string | null;
}

interface PeerView {
  readonly address: string;
  readonly state: string;
  readonly dataUrl: string | null;
}

/**
 * Issue 25, point 4, on the Compose cluster: the lab of one balancer replica runs the same seeded
 * traffic through itself alone, through itself and the other replica with isolated counts, and
 * with shared counts (its requests to the other replica go to that replica's own data port on the
 * project's network), at the seed's 1-10 s images with one slow backend.
 */
export function balancerModesSuite(cluster: () => Cluster): void {
  describe('one balancer, two isolated, two sharing counts: the lab on the cluster (issue 25)', () => {
    it(`same traffic (${RATE} req/s, seed's 1-10 s images, one backend +${SLOW_MS} ms, ${DURATION_MS / 1000} s per mode): 0 errors; sharing not worse than isolated`, async function () {
      // Three runs of 120 s, each with a probe, a warm-up and up to 15 s of tail, and the backends recreated twice.
      this.timeout(20 * 60_000);
      const c = cluster();
      await c.recreateBackends(4, SEED_DELAYS);
      try {
        const backends = (await c.waitForBackends(4)).map(upstreamIdOf).sort();
        const slow = backends[0];
        assert.ok(slow);
        await c.setPolicy('least-connections');
        const [lab, peer] = await c.balancerReplicas.replicas();
        assert.ok(lab && peer, 'two balancer replicas');
        await waitFor(async () => ((await peersOf(c, lab)).some((p) => p.state === 'live' && p.dataUrl === peer.data) ? true : undefined), {
          what: `${lab.container.hostname} to hear ${peer.container.hostname} and learn its data port`,
          timeoutMs: 10_000,
          intervalMs: 200,
        });

        const rows = new Map<Mode, Row>();
        for (const mode of MODES) {
          const spec = { rate: RATE, durationMs: DURATION_MS, mix: [1, 1, 1, 1], seed: SEED, balancers: mode, scenario: { upstream: slow, fault: { extraLatencyMs: SLOW_MS } } };
          // The answer waits for the lab's probe of every image (the 10 s one included).
          const started = await c.balancerReplicas.request(lab.admin, 'POST', '/api/lab/run', spec, 60_000);
          assert.equal(started.status, 202, `${mode}: ${JSON.stringify(started.body)}`);
          const done = await waitFor(
            async () => {
              const s = (await c.balancerReplicas.request(lab.admin, 'GET', '/api/lab')).body as LabStatus;
              if (s.state === 'failed' || s.state === 'cancelled') throw fatalError(`${mode} run ${s.state}: ${s.error ?? ''}`);
              return s.state === 'done' ? s : undefined;
            },
            { what: `the ${mode} run`, timeoutMs: DURATION_MS + 120_000, intervalMs: 2_000 },
          );
          const [row] = done.results;
          assert.ok(row, `${mode}: a result`);
          assert.equal(row.balancers, mode);
          assert.equal(row.attribution, 'response', `${mode}: measured from the responses (X-Backend-Id)`);
          rows.set(mode, row);
          log(`${mode}: slow share ${pct(row.badShare)}, spread ${String(row.spread)}, p99 ${Math.round(row.p99Ms)} ms, errors ${row.errors}, dropped ${row.dropped}, requests ${row.requests}`);
        }

        log(`| balancers | slow share | spread (max÷mean in-flight) | p99 ms | errors | requests |`);
        log(`|---|---:|---:|---:|---:|---:|`);
        for (const [mode, r] of rows) log(`| ${mode} | ${pct(r.badShare)} | ${r.spread?.toFixed(2) ?? '–'} | ${Math.round(r.p99Ms)} | ${r.errors + r.dropped} | ${r.requests} |`);

        for (const [mode, r] of rows) {
          assert.equal(r.errors, 0, `${mode}: errors`);
          assert.equal(r.dropped, 0, `${mode}: dropped`);
        }
        const isolated = rows.get('two-isolated');
        const sharing = rows.get('two-sharing');
        assert.ok(isolated?.spread != null && sharing?.spread != null && isolated.badShare !== null && sharing.badShare !== null);
        assert.ok(sharing.spread <= isolated.spread + SPREAD_NOISE, `sharing's spread ${sharing.spread} vs isolated ${isolated.spread} (+${SPREAD_NOISE} noise)`);
        assert.ok(sharing.badShare <= isolated.badShare + SHARE_NOISE, `sharing's slow share ${pct(sharing.badShare)} vs isolated ${pct(isolated.badShare)} (+${pct(SHARE_NOISE)} noise)`);
        // The lab restored sharing after the isolated run: the pair counts each other again.
        await waitFor(async () => ((await peersOf(c, peer)).some((p) => p.state === 'live') ? true : undefined), {
          what: `${peer.container.hostname} to count ${lab.container.hostname} again`,
          timeoutMs: 10_000,
          intervalMs: 200,
        });
      } finally {
        await c.recreateBackends(4);
      }
    });
  });
}

const pct = (x: number | null): string => (x === null ? '–' : `${(x * 100).toFixed(1)} %`);

async function peersOf(c: Cluster, replica: BalancerReplica): Promise<readonly PeerView[]> {
  const view = (await c.balancerReplicas.request(replica.admin, 'GET', '/api/peers')).body as { peers?: PeerView[] };
  return view.peers ?? [];
}
