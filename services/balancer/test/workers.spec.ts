import assert from 'node:assert/strict';
import { get, request as httpRequest } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino } from 'pino';
import { cgroupCpuLimit, cpusAvailable, parseCfsQuota, parseCpuMax, planWorkers, supportsReusePort } from '../src/cluster/workers.js';
import { parseMetrics, startBalancer, startOrigin, testConfig, waitFor } from './helpers.js';
import type { Origin } from './helpers.js';
import { listeningPorts, runBalancer } from './process.js';
import type { Child } from './process.js';

interface Reply {
  readonly status: number;
  readonly body: string;
}

/** One GET on a connection of its own (agent: false), so the kernel spreads them over the threads. */
function fetchOnNewConnection(url: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
      });
    }).on('error', reject);
  });
}

function post(url: string, token: string, body: unknown, method = 'POST'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** An origin that answers `/` at once with its name and holds `/hold` until release(). */
async function holdingOrigin(name: string): Promise<Origin & { held: () => number; release: () => void }> {
  const waiting: ServerResponse[] = [];
  const origin = await startOrigin((req: IncomingMessage, res: ServerResponse) => {
    const reply = (): void => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(name);
    };
    if (req.url === '/hold') waiting.push(res);
    else reply();
  });
  return {
    ...origin,
    held: () => waiting.filter((r) => !r.writableEnded).length,
    release: () => {
      for (const res of waiting.splice(0)) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(name);
      }
    },
  };
}

describe('--workers: where the data path runs', () => {
  it('needs reusePort: Node >= 22.12 or >= 23.1', () => {
    assert.equal(supportsReusePort('20.20.2'), false);
    assert.equal(supportsReusePort('22.11.0'), false);
    assert.equal(supportsReusePort('22.12.0'), true);
    assert.equal(supportsReusePort('23.0.0'), false);
    assert.equal(supportsReusePort('23.1.0'), true);
    assert.equal(supportsReusePort('24.0.0'), true);
  });

  it('auto is one thread per CPU but one (at least one); 1 stays on the main thread; older Node falls back to 1 and says why', () => {
    assert.deepEqual(planWorkers(0, '22.23.3', 4), { count: 3 });
    assert.deepEqual(planWorkers(0, '22.23.3', 2), { count: 1 }, 'a 2-CPU machine runs one data-path thread (bench/RESULTS.md)');
    assert.deepEqual(planWorkers(3, '22.23.3', 4), { count: 3 });
    assert.deepEqual(planWorkers(4, '22.23.3', 4), { count: 4 }, 'an explicit count is taken as it is');
    assert.deepEqual(planWorkers(0, '22.23.3', 1), { count: 1 });
    assert.deepEqual(planWorkers(1, '20.20.2', 8), { count: 1 });
    const fallback = planWorkers(0, '20.20.2', 3);
    assert.equal(fallback.count, 1);
    assert.match(fallback.note ?? '', /--workers auto \(2\) needs Node >= 22\.12 for reusePort; Node 20\.20\.2 runs the data path on 1 thread/);
  });

  it('reads a container\'s CPU limit from cgroup v2 cpu.max or v1 cfs quota; none means no limit', () => {
    assert.equal(parseCpuMax('max 100000\n'), undefined);
    assert.equal(parseCpuMax('150000 100000\n'), 1.5);
    assert.equal(parseCfsQuota('-1\n', '100000\n'), undefined);
    assert.equal(parseCfsQuota('50000\n', '100000\n'), 0.5);
    const files = (entries: Record<string, string>) => (path: string): string | undefined => entries[path];
    // cgroup v2, the process's own cgroup (a systemd service, a pod without cgroupns)
    assert.equal(cgroupCpuLimit(files({ '/proc/self/cgroup': '0::/kubepods/pod1/c1\n', '/sys/fs/cgroup/kubepods/pod1/c1/cpu.max': '200000 100000' })), 2);
    // cgroup v2 inside a container: its own cgroup is the mount root
    assert.equal(cgroupCpuLimit(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '100000 100000' })), 1);
    // cgroup v1 (Docker 20.10 here): the cpu controller's quota and period
    const v1 = { '/proc/self/cgroup': '4:memory:/x\n1:cpu,cpuacct:/\n0::/\n', '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '100000', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' };
    assert.equal(cgroupCpuLimit(files(v1)), 1);
    assert.equal(cgroupCpuLimit(files({ ...v1, '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1' })), undefined);
    assert.equal(cgroupCpuLimit(files({})), undefined);
    // the limit caps the CPU count, rounded down, never below 1
    assert.equal(cpusAvailable(files({ '/proc/self/cgroup': '0::/', '/sys/fs/cgroup/cpu.max': '50000 100000' })), 1);
    assert.equal(cpusAvailable(files({ '/proc/self/cgroup': '0::/', '/sys/fs/cgroup/cpu.max': '100000000 100000' })), cpusAvailable(files({})));
  });

  it('a balancer on an older Node logs the fallback and serves on one thread', async () => {
    const origin = await startOrigin((_req, res) => res.end('ok'));
    const logs: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => logs.push(JSON.parse(line) as { level: number; msg: string }) });
    const lb = await startBalancer(testConfig([origin.port], { workers: 4 }), { logger, nodeVersion: '20.20.2' });
    try {
      assert.equal(lb.balancer.workers, 1);
      assert.ok(logs.some((l) => l.level === 40 && l.msg.includes('--workers 4 needs Node >= 22.12')), JSON.stringify(logs));
      assert.equal((await fetchOnNewConnection(`${lb.url}/`)).body, 'ok');
    } finally {
      await lb.balancer.stop();
      await origin.close();
    }
  });
});

describe('--workers 2: two data-path threads sharing exact counts (a balancer process on this Node)', function () {
  this.timeout(60_000);
  const TOKEN = 'workers-test-token';
  let origins: Awaited<ReturnType<typeof holdingOrigin>>[] = [];
  let child: Child | undefined;

  before(() => {
    // The project's Node (24, package.json engines) has reusePort; `make test` runs on it.
    assert.ok(supportsReusePort(process.versions.node), `Node ${process.versions.node} has no reusePort: run the tests on Node 24 (make test installs it)`);
  });

  afterEach(async () => {
    child?.proc.kill('SIGKILL');
    child = undefined;
    for (const o of origins) o.release();
    await Promise.all(origins.map((o) => o.close()));
    origins = [];
  });

  const start = async (count: number, flags: readonly string[] = []): Promise<{ url: string; admin: string }> => {
    origins = await Promise.all(Array.from({ length: count }, (_, i) => holdingOrigin(`o${i + 1}`)));
    const c = runBalancer(
      // Rotation: these tests count exact alternation, and held requests make upstreams look slow.
      ['--port', '0', '--admin-port', '0', '--workers', '2', '--health-interval-ms', '0', '--admin-token', TOKEN, '--tie-break', 'rotation', ...flags, ...origins.map((o) => o.id)],
    );
    child = c;
    await waitFor(() => listeningPorts(c.stdout) !== undefined || c.proc.exitCode !== null, 20_000, 'the listening log line');
    const ports = listeningPorts(c.stdout);
    assert.ok(ports, `no listening line; stderr: ${c.stderr}`);
    assert.match(c.stdout, /"workers":2,"msg":"balancer listening"/);
    return { url: `http://127.0.0.1:${ports.data}`, admin: `http://127.0.0.1:${ports.admin}` };
  };

  const metricsOf = async (admin: string): Promise<Map<string, number>> => parseMetrics((await fetchOnNewConnection(`${admin}/metrics`)).body);

  it('rotates sequential requests over every upstream exactly, whichever thread takes them; metrics and the live view sum both threads', async () => {
    // Exact only because a thread releases its count before it forwards the last bytes: otherwise
    // the next request could reach the other thread while this one is still counted.
    const { url, admin } = await start(4);
    const served = new Map<string, number>();
    for (let i = 0; i < 24; i++) {
      const reply = await fetchOnNewConnection(`${url}/`);
      assert.equal(reply.status, 200);
      served.set(reply.body, (served.get(reply.body) ?? 0) + 1);
    }
    assert.deepEqual([...served.entries()].sort(), [['o1', 6], ['o2', 6], ['o3', 6], ['o4', 6]]);

    const m = await metricsOf(admin);
    const byThread = [0, 1].map((t) => m.get(`lb_thread_requests_total{thread="${t}"}`) ?? 0);
    // 24 connections all hashed to one thread would make this test prove nothing (odds 2 in 2^24).
    assert.ok(byThread.every((n) => n > 0), `both threads took requests: ${byThread.join(', ')}`);
    assert.equal(byThread.reduce((a, b) => a + b, 0), 24);
    let total = 0;
    for (const o of origins) total += m.get(`lb_requests_total{upstream="${o.id}",code="200"}`) ?? 0;
    assert.equal(total, 24, 'lb_requests_total summed over the threads');
    assert.equal(m.get('process_cpu_seconds_total') !== undefined, true, 'process metrics once');

    await waitFor(async () => {
      const view = JSON.parse((await fetchOnNewConnection(`${admin}/api/upstreams`)).body) as { totals: { requests: number }; decisions: unknown[]; upstreams: { requests: number }[] };
      return view.totals.requests === 24 && view.decisions.length === 20 && view.upstreams.every((u) => u.requests === 6);
    }, 3000, 'the live view to show both threads\' requests and decisions');
  });

  it('a max in-flight holds across threads: never more than the cap in flight, whatever thread the requests reach', async () => {
    const { url, admin } = await start(2, ['--max-in-flight', '1', '--queue-length', '0']);
    const replies = Array.from({ length: 20 }, () => fetchOnNewConnection(`${url}/hold`));
    // With per-thread counts each thread would admit one request per upstream: 4 held, not 2.
    await waitFor(async () => (await metricsOf(admin)).get('lb_requests_total{upstream="none",code="503"}') === 18, 10_000, '18 refusals');
    // The two admitted requests may still be on their way to their origins when the 18th refusal
    // is counted (a CI run read [1, 0]): wait for them to arrive, then check none went over the cap.
    await waitFor(() => origins.every((o) => o.held() >= 1), 10_000, 'one request held at each origin');
    assert.deepEqual(origins.map((o) => o.held()), [1, 1]);
    const m = await metricsOf(admin);
    assert.ok([0, 1].every((t) => (m.get(`lb_thread_requests_total{thread="${t}"}`) ?? 0) > 0), 'both threads refused some');
    for (const o of origins) o.release();
    const statuses = (await Promise.all(replies)).map((r) => r.status).sort();
    assert.deepEqual(statuses, [...Array<number>(2).fill(200), ...Array<number>(18).fill(503)]);
  });

  it('least-connections compares the in-flight requests of both threads', async () => {
    const { url, admin } = await start(4);
    const replies: Promise<Reply>[] = [];
    for (let i = 1; i <= 16; i++) {
      replies.push(fetchOnNewConnection(`${url}/hold`));
      await waitFor(() => origins.reduce((n, o) => n + o.held(), 0) === i, 5000, `request ${i} to reach an origin`);
    }
    assert.deepEqual(origins.map((o) => o.held()), [4, 4, 4, 4]);
    const view = JSON.parse((await fetchOnNewConnection(`${admin}/api/upstreams`)).body) as { upstreams: { inFlight: number }[] };
    assert.deepEqual(view.upstreams.map((u) => u.inFlight), [4, 4, 4, 4]);
    for (const o of origins) o.release();
    await Promise.all(replies);
  });

  it('faults (#13) on both threads: requests held on an upstream that stops answering move at once, and panic mode serves', async () => {
    const { url, admin } = await start(2, ['--health-interval-ms', '100', '--health-down-interval-ms', '100', '--health-timeout-ms', '200', '--health-fall', '1']);
    const [sick, healthy] = origins;
    assert.ok(sick && healthy);
    // /healthz of `sick` gets no answer from now on while both hold what they have (a hung
    // upstream, as probes see it). One that answers its probe with a failure keeps its requests
    // (leaving-replica.spec.ts).
    let failing = new Set<number>();
    for (const [i, o] of origins.entries()) {
      const [handler] = o.server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
      o.server.removeAllListeners('request');
      o.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        if (req.url === '/healthz' && failing.has(i)) return;
        handler?.(req, res);
      });
    }
    const held = Array.from({ length: 8 }, () => fetchOnNewConnection(`${url}/hold`));
    await waitFor(() => sick.held() === 4 && healthy.held() === 4, 5000, 'four held on each');
    failing = new Set([0]);
    // Every thread moves its own requests off the upstream that went down: all 8 end up on the other.
    await waitFor(() => healthy.held() === 8, 5000, 'the held requests moved');
    healthy.release();
    assert.deepEqual((await Promise.all(held)).map((r) => [r.status, r.body]), Array.from({ length: 8 }, () => [200, 'o2']));
    // A worker thread reports its counts every 100 ms: poll until both threads' reports are in.
    let m = await metricsOf(admin);
    await waitFor(async () => {
      m = await metricsOf(admin);
      return [0, 1].every((t) => (m.get(`lb_thread_requests_total{thread="${t}"}`) ?? 0) > 0);
    }, 3000, 'both threads to report the requests they took');
    assert.equal(m.get(`lb_upstream_failures_total{upstream="${sick.id}",reason="ejected"}`), 4);

    failing = new Set([0, 1]);
    await waitFor(async () => (await metricsOf(admin)).get('lb_panic_mode') === 1, 5000, 'panic mode');
    for (let i = 0; i < 10; i++) assert.equal((await fetchOnNewConnection(`${url}/`)).status, 200);
    m = await metricsOf(admin);
    assert.equal(m.get('lb_panic_requests_total'), 10, 'counted on both threads, summed');
  });

  it('a policy switch reaches every thread: after PUT /api/policy round robin ignores a busy upstream on both', async () => {
    const { url, admin } = await start(2);
    const holding = fetchOnNewConnection(`${url}/hold`);
    await waitFor(() => origins.some((o) => o.held() === 1), 5000, 'the held request');
    const busy = origins[0]?.held() === 1 ? 'o1' : 'o2';
    const count = async (n: number): Promise<number> => {
      let hits = 0;
      for (let i = 0; i < n; i++) if ((await fetchOnNewConnection(`${url}/`)).body === busy) hits++;
      return hits;
    };
    assert.equal(await count(10), 0, 'least-connections on both threads avoids the busy upstream');
    assert.equal(await post(`${admin}/api/policy`, TOKEN, { policy: 'round-robin' }, 'PUT'), 200);
    // The shared turn counter alternates exactly, whichever thread takes each connection: a thread
    // still on least-connections would skip the busy one and make this fewer than 10.
    const before = await metricsOf(admin);
    assert.equal(await count(20), 10);
    const after = await metricsOf(admin);
    const took = [0, 1].map((t) => (after.get(`lb_thread_requests_total{thread="${t}"}`) ?? 0) - (before.get(`lb_thread_requests_total{thread="${t}"}`) ?? 0));
    assert.ok(took.every((n) => n > 0), `both threads took requests after the switch: ${took.join(', ')}`);
    assert.equal(after.get('lb_policy_info{policy="round-robin"}'), 1);
    for (const o of origins) o.release();
    await holding;
  });

  it('an operator drain reaches every thread; SIGTERM lets held requests finish on them, then exits 0', async () => {
    const { url, admin } = await start(3);
    const [drained, ...rest] = origins;
    assert.ok(drained);
    assert.equal(await post(`${admin}/api/upstreams/${encodeURIComponent(drained.id)}/drain`, TOKEN, { timeoutMs: 60_000 }), 200);
    for (let i = 0; i < 12; i++) assert.notEqual((await fetchOnNewConnection(`${url}/`)).body, 'o1');

    const held = Array.from({ length: 6 }, () => fetchOnNewConnection(`${url}/hold`));
    await waitFor(() => rest.reduce((n, o) => n + o.held(), 0) === 6, 5000, 'six held requests');
    const c = child;
    assert.ok(c);
    c.proc.kill('SIGTERM');
    await waitFor(() => c.stdout.includes('shutting down'), 5000, 'shutdown to begin');
    for (const o of rest) o.release();
    assert.deepEqual((await Promise.all(held)).map((r) => r.status), Array<number>(6).fill(200));
    assert.equal(await c.exited, 0);
    assert.match(c.stdout, /"msg":"stopped"/);
  });
});
