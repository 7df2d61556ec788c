import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import request from 'supertest';
import { createApp } from '../src/app.js';
import { createImages } from '../src/images.js';
import { requireTool } from '../../../scripts/require-tool.mjs';
import { get, parseMetrics, quiet, sample, startBackend, testConfig, until } from './helpers.js';

const images = createImages();

describe('GET /metrics', () => {
  it('counts requests by route template and status, with durations', async () => {
    const backend = createApp(testConfig({ delaysMs: [30, 0, 0, 0] }), { logger: quiet, images });
    const server = backend.app.callback();
    await request(server).get('/images/1').expect(200);
    await request(server).get('/images/2?nocache=5').expect(200);
    await request(server).get('/images/2').expect(200);
    await request(server).get('/images/7').expect(404);
    await request(server).get('/images/abc').expect(400);
    await request(server).get('/no/such/route').expect(404);
    await request(server).options('/images/1').expect(204);
    const res = await request(server).get('/metrics').expect(200).expect('Content-Type', /^text\/plain/);
    const samples = parseMetrics(res.text);

    const total = (route: string, status: string) => sample(samples, 'backend_requests_total', { route, status });
    assert.equal(total('/images/:id', '200'), 3);
    assert.equal(total('/images/:id', '404'), 1);
    assert.equal(total('/images/:id', '400'), 1);
    assert.equal(total('unmatched', '404'), 1);
    assert.equal(total('preflight', '204'), 1);
    const count = (route: string) => sample(samples, 'backend_request_duration_seconds_count', { route });
    assert.equal(count('/images/:id'), 5);
    const sum = sample(samples, 'backend_request_duration_seconds_sum', { route: '/images/:id' }) ?? 0;
    assert.ok(sum >= 0.029, `duration sum ${sum} includes image 1's 30 ms delay`);
    assert.equal(sample(samples, 'backend_request_duration_seconds_bucket', { route: '/images/:id', le: '+Inf' }), 5);
    assert.equal(sample(samples, 'backend_in_flight_requests'), 0);

    // Bounded cardinality: raw URLs never become labels.
    const routes = new Set(samples.filter((s) => s.name.startsWith('backend_')).map((s) => s.labels.route).filter(Boolean));
    assert.deepEqual([...routes].sort(), ['/images/:id', 'preflight', 'unmatched']);
    // Node's default metrics are there too.
    assert.ok(sample(samples, 'process_cpu_user_seconds_total') !== undefined);
    assert.ok(sample(samples, 'nodejs_eventloop_lag_seconds') !== undefined);
    backend.stop();
  });

  it('shows image requests in flight at scrape time, and 499 for clients that left', async () => {
    const running = await startBackend(testConfig({ delaysMs: [5000, 5000, 5000, 5000] }));
    try {
      const abort = new AbortController();
      const pending = get(`${running.url}/images/3`, { signal: abort.signal });
      await until('the image to be in flight', () => running.backend.stats.inFlight === 1);
      let samples = parseMetrics((await get(`${running.url}/metrics`)).body.toString());
      assert.equal(sample(samples, 'backend_in_flight_requests'), 1);
      abort.abort();
      await assert.rejects(pending);
      await until('the image to end', () => running.backend.stats.inFlight === 0);
      samples = parseMetrics((await get(`${running.url}/metrics`)).body.toString());
      assert.equal(sample(samples, 'backend_in_flight_requests'), 0);
      assert.equal(sample(samples, 'backend_requests_total', { route: '/images/:id', status: '499' }), 1);
    } finally {
      await running.close();
    }
  });

  it('keeps one registry per app', async () => {
    const a = createApp(testConfig(), { logger: quiet, images });
    const b = createApp(testConfig(), { logger: quiet, images });
    await request(a.app.callback()).get('/images/1').expect(200);
    const bText = (await request(b.app.callback()).get('/metrics').expect(200)).text;
    assert.equal(sample(parseMetrics(bText), 'backend_requests_total', { route: '/images/:id' }), undefined);
    const aText = (await request(a.app.callback()).get('/metrics').expect(200)).text;
    assert.equal(sample(parseMetrics(aText), 'backend_requests_total', { route: '/images/:id', status: '200' }), 1);
    a.stop();
    b.stop();
  });

  it('passes promtool check metrics', async function () {
    const promtool = requireTool(this, 'promtool');
    const backend = createApp(testConfig(), { logger: quiet, images });
    await request(backend.app.callback()).get('/images/1').expect(200);
    const text = (await request(backend.app.callback()).get('/metrics').expect(200)).text;
    const check = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    // prom-client's nodejs_active_*_total gauges always trip this lint rule (see toolchain.md).
    const findings = `${check.stdout}${check.stderr}`
      .split('\n')
      .filter((line) => line.trim() !== '' && !/^nodejs_active_(handles|requests|resources)_total non-counter/.test(line));
    assert.deepEqual(findings, []);
    backend.stop();
  });
});
