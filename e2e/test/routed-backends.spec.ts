/**
 * waitForRoutedBackends (e2e/lib/routed-backends.ts), the "N backends, all routed" wait both
 * harnesses' waitForBackends are, on made-up containers and Snapshots: no Docker needed.
 */
import assert from 'node:assert/strict';
import type { Snapshot, UpstreamView } from '../lib/balancer-api.js';
import type { ContainerInfo } from '../lib/docker-inspect.js';
import { waitForRoutedBackends, type RoutingSources } from '../lib/routed-backends.js';

const replica = (ip: string, extra: Partial<ContainerInfo> = {}): ContainerInfo => ({
  id: ip,
  hostname: ip,
  ip,
  status: 'running',
  health: 'healthy',
  firstPassingProbeAt: undefined,
  labels: {},
  ...extra,
});

const view = (available: readonly string[], down: readonly string[] = []): Snapshot => {
  const upstream = (id: string, up: boolean): UpstreamView => ({ id, weight: 1, inFlight: 0, inFlightCluster: 0, requests: 0, errors: 0, state: up ? 'up' : 'down', available: up, source: 'dns' });
  return {
    time: 0,
    instance: 'lb',
    tieBreak: 'latency',
    explain: false,
    totals: { requests: 0, inFlight: 0, errors: 0 },
    imbalance: 0,
    upstreams: [...available.map((id) => upstream(id, true)), ...down.map((id) => upstream(id, false))],
    decisions: [],
    peers: [],
  };
};

/** Panic mode: no upstream passes its checks, and the balancer spreads over all of them anyway. */
const panicView = (ids: readonly string[]): Snapshot => ({
  ...view([]),
  upstreams: ids.map((id) => ({ id, weight: 1, inFlight: 0, inFlightCluster: 0, requests: 0, errors: 0, state: 'down', available: true, source: 'dns' })),
});

/** Sources that answer from `states`, one a poll (each poll reads the backends first), staying on the last. */
function scripted(states: { backends: ContainerInfo[]; views: Snapshot[] | undefined }[], requireHealthy: boolean): RoutingSources<ContainerInfo> & { polls: () => number; viewReads: () => number } {
  let polls = 0;
  let viewReads = 0;
  const current = () => states[Math.min(polls, states.length) - 1] ?? { backends: [], views: undefined };
  return {
    requireHealthy,
    backends: () => {
      polls++;
      return Promise.resolve(current().backends);
    },
    views: () => {
      viewReads++;
      return Promise.resolve(current().views);
    },
    polls: () => polls,
    viewReads: () => viewReads,
  };
}

const options = { what: 'the test backends', timeoutMs: 2_000, intervalMs: 1 };

describe('waitForRoutedBackends: N running backends, every view routing to exactly them', () => {
  it('returns the running replicas once every view has exactly their addresses available', async () => {
    const a = replica('10.0.0.2');
    const b = replica('10.0.0.3');
    const gone = replica('10.0.0.4', { status: 'exited' });
    const sources = scripted(
      [
        { backends: [a, b, gone], views: [view(['10.0.0.2:8002']), view(['10.0.0.2:8002', '10.0.0.3:8002'])] },
        { backends: [a, b, gone], views: [view(['10.0.0.3:8002', '10.0.0.2:8002'], ['10.0.0.4:8002']), view(['10.0.0.2:8002', '10.0.0.3:8002'])] },
      ],
      false,
    );
    assert.deepEqual(await waitForRoutedBackends(2, sources, options), [a, b]);
    assert.equal(sources.polls(), 2, 'the first poll had one view short of a replica');
  });

  it('waits while a view is missing, a replica has no address, or (where required) is not healthy', async () => {
    const ids = ['10.0.0.2:8002', '10.0.0.3:8002'];
    const healthy = [replica('10.0.0.2'), replica('10.0.0.3')];
    const starting = [replica('10.0.0.2'), replica('10.0.0.3', { health: 'starting' })];
    const noAddress = [replica('10.0.0.2'), { ...replica('10.0.0.3'), ip: undefined }];
    const required = scripted(
      [
        { backends: healthy, views: undefined },
        { backends: starting, views: [view(ids)] },
        { backends: healthy, views: [view(ids)] },
      ],
      true,
    );
    assert.deepEqual(await waitForRoutedBackends(2, required, options), healthy);
    assert.equal(required.polls(), 3);
    assert.equal(required.viewReads(), 2, 'the views are read only once the replicas count: not at the poll that saw one starting');
    assert.deepEqual(await waitForRoutedBackends(2, scripted([{ backends: starting, views: [view(ids)] }], false), options), starting, 'health is not required');
    await assert.rejects(waitForRoutedBackends(2, scripted([{ backends: noAddress, views: [view(ids)] }], false), { ...options, timeoutMs: 50 }), /waiting for the test backends/);
  });

  it('does not count the panic set: available upstreams that are down (a recreated replica at its predecessor\'s address, not listening yet)', async () => {
    const ids = ['10.0.0.2:8002', '10.0.0.3:8002'];
    const running = [replica('10.0.0.2'), replica('10.0.0.3')];
    const sources = scripted(
      [
        { backends: running, views: [panicView(ids), panicView(ids)] },
        { backends: running, views: [view(ids), panicView(ids)] },
        { backends: running, views: [view(ids), view(ids)] },
      ],
      false,
    );
    assert.deepEqual(await waitForRoutedBackends(2, sources, options), running);
    assert.equal(sources.polls(), 3, 'routed only once both views have both up');
  });

  it('where the sources can ask the replicas, waits until every one answers, before reading the views', async () => {
    const running = [replica('10.0.0.2'), replica('10.0.0.3')];
    const ids = ['10.0.0.2:8002', '10.0.0.3:8002'];
    const asked: string[] = [];
    const base = scripted([{ backends: running, views: [view(ids)] }], false);
    const sources = {
      ...base,
      // 10.0.0.3 answers from its third question on (a process still starting before).
      answers: (r: ContainerInfo) => {
        asked.push(r.hostname);
        return Promise.resolve(r.hostname !== '10.0.0.3' || asked.filter((h) => h === '10.0.0.3').length >= 3);
      },
    };
    assert.deepEqual(await waitForRoutedBackends(2, sources, options), running);
    assert.equal(base.polls(), 3);
    assert.equal(base.viewReads(), 1, 'the views are read only once every replica answered');
  });

  it('fails after the deadline, naming what it waited for, when the count never matches', async () => {
    const sources = scripted([{ backends: [replica('10.0.0.2')], views: [view(['10.0.0.2:8002'])] }], false);
    await assert.rejects(waitForRoutedBackends(2, sources, { ...options, timeoutMs: 50 }), /timed out after 50 ms waiting for the test backends/);
  });
});
