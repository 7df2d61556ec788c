// The Node 22 binary for the bench targets that run the balancer on worker threads.
//
// The balancer's `--workers N` shares one port between N threads through `reusePort`, which needs
// Node >= 22.12; the container runs Node 22, but a developer machine may have an older node (this
// one had 20), where the balancer falls back to one thread. The binary comes from
// scripts/node22.mjs, which the balancer's tests use too: the official linux-x64 build from the npm
// registry, fetched with `npm pack` on first use into .cache/node22 at the repository root
// (gitignored) and reused after that; NODE22=/path/to/node uses a given binary instead.
import { spawnSync } from 'node:child_process';
import { relative } from 'node:path';
import { node22Runtime } from '../scripts/node22.mjs';

/**
 * `{ path, version }` of Node 22 for `wanted` (targets that need it; [] = none, returns null),
 * after checking that the built balancer at `balancerMain` has the --workers flag: without it the
 * balancer exits 2 on the flag, and every such run would fail the same way, only later and less
 * clearly. Throws an Error whose message says what to do, naming the targets to keep (`others`).
 */
export function node22ForWorkerTargets({ wanted, others, balancerMain, env = process.env, log = console.log }) {
  if (wanted.length === 0) return null;
  let runtime;
  try {
    runtime = node22Runtime({ env, log: (line) => { log(`bench: ${line}`); } });
  } catch (err) {
    throw new Error(`${err.message}\nOr leave ${wanted.join(' and ')} out: ${others}`, { cause: err });
  }
  const help = spawnSync(runtime.path, [balancerMain, '--help'], { encoding: 'utf8', timeout: 10_000 });
  if (!/^\s*--workers\b/m.test(help.stdout ?? '')) {
    throw new Error(`${relative(process.cwd(), balancerMain)} has no --workers flag (its --help does not list it), needed by ${wanted.join(' and ')}.\n`
      + `Rebuild it (npm run build -w @lcb/balancer) from a tree that has the flag, or leave them out: ${others}`);
  }
  return runtime;
}
