import assert from 'node:assert/strict';
import { request } from 'undici';
import { namedHandler, startOrigin, waitFor } from './helpers.js';
import { listeningPorts, runBalancer } from './process.js';

describe('balancer CLI (a real process)', function () {
  this.timeout(20_000);

  it('bad flags: every problem on stderr, exit 2, nothing listens', async () => {
    const child = runBalancer(['--port', 'x', 'nonsense', '--tie-break', 'first', '--bogus']);
    assert.equal(await child.exited, 2);
    assert.match(child.stderr, /invalid configuration/);
    assert.match(child.stderr, /--port "x": expected an integer 0-65535/);
    assert.match(child.stderr, /upstream "nonsense": expected host:port or host:port=weight/);
    assert.match(child.stderr, /--tie-break "first": expected one of latency, rotation, random/);
    assert.match(child.stderr, /unknown option --bogus/);
    assert.doesNotMatch(child.stderr, /Invalid input/);
    assert.equal(child.stdout, '');
  });

  it('bad env: exit 2 with the message', async () => {
    const child = runBalancer([], { LB_UPSTREAMS: 'a:1', LB_ADMIN_PORT: '-5' });
    assert.equal(await child.exited, 2);
    assert.match(child.stderr, /LB_ADMIN_PORT "-5": expected an integer 0-65535/);
  });

  it('--check validates and exits 0 without listening; --help prints usage', async () => {
    const check = runBalancer(['--check', '127.0.0.1:8002=2']);
    assert.equal(await check.exited, 0);
    assert.match(check.stdout, /configuration ok .*127\.0\.0\.1:8002=2/);
    const help = runBalancer(['--help']);
    assert.equal(await help.exited, 0);
    assert.match(help.stdout, /Usage: balancer/);
  });

  it('serves, then exits 0 on SIGTERM', async () => {
    const origin = await startOrigin(namedHandler('one'));
    const child = runBalancer(['--port', '0', '--admin-port', '0', origin.id]);
    try {
      await waitFor(() => listeningPorts(child.stdout) !== undefined, 15_000, 'listening log line');
      const ports = listeningPorts(child.stdout);
      assert.ok(ports);
      const res = await request(`http://127.0.0.1:${ports.data}/`);
      assert.equal(await res.body.text(), 'one');
      child.proc.kill('SIGTERM');
      assert.equal(await child.exited, 0);
      assert.match(child.stdout, /"msg":"stopped"/);
    } finally {
      child.proc.kill('SIGKILL');
      await origin.close();
    }
  });
});
