import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { readBodyWithLimit } from '../src/body-limit.js';

/** A request-like stream: the reader uses only the headers and the stream events. */
function request(headers: Record<string, string> = {}): PassThrough & IncomingMessage {
  return Object.assign(new PassThrough(), { headers }) as unknown as PassThrough & IncomingMessage;
}

const tooLarge = (): Error => new Error('too large');

describe('readBodyWithLimit', () => {
  it('resolves with the whole body when it fits, the limit included', async () => {
    const req = request();
    const read = readBodyWithLimit(req, 6, tooLarge);
    req.write('abc');
    req.end('def');
    assert.equal((await read).toString('utf8'), 'abcdef');
  });

  it('an empty body is an empty buffer', async () => {
    const req = request();
    const read = readBodyWithLimit(req, 6, tooLarge);
    req.end();
    assert.equal((await read).length, 0);
  });

  it("rejects with the caller's error when Content-Length declares more than the limit, reading nothing", async () => {
    const req = request({ 'content-length': '7' });
    await assert.rejects(readBodyWithLimit(req, 6, tooLarge), /too large/);
  });

  it('rejects when the bytes read pass the limit, and keeps discarding the rest', async () => {
    const req = request();
    const read = readBodyWithLimit(req, 6, tooLarge);
    req.write('abcd');
    req.write('efgh');
    await assert.rejects(read, /too large/);
    assert.equal(req.listenerCount('data'), 0);
    assert.equal(req.readableFlowing, true);
    assert.equal(req.destroyed, false);
  });

  it('rejects with the stream error', async () => {
    const req = request();
    const read = readBodyWithLimit(req, 6, tooLarge);
    req.destroy(new Error('reset'));
    await assert.rejects(read, /reset/);
  });
});
