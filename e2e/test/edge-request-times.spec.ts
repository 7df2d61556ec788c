/** The Compose suite's reading of nginx's access log (e2e/test-compose/lib/edge-request-times.ts), without Docker. */
import assert from 'node:assert/strict';
import { parseEdgeLine } from '../test-compose/lib/edge-request-times.js';

describe("nginx's request time from its access log", () => {
  it('reads the end time and rt of an image request in nginx/nginx.conf\'s format', () => {
    const line = 'frontend_1    | 172.18.0.1 - [06/Dec/2026:09:01:34 +0000] "GET /images/1 HTTP/1.1" 200 1534 rt=0.317 uct=0.000 urt=0.316 ua="172.18.0.6:8001" "-"';
    assert.deepEqual(parseEdgeLine(line), { endedAt: Date.parse('2026-12-06T09:01:34Z'), ms: 317 });
  });

  it('honours the time zone nginx logged', () => {
    const parsed = parseEdgeLine('10.0.0.1 - [06/Dec/2026:10:01:34 +0100] "GET /images/42 HTTP/1.1" 404 40 rt=1.250 uct=- urt=- ua="-" "-"');
    assert.deepEqual(parsed, { endedAt: Date.parse('2026-12-06T09:01:34Z'), ms: 1250 });
  });

  it('skips what is not an image request', () => {
    assert.equal(parseEdgeLine('172.18.0.1 - [06/Dec/2026:09:01:34 +0000] "GET /api/upstreams HTTP/1.1" 200 10 rt=0.001 uct=0.000 urt=0.001 ua="x" "-"'), undefined);
    assert.equal(parseEdgeLine('2026/12/06 09:01:34 [notice] 1#1: signal process started'), undefined);
  });
});
