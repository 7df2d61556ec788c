// The check for the bench targets that run the balancer on worker threads (balancer-w1/-wN).
//
// The balancer's `--workers N` shares one port between N threads through `reusePort`, which needs
// Node >= 22.12. Every target runs on the bench's own node (process.execPath): the project's Node
// is 24 (package.json engines, `make test` installs it when the machine's node is older, see
// scripts/ensure-node.sh), so no second Node is fetched for these any more.
import { spawnSync } from 'node:child_process';
import { relative } from 'node:path';

/** Node >= 22.12 (or 23.1): what `reusePort` needs. */
function supportsReusePort(version) {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/**
 * `{ path, version }` of the node that runs `wanted` (targets that need --workers; [] = none,
 * returns null), after checking that it has `reusePort` and that the built balancer at
 * `balancerMain` has the --workers flag. Throws an Error whose message says what to do, naming
 * the targets to keep (`others`).
 */
export function nodeForWorkerTargets({ wanted, others, balancerMain, execPath = process.execPath, version = process.version }) {
  if (wanted.length === 0) return null;
  // One thread (balancer-w1) runs on any Node: `--workers 1` keeps the data path on the main thread.
  const shared = wanted.filter((t) => t !== 'balancer-w1');
  if (shared.length > 0 && !supportsReusePort(version)) {
    throw new Error(`${shared.join(' and ')} need Node >= 22.12 (reusePort); this is ${version}.\n`
      + `Run the bench with the project's Node (make bench does: scripts/ensure-node.sh), or leave them out: ${others}`);
  }
  const help = spawnSync(execPath, [balancerMain, '--help'], { encoding: 'utf8', timeout: 10_000 });
  if (!/^\s*--workers\b/m.test(help.stdout ?? '')) {
    throw new Error(`${relative(process.cwd(), balancerMain)} has no --workers flag (its --help does not list it), needed by ${wanted.join(' and ')}.\n`
      + `Rebuild it (npm run build -w @lcb/balancer) from a tree that has the flag, or leave them out: ${others}`);
  }
  return { path: execPath, version };
}
