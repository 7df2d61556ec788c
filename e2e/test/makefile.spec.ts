/**
 * The Docker targets need only Docker and the repository: run from a copy of the Makefile alone,
 * with a `docker` on PATH that records its calls, they call Compose and nothing else (no bootstrap
 * from outside the clone, no host change, no builder forced).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../scripts/cluster-lib.mjs';
import { requireTool } from '../../scripts/require-tool.mjs';

describe('Makefile Docker targets', () => {
  let dir = '';
  let calls = '';
  // Called by its path: the tests below give make a PATH with nothing but the docker stub.
  let makeBin = 'make';

  /** Runs `make <args>` in the lone copy; `docker` answers `info` and `compose version` unless told. */
  const make = (args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } =>
    spawnSync(makeBin, ['--no-print-directory', ...args], {
      cwd: dir,
      encoding: 'utf8',
      env: { PATH: `${join(dir, 'bin')}:/usr/bin:/bin`, HOME: dir, CALLS: calls, ...env },
    });

  before(async function () {
    makeBin = requireTool(this, 'make');
    dir = await mkdtemp(join(tmpdir(), 'lcb-make-'));
    calls = join(dir, 'calls.log');
    await copyFile(join(REPO_ROOT, 'Makefile'), join(dir, 'Makefile'));
    await mkdir(join(dir, 'bin'));
    await writeFile(
      join(dir, 'bin', 'docker'),
      '#!/bin/bash\necho "docker $*" >> "$CALLS"\n[ -z "${DOCKER_DOWN:-}" ] || [ "$1" != info ] || exit 1\nexit 0\n',
      { mode: 0o755 },
    );
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await writeFile(calls, '');
  });

  const compose = async (): Promise<string[]> =>
    (await readFile(calls, 'utf8')).split('\n').filter((l) => l !== '' && l !== 'docker info' && l !== 'docker compose version');

  it('up, ps, scale and down run Compose from a lone copy of the Makefile, and nothing else', async () => {
    for (const [args, expected] of [
      [['up', 'N=3'], 'docker compose up -d --build --scale backend=3'],
      [['ps'], 'docker compose ps'],
      [['scale', 'N=6'], 'docker compose up -d --no-recreate --scale backend=6 backend'],
      [['down'], 'docker compose down -v --remove-orphans'],
    ] as const) {
      await writeFile(calls, '');
      const r = make([...args]);
      assert.equal(r.status, 0, `make ${args.join(' ')}: ${r.stderr}`);
      assert.deepEqual(await compose(), [expected]);
    }
  });

  it('says what is missing when Docker does not answer, and runs nothing', async () => {
    const r = make(['up'], { DOCKER_DOWN: '1' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /Docker does not answer/);
    assert.deepEqual(await compose(), []);
  });

  it('make test runs in the node:24 image, on a read-only mount of the tree, when the machine has no npm', async () => {
    // PATH holds only the docker stub: no node, no npm (make and bash are called by their paths).
    const r = spawnSync(makeBin, ['--no-print-directory', 'test'], {
      cwd: dir,
      encoding: 'utf8',
      env: { PATH: join(dir, 'bin'), HOME: dir, CALLS: calls },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /no npm on this machine; running the tests in node:24-bookworm-slim/);
    const [run, ...rest] = await compose();
    assert.deepEqual(rest, []);
    assert.match(run ?? '', /^docker run --rm -v \S+:\/src:ro node:24-bookworm-slim bash -c .*npm ci .*npm run typecheck; npm run lint; npm run build; npm test$/);
  });

  it('make test says what it needs when there is neither npm nor Docker', () => {
    const r = spawnSync(makeBin, ['--no-print-directory', 'test'], {
      cwd: dir,
      encoding: 'utf8',
      env: { PATH: join(dir, 'bin'), HOME: dir, CALLS: calls, DOCKER_DOWN: '1' },
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /needs Node with npm \(any version; Node 24 is fetched\) or Docker/);
  });

  it('leaves the builder to the user and the host alone; the host tuning is its own target', async () => {
    const makefile = await readFile(join(REPO_ROOT, 'Makefile'), 'utf8');
    // Nothing outside the clone: no path that climbs out of it.
    assert.doesNotMatch(makefile, /\.\.\//);
    assert.doesNotMatch(makefile, /DOCKER_BUILDKIT/);
    const recipes = makefile.split(/\n(?=[a-z0-9-]+:)/);
    const tuning = recipes.filter((r) => r.includes('docker-daemon-cgroup'));
    assert.deepEqual(tuning.map((r) => r.split(':')[0]), ['host-docker-cgroup']);
    assert.match(tuning[0] ?? '', /## CHANGES THE HOST/);
  });
});
