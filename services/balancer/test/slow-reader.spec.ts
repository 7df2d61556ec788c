import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { get } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { startBalancer, startOrigin, stopAfterEach, testConfig, waitFor } from './helpers.js';
import type { Origin, Running } from './helpers.js';

const MB = 1024 * 1024;
/** Far more than every socket and stream buffer between the origin and the client can hold. */
const TOTAL = 64 * MB;
const CHUNK_BYTES = 64 * 1024;

/** Chunk `i` of the body: its index, then a pattern that differs per chunk (so reordering shows). */
function chunk(i: number): Buffer {
  const b = Buffer.alloc(CHUNK_BYTES, i % 251);
  b.writeUInt32BE(i, 0);
  return b;
}

/** What the origin has done with the one download it serves. */
interface Upstream {
  written: number;
  /** True while its last write returned false and 'drain' has not come yet. */
  blocked: boolean;
  ended: boolean;
  sha256: string;
}

describe('a slow reader: backpressure reaches the upstream through the balancer', function () {
  this.timeout(60_000);
  let origins: Origin[] = [];
  let lb: Running | undefined;
  stopAfterEach(() => ({ lb, origins }));

  it('the upstream stops writing while the client pauses, and the whole body arrives intact when it reads again', async () => {
    const up: Upstream = { written: 0, blocked: false, ended: false, sha256: '' };
    const origin = await startOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(TOTAL) });
      const hash = createHash('sha256');
      let i = 0;
      const pump = (): void => {
        up.blocked = false;
        while (up.written < TOTAL) {
          const c = chunk(i++);
          hash.update(c);
          up.written += c.length;
          if (!res.write(c)) {
            up.blocked = true;
            res.once('drain', pump);
            return;
          }
        }
        up.sha256 = hash.digest('hex');
        res.end(() => (up.ended = true));
      };
      pump();
    });
    origins = [origin];
    lb = await startBalancer(testConfig([origin.port]));

    // The client reads the head and the first bytes, then stops reading (its socket is paused).
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      get(`${lb?.url ?? ''}/download`, resolve).on('error', reject);
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-length'], String(TOTAL));
    const hash = createHash('sha256');
    let received = 0;
    const onData = (c: Buffer): void => {
      hash.update(c);
      received += c.length;
    };
    res.on('data', onData);
    await waitFor(() => received > 0, 5000, 'the first body bytes');
    res.pause();
    const receivedAtPause = received;

    // While the client is paused, the origin's writes block and stay blocked: polled, with a
    // deadline, until it has sat blocked at the same byte count for 25 polls in a row. A proxy
    // that read ahead without limit would let the origin write all 64 MB and end instead.
    let stableFor = 0;
    let lastWritten = -1;
    await waitFor(
      () => {
        stableFor = up.blocked && up.written === lastWritten ? stableFor + 1 : 0;
        lastWritten = up.written;
        return stableFor >= 25 || up.ended;
      },
      20_000,
      'the upstream to block on a full pipe',
    );
    assert.equal(up.ended, false, 'the upstream wrote the whole body while the client read nothing');
    assert.ok(up.blocked, 'the upstream is waiting for drain');
    assert.ok(up.written < TOTAL / 2, `the upstream wrote ${(up.written / MB).toFixed(1)} of ${TOTAL / MB} MB while the client was paused`);
    assert.equal(received, receivedAtPause, 'the paused client received nothing meanwhile');
    assert.equal(lb.balancer.registry.inFlight(), 1, 'the download is still in flight');
    console.log(`      upstream blocked after ${(up.written / MB).toFixed(1)} MB; client had ${(receivedAtPause / MB).toFixed(1)} MB at pause`);

    // Reading again: everything arrives, byte for byte, and the upstream finishes.
    const ended = new Promise<void>((resolve, reject) => {
      res.on('end', resolve);
      res.on('error', reject);
    });
    res.resume();
    await ended;
    assert.equal(received, TOTAL);
    await waitFor(() => up.ended, 5000, 'the upstream to end its response');
    assert.equal(hash.digest('hex'), up.sha256, 'the body arrived intact and in order');
    const running = lb;
    await waitFor(() => running.balancer.registry.inFlight() === 0, 2000, 'the count released');
  });
});
