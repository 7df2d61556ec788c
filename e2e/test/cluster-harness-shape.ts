/**
 * Compiled by `npm run typecheck` (tsc -b), never run: the build fails as soon as Compose's
 * Cluster or Swarm's SwarmCluster is no longer a ClusterHarness (cluster-harness.spec.ts checks
 * the declarations' side of it under `npm test`).
 */
import type { ClusterHarness } from '../lib/cluster-harness.js';
import type { createCluster } from '../test-compose/lib/cluster.js';
import type { createSwarmCluster } from '../test-swarm/lib/swarm.js';

type Harness<T extends ClusterHarness> = T;

/** What each platform's factory resolves with, held to the shared shape. */
export type CheckedHarnesses = [Harness<Awaited<ReturnType<typeof createCluster>>>, Harness<Awaited<ReturnType<typeof createSwarmCluster>>>];
