import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import request from 'supertest';
import { createApp } from '../src/app.js';
import type { ErrorBody } from '../src/errors.js';
import { createImages } from '../src/images.js';
import { createLogger } from '../src/logger.js';
import { quiet, recordDelays, testConfig } from './helpers.js';

const images = createImages();

function app(overrides = {}) {
  return createApp(testConfig(overrides), { logger: quiet, images });
}

describe('HTTP routes', () => {
  const backend = app({ id: 'b-7' });
  const server = backend.app.callback();
  after(() => {
    backend.stop();
  });

  it('serves each image as image/png with its length', async () => {
    for (let id = 1; id <= 4; id++) {
      const res = await request(server).get(`/images/${id}`).buffer(true).expect(200);
      assert.equal(res.headers['content-type'], 'image/png');
      assert.equal(res.headers['content-length'], String(images[id - 1]?.length));
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.ok(Buffer.isBuffer(res.body) && res.body.equals(images[id - 1] ?? Buffer.alloc(0)), `image ${id} bytes`);
    }
  });

  it('ignores query strings', async () => {
    await request(server).get('/images/2?nocache=1764081000000').expect(200).expect('Content-Type', 'image/png');
  });

  it('?delayScale= shortens one request\'s delay (0 to 1) and refuses anything else with 400 BAD_REQUEST', async () => {
    const slow = app({ delaysMs: [5000, 5000, 5000, 5000] });
    try {
      const handler = slow.app.callback();
      const delays = recordDelays(slow);
      await request(handler).get('/images/1?delayScale=0.001').expect(200).expect('Content-Type', 'image/png');
      delays.restore();
      assert.deepEqual(delays.started, [5], '5 s × 0.001: the request waited on a 5 ms timer');
      for (const bad of ['2', '1.5', '-0.1', 'abc', '', '1e-3', '0.1&delayScale=0.2']) {
        const res = await request(handler).get(`/images/1?delayScale=${bad}`).expect(400).expect('Content-Type', /application\/json/);
        assert.equal((res.body as ErrorBody).error, 'BAD_REQUEST', bad);
      }
    } finally {
      slow.stop();
    }
  });

  it('answers HEAD with the headers only', async () => {
    const res = await request(server).head('/images/3').expect(200);
    assert.equal(res.headers['content-length'], String(images[2]?.length));
    assert.equal(res.headers['x-backend-id'], 'b-7');
  });

  for (const id of ['0', '5', '42', '12345678901234567890']) {
    it(`answers unknown id ${id} with 404 IMAGE_NOT_FOUND`, async () => {
      const res = await request(server).get(`/images/${id}`).expect(404).expect('Content-Type', /application\/json/);
      assert.equal((res.body as ErrorBody).error, 'IMAGE_NOT_FOUND');
      assert.equal(typeof (res.body as ErrorBody).message, 'string');
    });
  }

  for (const id of ['abc', '1.5', '-1', '%20', '1e0', '0x1', '%E0%A4%A', '+1']) {
    it(`answers malformed id ${id} with 400 BAD_IMAGE_ID`, async () => {
      const res = await request(server).get(`/images/${id}`).expect(400).expect('Content-Type', /application\/json/);
      assert.equal((res.body as ErrorBody).error, 'BAD_IMAGE_ID');
    });
  }

  it('answers unknown routes with a JSON 404', async () => {
    const res = await request(server).get('/nope').expect(404).expect('Content-Type', /application\/json/);
    assert.deepEqual(res.body, { error: 'NOT_FOUND', message: 'GET /nope: Not Found' });
  });

  it('answers other methods on an image with a JSON 405 and Allow', async () => {
    const res = await request(server).post('/images/1').expect(405).expect('Content-Type', /application\/json/);
    assert.equal((res.body as ErrorBody).error, 'METHOD_NOT_ALLOWED');
    assert.match(String(res.headers.allow), /GET/);
  });

  it('fails /healthz with 503 once shutdown began, and still serves images', async () => {
    const stopping = app({ id: 'b-stop', delayScale: 0 });
    const handler = stopping.app.callback();
    await request(handler).get('/healthz').expect(200);
    stopping.beginShutdown();
    const res = await request(handler).get('/healthz').expect(503);
    assert.deepEqual(res.body, { status: 'stopping' });
    await request(handler).get('/images/1').expect(200);
    stopping.stop();
  });

  it('answers /healthz', async () => {
    const res = await request(server).get('/healthz').expect(200);
    assert.deepEqual(res.body, { status: 'ok' });
  });

  it('puts X-Backend-Id and open CORS on every response', async () => {
    const cases: [string, string, number][] = [
      ['get', '/images/1', 200],
      ['get', '/images/9', 404],
      ['get', '/images/x', 400],
      ['get', '/nope', 404],
      ['post', '/images/1', 405],
      ['get', '/healthz', 200],
      ['get', '/info', 200],
      ['get', '/metrics', 200],
      ['options', '/images/1', 204],
    ];
    for (const [method, path, status] of cases) {
      const res = await request(server)[method as 'get'](path).set('Origin', 'http://elsewhere.example').expect(status);
      assert.equal(res.headers['x-backend-id'], 'b-7', `${method} ${path}`);
      assert.equal(res.headers['access-control-allow-origin'], '*', `${method} ${path}`);
      assert.equal(res.headers['access-control-expose-headers'], 'X-Backend-Id', `${method} ${path}`);
    }
  });

  it('answers a CORS preflight with 204, methods and the requested headers', async () => {
    const res = await request(server)
      .options('/images/4')
      .set('Origin', 'http://elsewhere.example')
      .set('Access-Control-Request-Method', 'GET')
      .set('Access-Control-Request-Headers', 'x-trace, content-type')
      .expect(204);
    assert.equal(res.headers['access-control-allow-methods'], 'GET, HEAD, OPTIONS');
    assert.equal(res.headers['access-control-allow-headers'], 'x-trace, content-type');
    assert.equal(res.headers['access-control-allow-origin'], '*');
    assert.match(String(res.headers.vary), /Access-Control-Request-Headers/);
  });

  it('does not echo a malformed preflight header list', async () => {
    const res = await request(server).options('/images/1').set('Access-Control-Request-Headers', 'a b; c').expect(204);
    assert.equal(res.headers['access-control-allow-headers'], 'Content-Type');
  });
});

describe('GET /info', () => {
  it('reports id, in-flight, served and uptime', async () => {
    let clock = 1000;
    const backend = createApp(testConfig({ id: 'info-1' }), { logger: quiet, images, now: () => clock });
    const server = backend.app.callback();
    let res = await request(server).get('/info').expect(200);
    assert.deepEqual(res.body, { id: 'info-1', inFlight: 0, served: 0, uptimeSeconds: 0 });
    await request(server).get('/images/1').expect(200);
    await request(server).get('/images/4?x=1').expect(200);
    await request(server).get('/images/9').expect(404);
    await request(server).head('/images/2').expect(200);
    clock += 2500;
    res = await request(server).get('/info').expect(200);
    assert.deepEqual(res.body, { id: 'info-1', inFlight: 0, served: 2, uptimeSeconds: 2.5 });
    backend.stop();
  });
});

describe('errors inside the app', () => {
  function capture(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    return { lines, logger: createLogger('info', sink) };
  }

  it('turn into a JSON 500 with the backend headers, logged once', async () => {
    const { lines, logger } = capture();
    let calls = 0;
    // The clock works for the app's start, then breaks: /info fails inside a route.
    const now = (): number => {
      calls += 1;
      if (calls > 1) throw new Error('clock broke');
      return 0;
    };
    const backend = createApp(testConfig({ id: 'err-1' }), { logger, images, now });
    const res = await request(backend.app.callback()).get('/info').expect(500);
    assert.deepEqual(res.body, { error: 'INTERNAL', message: 'internal error' });
    assert.equal(res.headers['x-backend-id'], 'err-1');
    assert.equal(res.headers['access-control-allow-origin'], '*');
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /"msg":"request failed"/);
    assert.match(lines[0] ?? '', /clock broke/);
    backend.stop();
  });

  it('log app errors except a client going away', () => {
    const { lines, logger } = capture();
    const backend = createApp(testConfig(), { logger, images });
    for (const code of ['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'EPIPE', 'ECONNABORTED']) {
      backend.app.emit('error', Object.assign(new Error(code), { code }));
    }
    assert.equal(lines.length, 0, lines.join(''));
    backend.app.emit('error', Object.assign(new Error('disk on fire'), { code: 'EIO' }));
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /disk on fire/);
    backend.stop();
  });
});
