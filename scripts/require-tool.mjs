// The one way a test asks for an external tool (promtool, nginx, haproxy, chromium, wrk, make).
//
// Outside CI a missing tool skips the test with a visible reason (printed once per tool), so a
// developer without Debian's packages still gets a green run of everything else. Under CI (env
// `CI` set to anything but "" / "0" / "false"; .ci/run exports CI=1) a missing tool FAILS the
// test: CI installs every tool, so a missing one means the run would otherwise pass without
// checking what it claims to check.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Whether this run is CI: `CI` set and not "", "0" or "false". */
export function underCi(env = process.env) {
  const v = env.CI;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

/** Where each tool comes from, for the message. */
const INSTALL = {
  promtool: 'apt-get install prometheus',
  nginx: 'apt-get install nginx',
  haproxy: 'apt-get install haproxy',
  chromium: 'apt-get install chromium fonts-liberation (or set CHROMIUM_PATH)',
  wrk: 'apt-get install wrk',
  make: 'apt-get install make',
};

/** The first executable among `candidates` (absolute paths, or names looked up on PATH). */
export function findExecutable(candidates, env = process.env) {
  const dirs = (env.PATH ?? '').split(delimiter).filter(Boolean).concat(['/usr/sbin', '/usr/local/sbin', '/sbin']);
  for (const c of candidates) {
    const paths = c.includes('/') ? [c] : dirs.map((d) => join(d, c));
    for (const p of paths) {
      try {
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

/** The default places of each tool; chromium honours CHROMIUM_PATH as the launch code does. */
function candidatesOf(tool, env) {
  if (tool === 'chromium') return env.CHROMIUM_PATH ? [env.CHROMIUM_PATH] : ['/usr/bin/chromium', 'chromium'];
  return [tool];
}

/** How each tool is asked whether it runs (nginx and haproxy have no --version). */
const PROBE = { nginx: ['-v'], haproxy: ['-v'], wrk: ['-v'] };

const warned = new Set();

/**
 * The path of `tool`, after checking that it runs (`tool --version`, or `probeArgs`). When it is
 * missing: under CI throws (the test fails, naming the tool and how to install it); otherwise
 * prints why once (with `log`) and skips `ctx` (a mocha test or hook context), which throws mocha's Pending.
 */
export function requireTool(ctx, tool, { env = process.env, probeArgs = PROBE[tool] ?? ['--version'], log = console.warn } = {}) {
  const path = findExecutable(candidatesOf(tool, env), env);
  let problem;
  if (path === undefined) problem = 'is not installed';
  else {
    const out = spawnSync(path, probeArgs, { stdio: 'ignore', timeout: 20_000 });
    if (out.error || (out.status !== 0 && tool !== 'wrk')) problem = `(${path}) does not run: ${out.error?.message ?? `\`${probeArgs.join(' ')}\` exit ${out.status}`}`;
  }
  if (problem === undefined) return path;
  const how = INSTALL[tool] ?? `install ${tool}`;
  if (underCi(env)) throw new Error(`${tool} ${problem}, and CI must not skip tests that need it: ${how}`);
  if (!warned.has(tool)) {
    warned.add(tool);
    log(`    SKIPPED: ${tool} ${problem} (${how}); under CI this fails`);
  }
  return ctx.skip();
}
