import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import request from 'supertest';
import { request as undiciRequest } from 'undici';
import { createAdminApp } from '../src/admin/app.js';
import { createEventHub } from '../src/admin/event-hub.js';
import { DEFAULT_DRAIN_TIMEOUT_MS } from '../src/admin/write-api.js';
import { MAX_BODY_BYTES, tokenMatches } from '../src/write-guard.js';
import { parseConfig } from '../src/config.js';
import type { AdminTokenSource } from '../src/config.js';
import { createDecisionLog } from '../src/decision-log.js';
import { createMetrics } from '../src/metrics.js';
import { createPolicySetting } from '../src/picker/policy.js';
import type { PolicySetting } from '../src/picker/policy.js';
import { takeSnapshot } from '../src/snapshot.js';
import type { Snapshot, UpstreamView } from '../src/snapshot.js';
import type { Registry } from '../src/upstreams/registry.js';
import { startBalancer, startOrigin, testConfig, testRegistry, waitFor } from './helpers.js';
import type { Origin, Running } from './helpers.js';

const TOKEN = 'correct-horse-battery-staple';
const A = '127.0.0.1:8002';
const V6 = '[::1]:8003';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

interface Harness {
  readonly registry: Registry;
  readonly app: ReturnType<typeof createAdminApp>;
  readonly logs: Record<string, unknown>[];
  readonly policy: PolicySetting;
  stop(): Promise<void>;
}

/** The admin app over a real registry (two upstreams, nothing listening: pools connect lazily). */
function harness(token: string, source?: AdminTokenSource): Harness {
  const registry = testRegistry();
  registry.sync('static', [
    { host: '127.0.0.1', port: 8002, weight: 1 },
    { host: '::1', port: 8003, weight: 1 },
  ]);
  const policy = createPolicySetting('least-connections');
  const metrics = createMetrics(registry, { processMetrics: false, upstreamGauges: true, policy: () => policy.current });
  const decisions = createDecisionLog();
  const snapshot = (): Snapshot => takeSnapshot(registry, decisions, { tieBreak: 'rotation', explain: false, instance: 'test', policy: policy.current });
  const events = createEventHub(snapshot, 50);
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  const app = createAdminApp({ metrics, snapshot, events, ready: () => true, logger, writes: { registry, token: { value: token, source }, policy } });
  return {
    registry,
    app,
    logs,
    policy,
    stop: async () => {
      events.stop();
      await registry.stop();
    },
  };
}

const ROUTES = [
  { method: 'post', path: (id: string) => `/api/upstreams/${id}/drain`, body: {} },
  { method: 'post', path: (id: string) => `/api/upstreams/${id}/undrain`, body: {} },
  { method: 'put', path: (id: string) => `/api/upstreams/${id}/weight`, body: { weight: 2 } },
  { method: 'put', path: (id: string) => `/api/upstreams/${id}/max-in-flight`, body: { maxInFlight: 2 } },
] as const;

function send(h: Harness, method: 'post' | 'put', path: string) {
  return method === 'post' ? request(h.app.callback()).post(path) : request(h.app.callback()).put(path);
}

describe('admin write API', () => {
  describe('Koa app over a real registry (supertest)', () => {
    let h: Harness;
    beforeEach(() => {
      h = harness(TOKEN);
    });
    afterEach(async () => {
      await h.stop();
    });

    it('PUT /api/policy switches the policy; the snapshot, GET /api/policy and lb_policy_info show it', async () => {
      const read = await request(h.app.callback()).get('/api/policy').expect(200);
      assert.deepEqual(read.body, { policy: 'least-connections', policies: ['least-connections', 'round-robin', 'random', 'p2c', 'peak-ewma'] });
      const res = await request(h.app.callback()).put('/api/policy').set(bearer(TOKEN)).send({ policy: 'peak-ewma' }).expect(200);
      assert.equal(res.body.policy, 'peak-ewma');
      assert.equal(h.policy.current, 'peak-ewma');
      assert.equal((await request(h.app.callback()).get('/api/upstreams').expect(200)).body.policy, 'peak-ewma');
      const metrics = (await request(h.app.callback()).get('/metrics').expect(200)).text;
      assert.match(metrics, /^lb_policy_info\{policy="peak-ewma"\} 1$/m);
      assert.doesNotMatch(metrics, /lb_policy_info\{policy="least-connections"\}/);
      assert.ok(h.logs.some((l) => l.msg === 'admin change' && l.action === 'policy' && l.from === 'least-connections' && l.to === 'peak-ewma'));
    });

    it('PUT /api/policy: 401 without the token, 403 without a configured one, 400 for an unknown name; nothing changes', async () => {
      const none = await request(h.app.callback()).put('/api/policy').send({ policy: 'p2c' }).expect(401);
      assert.equal(none.body.error, 'LB_UNAUTHORIZED');
      await request(h.app.callback()).put('/api/policy').set(bearer('nope')).send({ policy: 'p2c' }).expect(401);
      const bad = await request(h.app.callback()).put('/api/policy').set(bearer(TOKEN)).send({ policy: 'leastconn' }).expect(400);
      assert.equal(bad.body.error, 'LB_BAD_REQUEST');
      assert.match(String(bad.body.message), /^policy: /);
      await request(h.app.callback()).put('/api/policy').set(bearer(TOKEN)).send({ policy: 'p2c', extra: 1 }).expect(400);
      const off = harness('');
      try {
        const res = await request(off.app.callback()).put('/api/policy').set(bearer('')).send({ policy: 'p2c' }).expect(403);
        assert.equal(res.body.error, 'LB_ADMIN_WRITES_DISABLED');
        assert.equal(off.policy.current, 'least-connections');
      } finally {
        await off.stop();
      }
      assert.equal(h.policy.current, 'least-connections');
    });

    it('refuses every write with 403 LB_ADMIN_WRITES_DISABLED when no token is configured', async () => {
      const off = harness('');
      try {
        for (const r of ROUTES) {
          const res = await send(off, r.method, r.path(A)).set(bearer('')).send(r.body).expect(403);
          assert.equal(res.body.error, 'LB_ADMIN_WRITES_DISABLED', r.path(A));
          await send(off, r.method, r.path(A)).set(bearer('anything')).send(r.body).expect(403);
        }
        const u = off.registry.get(A);
        assert.equal(u?.state, 'up');
        assert.equal(u.configuredWeight, 1);
        assert.equal(u.maxInFlight, 0);
        // Reads stay open.
        await request(off.app.callback()).get('/api/upstreams').expect(200);
      } finally {
        await off.stop();
      }
    });

    it('401 LB_UNAUTHORIZED without a token, with a wrong one, or with another scheme; nothing changes', async () => {
      for (const r of ROUTES) {
        const none = await send(h, r.method, r.path(A)).send(r.body).expect(401);
        assert.equal(none.body.error, 'LB_UNAUTHORIZED');
        assert.match(String(none.headers['www-authenticate']), /^Bearer /);
        for (const auth of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, 'Bearer x', `Basic ${TOKEN}`, TOKEN, `Bearer ${TOKEN} extra`]) {
          const res = await send(h, r.method, r.path(A)).set('authorization', auth).send(r.body).expect(401);
          assert.equal(res.body.error, 'LB_UNAUTHORIZED', auth);
        }
      }
      const u = h.registry.get(A);
      assert.equal(u?.state, 'up');
      assert.equal(u.configuredWeight, 1);
      assert.equal(u.maxInFlight, 0);
      // Authentication comes before the lookup: an unknown id does not tell an outsider anything.
      await request(h.app.callback()).put('/api/upstreams/10.9.9.9:1/weight').send({ weight: 2 }).expect(401);
    });

    it('compares tokens on fixed-length digests (any length, no early exit)', () => {
      assert.equal(tokenMatches(TOKEN, TOKEN), true);
      assert.equal(tokenMatches('', TOKEN), false);
      assert.equal(tokenMatches(`${TOKEN}${'x'.repeat(500)}`, TOKEN), false);
      assert.equal(tokenMatches('', ''), false, 'an unset token never matches');
      // A case-insensitive scheme is fine; the token itself is exact.
      assert.equal(tokenMatches(TOKEN.toUpperCase(), TOKEN), false);
    });

    it('404 LB_UNKNOWN_UPSTREAM for an id the registry does not know', async () => {
      for (const r of ROUTES) {
        const res = await send(h, r.method, r.path('127.0.0.1%3A9')).set(bearer(TOKEN)).send(r.body).expect(404);
        assert.deepEqual(res.body, { error: 'LB_UNKNOWN_UPSTREAM', message: 'no upstream 127.0.0.1:9' });
      }
    });

    it('accepts ids raw (with ":") or URL-encoded, IPv6 ids included', async () => {
      await send(h, 'put', `/api/upstreams/${A}/weight`).set(bearer(TOKEN)).send({ weight: 4 }).expect(200);
      assert.equal(h.registry.get(A)?.configuredWeight, 4);
      await send(h, 'put', `/api/upstreams/${encodeURIComponent(A)}/weight`).set(bearer(TOKEN)).send({ weight: 5 }).expect(200);
      assert.equal(h.registry.get(A)?.configuredWeight, 5);
      const v6 = await send(h, 'put', `/api/upstreams/${encodeURIComponent(V6)}/weight`).set(bearer(TOKEN)).send({ weight: 6 }).expect(200);
      assert.equal((v6.body as UpstreamView).id, V6);
      assert.equal(h.registry.get(V6)?.configuredWeight, 6);
    });

    it('drain: no new requests, a countdown from the default 30 s deadline; undrain ends it', async () => {
      const before = Date.now();
      const res = await send(h, 'post', `/api/upstreams/${A}/drain`).set(bearer(TOKEN)).expect(200);
      const view = res.body as UpstreamView;
      assert.equal(view.state, 'draining');
      assert.equal(view.available, false);
      assert.ok(view.drain);
      assert.equal(view.drain.deadline - view.drain.startedAt, DEFAULT_DRAIN_TIMEOUT_MS);
      assert.ok(view.drain.startedAt >= before);
      assert.ok(view.drain.remainingMs > DEFAULT_DRAIN_TIMEOUT_MS - 1000 && view.drain.remainingMs <= DEFAULT_DRAIN_TIMEOUT_MS);
      assert.equal(view.drain.drained, true, 'nothing was in flight');
      assert.deepEqual(h.registry.available().map((u) => u.id), [V6]);

      const custom = await send(h, 'post', `/api/upstreams/${encodeURIComponent(V6)}/drain`).set(bearer(TOKEN)).send({ timeoutMs: 5000 }).expect(200);
      const drain = (custom.body as UpstreamView).drain;
      assert.equal(drain && drain.deadline - drain.startedAt, 5000);

      const back = await send(h, 'post', `/api/upstreams/${A}/undrain`).set(bearer(TOKEN)).expect(200);
      assert.equal((back.body as UpstreamView).state, 'up');
      assert.equal((back.body as UpstreamView).drain, undefined);
      assert.deepEqual(h.registry.available().map((u) => u.id), [A]);
    });

    it('drain reports drained: false while a request is in flight, true once it is released', async () => {
      const u = h.registry.get(A);
      assert.ok(u);
      h.registry.acquire(u);
      const res = await send(h, 'post', `/api/upstreams/${A}/drain`).set(bearer(TOKEN)).send({ timeoutMs: 1000 }).expect(200);
      assert.equal((res.body as UpstreamView).drain?.drained, false);
      h.registry.release(u);
      const snap = await request(h.app.callback()).get('/api/upstreams').expect(200);
      const view = (snap.body as Snapshot).upstreams.find((v) => v.id === A);
      assert.equal(view?.drain?.drained, true);
    });

    it('weight and max in-flight are stored and shown by /api/upstreams', async () => {
      const w = await send(h, 'put', `/api/upstreams/${A}/weight`).set(bearer(TOKEN)).send({ weight: 1000 }).expect(200);
      assert.equal((w.body as UpstreamView).weight, 1000);
      assert.equal((w.body as UpstreamView).effectiveWeight, 1000);
      const m = await send(h, 'put', `/api/upstreams/${A}/max-in-flight`).set(bearer(TOKEN)).send({ maxInFlight: 7 }).expect(200);
      assert.equal((m.body as UpstreamView).maxInFlight, 7);
      await send(h, 'put', `/api/upstreams/${encodeURIComponent(V6)}/max-in-flight`).set(bearer(TOKEN)).send({ maxInFlight: 0 }).expect(200);
      const snap = (await request(h.app.callback()).get('/api/upstreams').expect(200)).body as Snapshot;
      const a = snap.upstreams.find((v) => v.id === A);
      assert.equal(a?.weight, 1000);
      assert.equal(a.maxInFlight, 7);
      assert.equal(snap.upstreams.find((v) => v.id === V6)?.maxInFlight, 0);
    });

    it('400 LB_BAD_REQUEST naming the problem for a bad body, and nothing changes', async () => {
      const cases: [string, string, string | object, RegExp][] = [
        ['weight', 'put', { weight: 0 }, /weight: .*>=1/],
        ['weight', 'put', { weight: 1001 }, /weight: .*<=1000/],
        ['weight', 'put', { weight: 1.5 }, /weight: .*int/],
        ['weight', 'put', { weight: '3' }, /weight: .*number/],
        ['weight', 'put', {}, /weight: /],
        ['weight', 'put', { weight: 2, wieght: 3 }, /wieght/],
        ['weight', 'put', '{"weight": 2', /not valid JSON/],
        ['weight', 'put', '[2]', /body: /],
        ['max-in-flight', 'put', { maxInFlight: -1 }, /maxInFlight: .*>=0/],
        ['max-in-flight', 'put', { max: 1 }, /maxInFlight: /],
        ['drain', 'post', { timeoutMs: -5 }, /timeoutMs: .*>=0/],
        ['drain', 'post', { timeout: 5 }, /timeout/],
        ['undrain', 'post', { now: true }, /now/],
      ];
      for (const [route, method, body, problem] of cases) {
        const req = send(h, method as 'put', `/api/upstreams/${A}/${route}`).set(bearer(TOKEN)).set('content-type', 'application/json');
        const res = await req.send(typeof body === 'string' ? body : JSON.stringify(body)).expect(400);
        assert.equal(res.body.error, 'LB_BAD_REQUEST', `${route} ${JSON.stringify(body)}`);
        assert.match(res.body.message, problem, `${route} ${JSON.stringify(body)}: ${res.body.message}`);
      }
      const u = h.registry.get(A);
      assert.equal(u?.state, 'up');
      assert.equal(u.configuredWeight, 1);
      assert.equal(u.maxInFlight, 0);
    });

    it(`413 LB_BODY_TOO_LARGE for a body over ${MAX_BODY_BYTES} bytes`, async () => {
      const big = JSON.stringify({ weight: 2, pad: 'x'.repeat(MAX_BODY_BYTES) });
      const res = await send(h, 'put', `/api/upstreams/${A}/weight`).set(bearer(TOKEN)).set('content-type', 'application/json').send(big).expect(413);
      assert.equal(res.body.error, 'LB_BODY_TOO_LARGE');
      assert.equal(h.registry.get(A)?.configuredWeight, 1);
    });

    it('409 LB_UPSTREAM_REMOVED when discovery already removed the upstream (it only finishes its requests)', async () => {
      const u = h.registry.get(A);
      assert.ok(u);
      h.registry.acquire(u); // keeps the removed upstream listed
      h.registry.sync('static', [{ host: '::1', port: 8003, weight: 1 }]);
      for (const route of ['drain', 'undrain']) {
        const res = await send(h, 'post', `/api/upstreams/${A}/${route}`).set(bearer(TOKEN)).expect(409);
        assert.equal(res.body.error, 'LB_UPSTREAM_REMOVED');
      }
      h.registry.release(u);
      await send(h, 'post', `/api/upstreams/${A}/drain`).set(bearer(TOKEN)).expect(404);
    });

    it('logs every change with the upstream and the action, never a refused one', async () => {
      await send(h, 'put', `/api/upstreams/${A}/weight`).set(bearer('wrong')).send({ weight: 9 }).expect(401);
      await send(h, 'post', `/api/upstreams/${A}/drain`).set(bearer(TOKEN)).send({ timeoutMs: 100 }).expect(200);
      await send(h, 'post', `/api/upstreams/${A}/undrain`).set(bearer(TOKEN)).expect(200);
      await send(h, 'put', `/api/upstreams/${A}/weight`).set(bearer(TOKEN)).send({ weight: 3 }).expect(200);
      await send(h, 'put', `/api/upstreams/${A}/max-in-flight`).set(bearer(TOKEN)).send({ maxInFlight: 4 }).expect(200);
      const changes = h.logs.filter((l) => l.msg === 'admin change').map((l) => ({ upstream: l.upstream, action: l.action, to: l.to }));
      assert.deepEqual(changes, [
        { upstream: A, action: 'drain', to: undefined },
        { upstream: A, action: 'undrain', to: undefined },
        { upstream: A, action: 'weight', to: 3 },
        { upstream: A, action: 'max-in-flight', to: 4 },
      ]);
    });
  });

  describe('the 403 names what would enable writes, as this balancer was configured', () => {
    /** The refusal of a balancer configured by `argv` and `env`; `files` are what the token file reader finds. */
    const refusalOf = async (argv: string[], env: Record<string, string>, files: Record<string, string> = {}): Promise<string> => {
      const parsed = parseConfig(argv, env, (path) => {
        const text = files[path];
        if (text === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
        return text;
      });
      if (parsed.kind !== 'config') throw new Error(`bad config: ${JSON.stringify(parsed)}`);
      const off = harness(parsed.config.adminToken, parsed.config.adminTokenSource);
      try {
        const res = await request(off.app.callback()).put('/api/policy').send({ policy: 'p2c' }).expect(403);
        assert.equal(res.body.error, 'LB_ADMIN_WRITES_DISABLED');
        return String(res.body.message);
      } finally {
        await off.stop();
      }
    };

    it('configured by flags and given no token: --admin-token or --admin-token-file', async () => {
      assert.equal(
        await refusalOf(['--port', '8001', 'a:1'], {}),
        'admin writes are disabled: no admin token is configured; give one with --admin-token or --admin-token-file (a file holding it) to enable them',
      );
    });

    it('configured by the environment and given no token: LB_ADMIN_TOKEN or LB_ADMIN_TOKEN_FILE', async () => {
      assert.equal(
        await refusalOf([], { LB_UPSTREAMS: 'a:1' }),
        'admin writes are disabled: no admin token is configured; give one with LB_ADMIN_TOKEN or LB_ADMIN_TOKEN_FILE (a file holding it) to enable them',
      );
    });

    it('given an empty token: the flag or env var that gave it', async () => {
      assert.equal(await refusalOf(['--admin-token=', 'a:1'], {}), 'admin writes are disabled: --admin-token is empty; give it a token to enable them');
      assert.equal(await refusalOf([], { LB_UPSTREAMS: 'a:1', LB_ADMIN_TOKEN: '' }), 'admin writes are disabled: LB_ADMIN_TOKEN is empty; give it a token to enable them');
    });

    it('an empty token file (Compose\'s default secret): the file, who named it, and how to start Compose with a token', async () => {
      const compose = await refusalOf([], { LB_DISCOVERY_DNS: 'backend', LB_ADMIN_TOKEN_FILE: '/run/secrets/lb_admin_token' }, { '/run/secrets/lb_admin_token': '\n' });
      assert.match(compose, /^admin writes are disabled: the admin token file \/run\/secrets\/lb_admin_token \(LB_ADMIN_TOKEN_FILE\) is empty; /);
      assert.ok(compose.includes('`LB_ADMIN_TOKEN_FILE=./secrets/admin-token docker compose up -d` (or `make up` with the same variable)'), compose);
      const flag = await refusalOf(['--admin-token-file', '/etc/lb/token', 'a:1'], {}, { '/etc/lb/token': '' });
      assert.match(flag, /^admin writes are disabled: the admin token file \/etc\/lb\/token \(--admin-token-file\) is empty; /);
    });

    it('a running balancer refuses with its own source (real sockets, a real empty token file)', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'lb-token-'));
      const file = join(dir, 'token');
      await writeFile(file, '');
      const origin = await startOrigin((_req, res) => res.writeHead(200).end('ok'));
      const running = await startBalancer(testConfig([origin.port], {}, ['--admin-token-file', file]));
      try {
        const res = await undiciRequest(`${running.adminUrl}/api/upstreams/${origin.id}/drain`, { method: 'POST', headers: bearer('anything') });
        assert.equal(res.statusCode, 403);
        const body = (await res.body.json()) as { error: string; message: string };
        assert.equal(body.error, 'LB_ADMIN_WRITES_DISABLED');
        assert.ok(body.message.startsWith(`admin writes are disabled: the admin token file ${file} (--admin-token-file) is empty; `), body.message);
        assert.equal(running.balancer.registry.get(origin.id)?.state, 'up', 'not drained');
      } finally {
        await running.balancer.stop();
        await origin.close();
        await rm(dir, { recursive: true });
      }
    });
  });

  describe('against a running balancer (real sockets)', () => {
    let origins: Origin[] = [];
    let lb: Running | undefined;
    const held: { name: string; release: () => void }[] = [];

    /** Answers its name; /hold waits until the test releases it. */
    const holdingOrigin = (name: string) =>
      startOrigin((req, res) => {
        if (req.url === '/hold') {
          held.push({
            name,
            release: () => {
              if (!res.headersSent) res.writeHead(200).end(name);
            },
          });
        }
        else res.writeHead(200).end(name);
      });

    const call = async (path: string) => {
      assert.ok(lb);
      const res = await undiciRequest(`${lb.url}${path}`);
      return { status: res.statusCode, text: await res.body.text() };
    };
    const admin = async (method: 'POST' | 'PUT', path: string, body?: unknown) => {
      assert.ok(lb);
      const res = await undiciRequest(`${lb.adminUrl}${path}`, {
        method,
        headers: { ...bearer(TOKEN), 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.statusCode, body: (await res.body.json()) as UpstreamView & { error?: string } };
    };
    const view = async (id: string): Promise<UpstreamView> => {
      assert.ok(lb);
      const snap = (await (await undiciRequest(`${lb.adminUrl}/api/upstreams`)).body.json()) as Snapshot;
      const v = snap.upstreams.find((u) => u.id === id);
      assert.ok(v, id);
      return v;
    };

    beforeEach(async () => {
      origins = await Promise.all(['a', 'b'].map(holdingOrigin));
      // Rotation, not the latency tie-break: the held request leaves its upstream looking slow for a
      // second or two, and these tests count exact alternation after drains and weight changes.
      lb = await startBalancer(testConfig(origins.map((o) => o.port), { adminToken: TOKEN, tieBreak: 'rotation' }));
    });
    afterEach(async () => {
      for (const h of held.splice(0)) h.release();
      await lb?.balancer.stop();
      lb = undefined;
      await Promise.all(origins.map((o) => o.close()));
      origins = [];
    });

    it('a drained upstream gets no new requests while its held request finishes; then drained: true; undrain brings it back', async () => {
      const pending = call('/hold');
      await waitFor(() => held.length === 1, 2000, 'a request held at an upstream');
      const h = held[0];
      assert.ok(h);
      const id = origins[h.name === 'a' ? 0 : 1]?.id ?? '';
      const other = h.name === 'a' ? 'b' : 'a';

      const drained = await admin('POST', `/api/upstreams/${encodeURIComponent(id)}/drain`, { timeoutMs: 10_000 });
      assert.equal(drained.status, 200);
      assert.equal(drained.body.state, 'draining');
      assert.equal(drained.body.inFlight, 1);
      assert.equal(drained.body.drain?.drained, false);

      for (let i = 0; i < 6; i++) assert.equal((await call('/x')).text, other, 'nothing new reaches the drained upstream');

      // The countdown runs.
      const first = (await view(id)).drain?.remainingMs ?? 0;
      assert.ok(first > 0 && first <= 10_000);
      await waitFor(async () => ((await view(id)).drain?.remainingMs ?? first) < first, 2000, 'countdown moves');
      assert.equal((await view(id)).drain?.drained, false);

      h.release();
      const finished = await pending;
      assert.deepEqual(finished, { status: 200, text: h.name }, 'the in-flight request finished normally');
      await waitFor(async () => (await view(id)).drain?.drained === true, 2000, 'drained: true');
      assert.equal((await view(id)).inFlight, 0);

      const back = await admin('POST', `/api/upstreams/${id}/undrain`);
      assert.equal(back.status, 200);
      assert.equal(back.body.state, 'up');
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) seen.add((await call('/x')).text);
      assert.deepEqual([...seen].sort(), ['a', 'b'], 'both upstreams serve again');
    });

    it('a weight change shifts the split: 3:1 over sequential requests', async () => {
      const [a] = origins;
      assert.ok(a);
      const res = await admin('PUT', `/api/upstreams/${a.id}/weight`, { weight: 3 });
      assert.equal(res.status, 200);
      assert.equal(res.body.weight, 3);
      const counts = { a: 0, b: 0 };
      for (let i = 0; i < 8; i++) counts[(await call('/x')).text as 'a' | 'b']++;
      assert.deepEqual(counts, { a: 6, b: 2 });
    });

    it('max in-flight is stored and visible in /api/upstreams', async () => {
      const [, b] = origins;
      assert.ok(b);
      const res = await admin('PUT', `/api/upstreams/${encodeURIComponent(b.id)}/max-in-flight`, { maxInFlight: 3 });
      assert.equal(res.status, 200);
      assert.equal((await view(b.id)).maxInFlight, 3);
      assert.equal(lb?.balancer.registry.get(b.id)?.maxInFlight, 3);
    });

    it('reads the body with a limit on the real port: a chunked body over the limit is 413', async () => {
      assert.ok(lb);
      const [a] = origins;
      assert.ok(a);
      const chunks = [Buffer.from('{"weight": 2, "pad": "'), Buffer.alloc(MAX_BODY_BYTES, 'x'), Buffer.from('"}')];
      const res = await undiciRequest(`${lb.adminUrl}/api/upstreams/${a.id}/weight`, {
        method: 'PUT',
        headers: { ...bearer(TOKEN), 'content-type': 'application/json' },
        body: Readable.from(chunks), // no content-length: the limit must hold while reading
      });
      assert.equal(res.statusCode, 413);
      assert.equal(((await res.body.json()) as { error: string }).error, 'LB_BODY_TOO_LARGE');
      assert.equal(lb.balancer.registry.get(a.id)?.configuredWeight, 1);
      // The connection and the API are fine afterwards.
      const ok = await admin('PUT', `/api/upstreams/${a.id}/weight`, { weight: 2 });
      assert.equal(ok.status, 200);
    });
  });
});
