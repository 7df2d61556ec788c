/**
 * scripts/cluster.mjs (`npm start`) as a user runs it: prints the URLs, serves the page and images,
 * stops every child on SIGTERM and exits 0; exits 1 with a clear message when a child cannot start.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { join } from 'node:path';
import { REPO_ROOT, freePorts, missingBuild } from '../../scripts/cluster-lib.mjs';
import { pollUntil } from '../../scripts/poll.mjs';

const SCRIPT = join(REPO_ROOT, 'scripts', 'cluster.mjs');

interface Run {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exit: Promise<number | null>;
}

function launch(args: string[]): Run {
  const proc = spawn(process.execPath, [SCRIPT, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1', BACKEND_DELAY_SCALE: '0.02' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exit = once(proc, 'exit').then(([code]) => code as number | null);
  return { proc, out: () => out, err: () => err, exit };
}

const until = (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000) => pollUntil(what, check, timeoutMs, { intervalMs: 100 });

/** True when nothing accepts connections on the port any more. */
function portClosed(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      ok(false);
    });
    s.once('error', () => {
      ok(true);
    });
  });
}

/** Four consecutive free ports for the backends (the launcher numbers them from --base-port). */
async function freeRange(n: number): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const [p] = await freePorts(1);
    if (p === undefined || p + n > 65535) continue;
    const ok = await Promise.all(Array.from({ length: n }, (_, i) => portClosed(p + i)));
    if (ok.every(Boolean)) return p;
  }
  throw new Error('no free port range');
}

describe('scripts/cluster.mjs (npm start)', function () {
  this.timeout(60_000);
  const running: Run[] = [];

  before(() => {
    const missing = missingBuild();
    if (missing.length) throw new Error(`run \`npm run build\` first (missing ${missing.join(', ')})`);
  });

  after(async () => {
    // A failed assertion must not leave a cluster behind.
    for (const r of running) {
      if (r.proc.exitCode === null && r.proc.signalCode === null) {
        r.proc.kill('SIGTERM');
        await r.exit;
      }
    }
  });

  it('prints --help and exits 0', async () => {
    const r = launch(['--help']);
    assert.equal(await r.exit, 0);
    assert.match(r.out(), /--backends N/);
    assert.match(r.out(), /--delay-scale X/);
  });

  it('rejects a bad option value with exit 1 before starting anything', async () => {
    const r = launch(['--backends', '0']);
    assert.equal(await r.exit, 1);
    assert.match(r.err(), /--backends must be an integer 1-100, got "0"/);
  });

  it('starts the cluster, serves the page with the same URLs, and stops everything on SIGTERM with exit 0', async () => {
    const base = await freeRange(2);
    const [lb, adminPort, uiPort] = await freePorts(3);
    assert.ok(lb && adminPort && uiPort);
    const r = launch([
      '--backends', '2', '--base-port', String(base), '--balancer-port', String(lb),
      '--admin-port', String(adminPort), '--ui-port', String(uiPort),
    ]);
    running.push(r);
    await until('the launcher to be ready', () => r.out().includes('Ctrl-C stops everything') || r.proc.exitCode !== null);
    assert.equal(r.proc.exitCode, null, r.err());
    assert.match(r.out(), new RegExp(`page\\s+http://127\\.0\\.0\\.1:${uiPort}/`));
    assert.match(r.out(), new RegExp(`balancer\\s+http://127\\.0\\.0\\.1:${lb}/`));
    assert.match(r.out(), new RegExp(`backends\\s+127\\.0\\.0\\.1:${base}\\s+127\\.0\\.0\\.1:${base + 1}`));
    // Child output is prefixed with its name.
    assert.match(r.out(), /^\[backend-1\]\s+\S/m);
    assert.match(r.out(), /^\[balancer\]\s+\S/m);

    const page = await fetch(`http://127.0.0.1:${uiPort}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /Traffic distribution/);
    const img = await fetch(`http://127.0.0.1:${uiPort}/images/1?nocache=1`);
    assert.equal(img.status, 200);
    assert.equal(img.headers.get('content-type'), 'image/png');
    assert.match(img.headers.get('x-lb-decision') ?? '', /^chosen=127\.0\.0\.1:\d+; reason=/, '--explain is on by default');
    await img.arrayBuffer();
    const api = await fetch(`http://127.0.0.1:${uiPort}/api/upstreams`);
    assert.deepEqual(
      ((await api.json()) as { upstreams: { id: string }[] }).upstreams.map((u) => u.id).sort(),
      [`127.0.0.1:${base}`, `127.0.0.1:${base + 1}`],
    );
    const lab = await fetch(`http://127.0.0.1:${uiPort}/api/lab`);
    assert.equal(lab.status, 200, 'the lab is on by default (the balancer\'s own default is off)');
    assert.equal(((await lab.json()) as { state: string }).state, 'idle');

    r.proc.kill('SIGTERM');
    assert.equal(await r.exit, 0, r.err());
    assert.match(r.out(), /stopped\.\n$/);
    for (const p of [base, base + 1, lb, adminPort, uiPort]) assert.ok(await portClosed(p), `port ${p} still open`);
  });

  it('exits 1 naming the port when one is already taken, and leaves nothing running', async () => {
    const base = await freeRange(2);
    const [lb, adminPort, uiPort] = await freePorts(3);
    assert.ok(lb && adminPort && uiPort);
    const squatter = net.createServer();
    squatter.listen(base + 1, '127.0.0.1');
    await once(squatter, 'listening');
    try {
      const r = launch([
        '--backends', '2', '--base-port', String(base), '--balancer-port', String(lb),
        '--admin-port', String(adminPort), '--ui-port', String(uiPort),
      ]);
      running.push(r);
      assert.equal(await r.exit, 1);
      assert.match(r.err(), new RegExp(`port ${base + 1} \\(backend-2\\) is already in use`));
    } finally {
      await new Promise<void>((ok) => squatter.close(() => {
        ok();
      }));
    }
  });

  it('exits 1 with the output of a child that dies while starting, and stops the others', async () => {
    const base = await freeRange(2);
    const [lb, adminPort, uiPort] = await freePorts(3);
    assert.ok(lb && adminPort && uiPort);
    // Everything after "--" goes to the balancer; this value makes it exit 2 at start.
    const r = launch([
      '--backends', '2', '--base-port', String(base), '--balancer-port', String(lb),
      '--admin-port', String(adminPort), '--ui-port', String(uiPort), '--', '--tie-break', 'coin-flip',
    ]);
    running.push(r);
    assert.equal(await r.exit, 1);
    assert.match(r.err(), /balancer exited \(code 2\) while starting/);
    assert.match(r.err(), /tie-break|tieBreak/);
    for (const p of [base, base + 1]) assert.ok(await portClosed(p), `backend port ${p} still open`);
  });
});
