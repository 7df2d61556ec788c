/**
 * End-to-end tests of the Docker Compose cluster: one real cluster (own project name, free ports on
 * 127.0.0.1; two active balancer replicas sharing their counts), built and started once, torn down
 * with `down -v --remove-orphans` even on failure.
 * Suites run in this order; each first waits for the replica count it needs.
 */
import { BALANCER_REPLICAS, createCluster, type Cluster } from './lib/cluster.js';
import { activeActiveSuite, sharedCountsSuite } from './suites/active-active.js';
import { balancerModesSuite } from './suites/balancer-modes.js';
import { browserSuite } from './suites/browser.js';
import { labSuite } from './suites/lab.js';
import { leastConnectionsSuite } from './suites/least-connections.js';
import { prometheusSuite } from './suites/prometheus.js';
import { trafficSuite } from './suites/traffic.js';
import { underChangeSuite } from './suites/under-change.js';

describe('Compose cluster (nginx, active-active balancers, backends, Prometheus)', function () {
  let cluster: Cluster | undefined;
  const current = (): Cluster => {
    if (!cluster) throw new Error('the cluster did not start');
    return cluster;
  };

  // Ctrl-C or a CI timeout must not leave the project's containers running: remove them, then exit.
  // `on`, not `once`: mocha's parent forwards SIGINT and SIGTERM on top of the terminal's SIGINT,
  // and a signal arriving without a listener would kill the process before `down` ran.
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n      [compose] ${signal}: removing the cluster before exiting`);
    void (cluster?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  };

  before(async function () {
    // A cold build on a new machine includes `npm ci` of the monorepo in the image.
    this.timeout(20 * 60_000);
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
    cluster = await createCluster();
    await cluster.start(4);
  });

  after(async function () {
    this.timeout(5 * 60_000);
    await cluster?.stop();
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    if (cluster) console.log(`      [compose] figures: ${JSON.stringify(cluster.figures)}`);
  });

  trafficSuite(current);
  leastConnectionsSuite(current);
  activeActiveSuite(current, BALANCER_REPLICAS);
  sharedCountsSuite(current);
  prometheusSuite(current);
  browserSuite(current);
  labSuite(current);
  balancerModesSuite(current);
  underChangeSuite(current);
});
