import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// What a running balancer loads of Node itself: nothing of Node's bundled undici (fetch,
// WebSocket) nor of its web streams, which an ES import of node:http or a Koa JSON body would
// load (see src/node-http.ts). Checked in a process of its own, where nothing else loads them:
// a balancer and one origin, an upstream request, and every kind of admin answer.
describe('runtime footprint: what a running balancer loads', () => {
  it('answers the data port and JSON, text and error admin routes without loading Node\'s bundled undici or web streams', () => {
    const server = fileURLToPath(new URL('../src/server.ts', import.meta.url));
    const config = fileURLToPath(new URL('../src/config.ts', import.meta.url));
    const script = `
      import { createRequire } from 'node:module';
      const require = createRequire(import.meta.url);
      const http = require('node:http');
      const { createBalancer } = await import(${JSON.stringify(server)});
      const { parseConfig } = await import(${JSON.stringify(config)});
      const origin = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok'); });
      await new Promise((resolve) => origin.listen(0, '127.0.0.1', resolve));
      const parsed = parseConfig(['--port', '0', '--admin-port', '0', '--log-level', 'silent', '127.0.0.1:' + origin.address().port], {});
      const balancer = createBalancer(parsed.config);
      const { data, admin } = await balancer.start();
      const get = (port, path) => new Promise((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c) => { body += c; });
          res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body }));
        }).on('error', reject);
      });
      const answers = [];
      for (const [port, path] of [[data.port, '/'], [admin.port, '/readyz'], [admin.port, '/api/upstreams'], [admin.port, '/metrics'], [admin.port, '/nope'], [admin.port, '/api/lab']]) {
        const { status, type, body } = await get(port, path);
        answers.push({ path, status, json: type?.startsWith('application/json') === true ? Object.keys(JSON.parse(body)).length > 0 : null });
      }
      await balancer.stop();
      await new Promise((resolve) => origin.close(resolve));
      const loaded = process.moduleLoadList.filter((m) => /deps\\/undici|webstreams/.test(m));
      console.log(JSON.stringify({ answers, loaded }));
    `;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    const { answers, loaded } = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { answers: unknown[]; loaded: string[] };
    assert.deepEqual(answers, [
      { path: '/', status: 200, json: null },
      { path: '/readyz', status: 200, json: true },
      { path: '/api/upstreams', status: 200, json: true },
      { path: '/metrics', status: 200, json: null },
      { path: '/nope', status: 404, json: true },
      { path: '/api/lab', status: 404, json: true },
    ]);
    assert.deepEqual(loaded, []);
  });
});
