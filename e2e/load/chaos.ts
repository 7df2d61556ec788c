/**
 * `make chaos`: the events of the Compose end-to-end suite, run against the cluster you started
 * with `make up` (it changes it: scales the backends, restarts one balancer replica and rolls them
 * all onto a rebuilt image, stalls and kills a replica, then scales back), and the table of what
 * users saw. Traffic goes to
 * 127.0.0.1 (nginx) and to the project's own containers only.
 *
 * The stream mixes /images/1..4 and knows what each takes on this cluster (the backends' delays,
 * read from their containers), so a request counts as slow only beyond its own image's delay:
 * on a default cluster (scale 1) every request takes 1-10 s and none of that is the event's doing.
 *
 *   npx tsx e2e/load/chaos.ts [--rate N] [--events scale-up,scale-down,restart,upgrade,stall,kill]
 */
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { createBalancers } from '../test-compose/lib/balancers.js';
import { REPO_ROOT } from '../test-compose/lib/cluster.js';
import { createCompose } from '../test-compose/lib/compose.js';
import {
  eventTable,
  killReplicaEvent,
  restartBalancerEvent,
  scaleEvent,
  stallReplicaEvent,
  upgradeBalancerEvent,
  type ChaosCluster,
  type EventOutcome,
} from './events.js';
import { describeDelays, MIXED_IMAGES, readBackendDelays } from './delays.js';
import { SLOW_MS } from './open-loop.js';
import { describeSummary, ms } from './report.js';

const EVENTS = ['scale-up', 'scale-down', 'restart', 'upgrade', 'stall', 'kill'] as const;
type EventName = (typeof EVENTS)[number];

const usage = `usage: chaos [--rate N] [--events ${EVENTS.join(',')}]`;
let options;
try {
  options = parseArgs({ options: { rate: { type: 'string', default: '200' }, events: { type: 'string', default: EVENTS.join(',') }, help: { type: 'boolean' } } }).values;
} catch (err) {
  console.error(`chaos: ${err instanceof Error ? err.message : String(err)}\n${usage}`);
  process.exit(2);
}
if (options.help) {
  console.log(usage);
  process.exit(0);
}
const rate = Number(options.rate);
const chosen = options.events.split(',').map((e) => e.trim()) as EventName[];
const unknown = chosen.filter((e) => !EVENTS.includes(e));
if (!Number.isInteger(rate) || rate < 1 || rate > 2000 || unknown.length > 0) {
  console.error(`chaos: ${unknown.length > 0 ? `unknown event ${unknown.join(', ')}` : `--rate must be a whole number 1-2000, got ${options.rate}`}\n${usage}`);
  process.exit(2);
}

// Compose's own default project name: the directory's name, lower case, letters and digits only.
const project = process.env.COMPOSE_PROJECT_NAME ?? basename(REPO_ROOT).toLowerCase().replace(/[^a-z0-9]/g, '');
const compose = await createCompose({ root: REPO_ROOT, project, env: {} });
const web = `http://127.0.0.1:${process.env.FRONTEND_PORT ?? '8080'}`;
// Read-only: chaos needs no admin token.
const balancers = createBalancers(compose, '');
const cluster: ChaosCluster = { web, compose, waitForBackends: (replicas, timeoutMs = 120_000) => balancers.waitForBackends(replicas, timeoutMs) };

const scaleTo = async (n: number): Promise<void> => {
  await compose.compose(['up', '-d', '--no-recreate', '--scale', `backend=${n}`, 'backend'], 300_000);
  await cluster.waitForBackends(n);
};

const settings = { rate, paths: MIXED_IMAGES };
const outcomes: EventOutcome[] = [];
console.log(`chaos: project ${project}, ${rate} GET/s open-loop through ${web}; events: ${chosen.join(', ')}`);
const delays = await readBackendDelays(compose).catch((err: unknown) => {
  console.error(`chaos: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
const backends = `backends: ${describeDelays(delays)} (found in ${delays.replicas} running backend containers)`;
const meanMs = delays.imageMs.reduce((a, b) => a + b, 0) / delays.imageMs.length;
console.log(backends);
console.log(`stream: ${MIXED_IMAGES.join(', ')} in turn, about ${Math.round((rate * meanMs) / 1000)} requests open at once; slow = more than ${ms(SLOW_MS)} beyond the image's delay`);
try {
  await scaleTo(4);
  for (const name of chosen) {
    let outcome: EventOutcome;
    if (name === 'scale-up') outcome = await scaleEvent(cluster, 4, 6, settings);
    else if (name === 'scale-down') {
      await scaleTo(6);
      outcome = await scaleEvent(cluster, 6, 2, settings);
    } else if (name === 'restart') outcome = await restartBalancerEvent(cluster, 4, settings);
    else if (name === 'upgrade') outcome = await upgradeBalancerEvent(cluster, 4, settings);
    else if (name === 'stall') outcome = await stallReplicaEvent(cluster, 4, { stallMs: 80, everyMs: 100, durationMs: 10_000 }, settings);
    else outcome = await killReplicaEvent(cluster, 4, settings);
    outcomes.push(outcome);
    console.log(`  ${outcome.name}: ${describeSummary(outcome.window)}`);
    await scaleTo(4);
  }
} finally {
  await balancers.close();
}
console.log(`\n${backends}\n${eventTable(outcomes)}`);
