/**
 * End-to-end tests of the cluster on a one-node Docker Swarm (`docker swarm init --advertise-addr
 * 127.0.0.1`), deployed with deploy/swarm/swarm.sh like `make swarm-up`: nginx, two active balancer
 * tasks on `tasks.backend` sharing their counts (`tasks.balancer`), backend tasks, Prometheus. Ports are published in host mode on free ports and
 * only 127.0.0.1 is sent traffic. Teardown (`swarm.sh down`: stack, swarm, docker_gwbridge, images)
 * runs even on failure, and is itself the last test.
 */
import assert from 'node:assert/strict';
import { activeActiveSuite } from '../test-compose/suites/active-active.js';
import { BALANCER_TASKS, createSwarmCluster, type SwarmCluster } from './lib/swarm.js';
import { k8sPodsSuite } from './suites/k8s-pods.js';
import { prometheusSuite } from './suites/prometheus.js';
import { rollingBalancerUpdateSuite, rollingUpdateSuite } from './suites/rolling-update.js';
import { scalingSuite } from './suites/scaling.js';
import { trafficSuite } from './suites/traffic.js';

// The rows (as in the Compose suite): 4 → 6 and 6 → 2 under 200 GET/s through nginx.
const START = 4;
const UP = 6;
const DOWN = 2;

describe('Swarm stack (nginx, active-active balancers on tasks.backend, backend tasks, Prometheus)', function () {
  let cluster: SwarmCluster | undefined;
  const current = (): SwarmCluster => {
    if (!cluster) throw new Error('the stack did not start');
    return cluster;
  };

  // Ctrl-C or a CI timeout must not leave a swarm behind: tear down, then exit (see the Compose spec).
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n      [swarm] ${signal}: removing the stack and leaving the swarm before exiting`);
    void (cluster?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  };

  before(async function () {
    // A cold build on a new machine includes `npm ci` of the monorepo in the images.
    this.timeout(20 * 60_000);
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
    cluster = await createSwarmCluster();
    await cluster.start(START);
  });

  after(async function () {
    this.timeout(5 * 60_000);
    const report = await cluster?.stop();
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    if (cluster) console.log(`      [swarm] figures: ${JSON.stringify(cluster.figures)}`);
    if (report && report.swarmState !== 'inactive') console.error(`      [swarm] teardown left the swarm ${report.swarmState}: ${JSON.stringify(report)}`);
  });

  trafficSuite(current, START);
  activeActiveSuite(current, BALANCER_TASKS);
  prometheusSuite(current, START);
  scalingSuite(current, START, UP, DOWN);
  rollingUpdateSuite(current, DOWN);
  rollingBalancerUpdateSuite(current, DOWN);
  k8sPodsSuite(current);

  describe('teardown', () => {
    it('removes the stack, leaves the swarm and removes every network and image it made', async function () {
      this.timeout(5 * 60_000);
      const report = await current().stop();
      assert.equal(report.error, undefined, 'swarm.sh down succeeded');
      assert.equal(report.swarmState, 'inactive', 'the node left the swarm');
      assert.deepEqual(report.containers, [], 'no container of the stack is left');
      assert.deepEqual(report.swarmNetworks, [], 'docker_gwbridge and ingress are gone');
      assert.deepEqual(report.newNetworks, [], 'no network the run made is left');
      assert.deepEqual(report.images, [], 'the lcb-*:e2e images are removed');
    });
  });
});
