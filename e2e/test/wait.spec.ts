/** waitFor (e2e/lib/wait.ts): errors are "not yet" until the deadline, except a fatalError. */
import assert from 'node:assert/strict';
import { fatalError, waitFor } from '../lib/wait.js';

describe('waitFor: what a throwing probe means', () => {
  it('retries an ordinary error, and names the last one at the deadline', async () => {
    let calls = 0;
    const value = await waitFor(() => (++calls < 3 ? Promise.reject(new Error('not up yet')) : Promise.resolve('up')), { what: 'the thing', timeoutMs: 5_000, intervalMs: 1 });
    assert.equal(value, 'up');
    assert.equal(calls, 3);
    await assert.rejects(waitFor(() => Promise.reject(new Error('still down')), { what: 'the thing', timeoutMs: 30, intervalMs: 1 }), /timed out after 30 ms waiting for the thing \(last error: still down\)/);
  });

  it('ends at once on a fatalError, with its message, long before the deadline', async () => {
    let calls = 0;
    const probe = (): Promise<undefined> => {
      calls++;
      return Promise.reject(fatalError('the run failed: backend did not answer'));
    };
    await assert.rejects(waitFor(probe, { what: 'the run', timeoutMs: 60_000, intervalMs: 1 }), (err: Error) => err.message === 'the run failed: backend did not answer');
    assert.equal(calls, 1);
  });
});
