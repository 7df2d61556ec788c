/**
 * scripts/roll-balancers.sh (`make roll-balancers`) against a stand-in `docker` that keeps the
 * balancer service's containers in a directory and records every call: the order is what makes the
 * roll lose nothing (new replicas ready before any old one stops, the old ones stopped one at a
 * time), and a roll that cannot finish must leave the old replicas running. The Compose e2e suite
 * runs the script for real, under load.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../scripts/cluster-lib.mjs';

const SCRIPT = join(REPO_ROOT, 'scripts', 'roll-balancers.sh');

/**
 * The stand-in: `compose ps -q` lists the containers, `compose up --scale balancer=N` adds `new<n>`
 * ones, `inspect` prints the running ones' ids, `exec ... http-check` succeeds from a container's
 * READY_AFTER-th probe on, `stop` and `rm` change the state.
 */
const STUB = `#!/bin/bash
echo "docker $*" >> "$CALLS"
if [ "$1" = compose ]; then
  shift
  case "$1" in
    version|build) exit 0 ;;
    ps) for f in "$STATE"/*; do [ -e "$f" ] && basename "$f"; done; exit 0 ;;
    up)
      want=$(printf '%s\\n' "$@" | sed -n 's/^balancer=//p')
      have=$(ls "$STATE" | wc -l)
      for ((i = have + 1; i <= want; i++)); do echo running > "$STATE/new$i"; echo 0 > "$STATE/.probes-new$i"; done
      exit 0 ;;
  esac
  exit 2
fi
case "$1" in
  inspect) shift 3; for id in "$@"; do [ "$(cat "$STATE/$id")" = running ] && echo "$id" || echo; done ;;
  exec) n=$(cat "$STATE/.probes-$2"); echo $((n + 1)) > "$STATE/.probes-$2"; [ $((n + 1)) -ge "$READY_AFTER" ] ;;
  stop) echo stopped > "$STATE/\${@: -1}" ;;
  rm) rm "$STATE/$2" ;;
  *) exit 2 ;;
esac
`;

describe('scripts/roll-balancers.sh (make roll-balancers), against a stand-in docker', function () {
  // The script polls a replica that is not ready yet every 0.5 s.
  this.timeout(30_000);
  let dir = '';

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lcb-roll-'));
    await mkdir(join(dir, 'bin'));
    await mkdir(join(dir, 'state'));
    await writeFile(join(dir, 'bin', 'docker'), STUB, { mode: 0o755 });
    // Recorded, then slept: where the script waits is part of the order.
    await writeFile(join(dir, 'bin', 'sleep'), '#!/bin/bash\necho "sleep $*" >> "$CALLS"\nexec /bin/sleep "$@"\n', { mode: 0o755 });
    await writeFile(join(dir, 'calls.log'), '');
  });

  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Runs the script with `running` old replicas; the calls (without the CLI probe) and the containers left. */
  const roll = async (running: string[], env: Record<string, string> = {}, args = ['--build']) => {
    for (const id of running) await writeFile(join(dir, 'state', id), 'running\n');
    const r = spawnSync('bash', [SCRIPT, ...args], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { PATH: `${join(dir, 'bin')}:/usr/bin:/bin`, CALLS: join(dir, 'calls.log'), STATE: join(dir, 'state'), READY_AFTER: '2', ...env },
    });
    const calls = (await readFile(join(dir, 'calls.log'), 'utf8')).split('\n').filter((l) => l !== '' && l !== 'docker compose version');
    const left = new Map<string, string>();
    for (const id of (await readdir(join(dir, 'state'))).filter((f) => !f.startsWith('.'))) left.set(id, (await readFile(join(dir, 'state', id), 'utf8')).trim());
    return { status: r.status, stderr: r.stderr, calls, left };
  };

  it('builds, starts as many new replicas beside the old ones, waits until each is ready, then stops and removes the old ones one at a time', async () => {
    const { status, stderr, calls, left } = await roll(['old1', 'old2']);
    assert.equal(status, 0, stderr);
    const at = (call: string): number => {
      const i = calls.indexOf(call);
      assert.ok(i >= 0, `${call} in ${JSON.stringify(calls, null, 1)}`);
      return i;
    };
    const build = at('docker compose build balancer');
    const up = at('docker compose up -d --no-deps --no-recreate --scale balancer=4 balancer');
    assert.ok(build < up, 'the image is built before any new replica starts');
    const probes = calls.flatMap((c, i) => (c.startsWith('docker exec ') ? [i] : []));
    assert.deepEqual(calls.filter((c) => c.startsWith('docker exec ')).map((c) => c.split(' ')[2]), ['new3', 'new3', 'new4', 'new4'], 'each new replica probed until ready');
    assert.ok(calls.every((c) => !c.startsWith('docker exec ') || c.endsWith(' http-check 9001 /readyz')));
    const stops = [at('docker stop -t 20 old1'), at('docker rm old1'), at('docker stop -t 20 old2'), at('docker rm old2')];
    assert.ok(Math.max(...probes) < Math.min(...stops), 'no old replica stops before every new one is ready');
    // nginx may have left a booting replica out for fail_timeout (2 s) and re-resolves every 1 s:
    // stopping the old ones at once left it none to use (CI: 1 s of 502).
    const settle = at('sleep 3');
    assert.ok(Math.max(...probes) < settle && settle < Math.min(...stops), 'the new replicas serve 3 s beside the old ones before the first old one stops');
    assert.deepEqual(stops, [...stops].sort((a, b) => a - b), 'one old replica at a time: stopped and removed before the next');
    assert.deepEqual(Object.fromEntries(left), { new3: 'running', new4: 'running' });
    assert.match(stderr, /done: 2 balancer replicas replaced/);
  });

  it('without --build, starts from the image as it is', async () => {
    const { status, stderr, calls } = await roll(['old1'], {}, []);
    assert.equal(status, 0, stderr);
    assert.ok(!calls.some((c) => c.includes(' build')), JSON.stringify(calls));
    assert.ok(calls.includes('docker compose up -d --no-deps --no-recreate --scale balancer=2 balancer'));
  });

  it('a new replica that never gets ready stops the roll: the old replicas keep running', async () => {
    const { status, stderr, calls, left } = await roll(['old1', 'old2'], { READY_AFTER: '1000000', ROLL_WAIT_S: '1' });
    assert.equal(status, 1);
    assert.match(stderr, /new replica new3 not ready after 1s/);
    assert.ok(!calls.some((c) => c.startsWith('docker stop') || c.startsWith('docker rm')), JSON.stringify(calls));
    assert.equal(left.get('old1'), 'running');
    assert.equal(left.get('old2'), 'running');
  });

  it('refuses to roll when no balancer runs, and says what to do', async () => {
    const { status, stderr, calls } = await roll([]);
    assert.equal(status, 1);
    assert.match(stderr, /no running balancer container: start the cluster first \(make up\)/);
    assert.ok(!calls.some((c) => c.startsWith('docker compose up') || c.includes(' build')), JSON.stringify(calls));
  });

  it('ROLL_SETTLE_S sets that wait; a value that is not a whole number of seconds is refused before anything starts (exit 2)', async () => {
    const quick = await roll(['old1'], { ROLL_SETTLE_S: '0' }, []);
    assert.equal(quick.status, 0, quick.stderr);
    assert.ok(!quick.calls.some((c) => /^sleep [1-9]/.test(c)), JSON.stringify(quick.calls));
    await rm(join(dir, 'state'), { recursive: true });
    await mkdir(join(dir, 'state'));
    await writeFile(join(dir, 'calls.log'), '');
    const bad = await roll(['old1'], { ROLL_SETTLE_S: '2s' }, []);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /ROLL_SETTLE_S must be a whole number of seconds \(got '2s'\)/);
    assert.deepEqual(bad.calls.filter((c) => c.startsWith('docker')), [], 'nothing ran');
  });

  it('refuses an unknown argument (exit 2)', async () => {
    const { status, stderr } = await roll(['old1'], {}, ['--force']);
    assert.equal(status, 2);
    assert.match(stderr, /usage: .*roll-balancers\.sh \[--build\]/);
  });
});
