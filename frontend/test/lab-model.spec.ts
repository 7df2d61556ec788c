import assert from 'node:assert/strict';
import { BALANCER_MODES, LAB_OFF_TEXT, POLICIES, describeSharing, SCENARIOS, describeProgress, describeSettings, parseLabStatus, progressFraction, readLabAnswer, resultCells, scenarioKeyOf } from '../src/lab-model.js';

const result = {
  policy: 'least-connections', requests: 3000, errors: 2, dropped: 7, p50Ms: 1.234, p99Ms: 12.5, p999Ms: 40, maxMs: 60,
  badUpstream: 'b:2', badShare: 0.043, jain: 0.8766,
  upstreams: [{ id: 'a:1', requests: 2871, share: 0.957, errors: 2, maxInFlight: 3, meanInFlight: 0.4 }, { id: 'b:2', requests: 129, share: 0.043, errors: 0, maxInFlight: 1, meanInFlight: 0.25 }],
};

describe('lab model', () => {
  it('parses a status from /api/lab; rejects what is not one; skips malformed results', () => {
    const s = parseLabStatus({ state: 'running', kind: 'compare', progress: { policy: 'p2c', index: 4, of: 5, elapsedMs: 2500, durationMs: 5000, sent: 1, completed: 240, errors: 1 }, results: [result, { nope: 1 }], error: null });
    assert.ok(s);
    assert.equal(s.results.length, 1);
    assert.equal(s.progress?.policy, 'p2c');
    for (const bad of [null, {}, { state: 'exploded' }, 'done']) assert.equal(parseLabStatus(bad), undefined);
  });

  it('tells a balancer without the lab (404 LB_LAB_DISABLED) from a status and from any other failure; the notice names LB_LAB=1', () => {
    assert.equal(readLabAnswer(false, { error: 'LB_LAB_DISABLED', message: 'the algorithm lab is off' }), 'off');
    const idle = readLabAnswer(true, { state: 'idle', results: [] });
    assert.ok(idle !== undefined && idle !== 'off');
    assert.equal(idle.state, 'idle');
    for (const other of [{ error: 'LB_NOT_FOUND' }, undefined, '<html>502</html>']) assert.equal(readLabAnswer(false, other), undefined);
    assert.equal(readLabAnswer(true, { error: 'LB_LAB_DISABLED' }), undefined, 'an ok answer is a status or nothing');
    assert.match(LAB_OFF_TEXT, /LB_LAB=1/);
  });

  it('a results row: latencies, errors and dropped requests apart, the bad replica\'s share and load, Jain', () => {
    const s = parseLabStatus({ state: 'done', results: [result] });
    assert.ok(s?.results[0]);
    assert.deepEqual(resultCells(s.results[0]), ['least-connections', 'one', '1.2', '12.5', '40.0', '2', '7', '4.3 %', '1 / 0.25', '–', '0.877']);
    const healthy = parseLabStatus({ state: 'done', results: [{ ...result, badUpstream: null, badShare: null }] });
    assert.ok(healthy?.results[0]);
    assert.equal(resultCells(healthy.results[0])[7], '–');
  });

  it('a row names its balancers mode and the measured spread (issue 25); the form offers the three modes', () => {
    const s = parseLabStatus({ state: 'done', results: [{ ...result, balancers: 'two-sharing', spread: 1.234 }], spec: { rate: 2, durationMs: 60_000, balancers: 'two-isolated' } });
    assert.ok(s?.results[0]);
    const cells = resultCells(s.results[0]);
    assert.equal(cells[1], 'two-sharing');
    assert.equal(cells[9], '1.23');
    assert.equal(s.spec?.balancers, 'two-isolated');
    assert.deepEqual(BALANCER_MODES.map((m) => m.value), ['one', 'two-isolated', 'two-sharing']);
  });

  it('says whether this balancer shares its counts, with how many live peers and how old their reports are', () => {
    assert.equal(describeSharing(undefined, undefined), 'Count sharing: no peers (one balancer).');
    assert.equal(describeSharing(false, []), 'Count sharing: no peers (one balancer).');
    assert.equal(describeSharing(true, [{ state: 'live', ageMs: 12 }, { state: 'dropped', ageMs: null }]), 'Count sharing: on · 1 of 2 peers live (latest report 12 ms old at most).');
    assert.match(describeSharing(false, [{ state: 'live', ageMs: 3 }]), /^Count sharing: off \(this balancer picks on its own counts and sends none; PUT \/api\/peers turns it on\) · 1 of 1 peer live/);
  });

  it('says the settings a table came from: rate, duration, images, scenario and replica, cluster size, open requests', () => {
    const s = parseLabStatus({
      state: 'done', results: [result], cluster: { size: 4, upstreams: [] },
      spec: { rate: 300, durationMs: 5000, mix: [1], seed: 1, concurrency: 256, delayScale: 0.001, scenario: { upstream: 'b:2', fault: { extraLatencyMs: 50 } } },
      check: { expectedLatencyMs: 4.2, expectedOpen: 1.26, cap: 256, warnings: ['careful'] },
    });
    assert.ok(s);
    assert.equal(describeSettings(s), '300 req/s for 5 s · images at 0.001 × their delays · +50 ms latency on b:2 · 4 replicas · ~1.26 of at most 256 requests open');
    assert.deepEqual(s.check?.warnings, ['careful']);
    assert.equal(scenarioKeyOf(s.spec?.scenario?.fault), 'slow', 'the form can show it again');
    const own = parseLabStatus({ state: 'done', results: [], spec: { rate: 50, durationMs: 1500, concurrency: 256, delayScale: 1 } });
    assert.ok(own);
    assert.equal(describeSettings(own), "50 req/s for 1.5 s · the cluster's own image delays · all replicas healthy");
    assert.equal(scenarioKeyOf({ extraLatencyMs: 51 }), '');
    assert.equal(describeSettings({ ...own, spec: null }), '');
  });

  it('progress text and fraction across a comparison', () => {
    const running = parseLabStatus({ state: 'running', kind: 'compare', progress: { policy: 'p2c', index: 4, of: 5, elapsedMs: 2500, durationMs: 5000, completed: 240, errors: 1 }, results: [] });
    assert.ok(running);
    assert.equal(describeProgress(running), 'p2c (4 of 5): 2.5 of 5 s · 240 answered · 1 errors');
    const dropping = parseLabStatus({ state: 'running', kind: 'run', progress: { policy: 'random', index: 1, of: 1, elapsedMs: 1000, durationMs: 5000, completed: 240, errors: 0, dropped: 12 }, results: [] });
    assert.ok(dropping);
    assert.equal(describeProgress(dropping), 'random: 1.0 of 5 s · 240 answered · 0 errors · 12 dropped');
    assert.equal(progressFraction(running), 0.7);
    const warming = parseLabStatus({ state: 'running', kind: 'compare', progress: { policy: 'least-connections', index: 0, of: 5, elapsedMs: 400, durationMs: 1000, completed: 120, errors: 0, dropped: 0, warmUp: true }, results: [] });
    assert.ok(warming);
    assert.equal(describeProgress(warming), 'Warming up under least-connections, not measured: 0.4 of 1 s');
    assert.equal(progressFraction(warming), 0);
    const failed = parseLabStatus({ state: 'failed', error: 'boom', results: [] });
    assert.ok(failed);
    assert.equal(describeProgress(failed), 'Failed: boom');
    assert.equal(progressFraction(failed), 0);
  });

  it('the presets are faults the backend accepts; the policy list matches the balancer', () => {
    assert.deepEqual(SCENARIOS.slow?.fault, { extraLatencyMs: 50 });
    assert.deepEqual([...POLICIES], ['least-connections', 'round-robin', 'random', 'p2c', 'peak-ewma']);
  });
});
