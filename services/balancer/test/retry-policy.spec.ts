import assert from 'node:assert/strict';
import { decideRetry, isReplaySafe } from '../src/data-path/retry-policy.js';
import type { AttemptOutcome, RetryDecision } from '../src/data-path/retry-policy.js';

/** A GET without a body, first attempt of 2 (--retries 1), budget left, nothing sent yet. */
const base: AttemptOutcome = {
  method: 'GET',
  hasBody: false,
  bodyRead: false,
  reason: 'reset',
  headersSent: false,
  deadlinePassed: false,
  attempt: 1,
  retries: 1,
  budgetLeft: true,
};

const FAILOVER: RetryDecision = { action: 'failover' };
const RETRY: RetryDecision = { action: 'retry', spendsBudget: true };
const RESCUE: RetryDecision = { action: 'retry', spendsBudget: false };
const GIVE_UP: RetryDecision = { action: 'give-up', budgetRefused: false };
const REFUSED: RetryDecision = { action: 'give-up', budgetRefused: true };

const table: [name: string, change: Partial<AttemptOutcome>, expected: RetryDecision][] = [
  ['a reset GET is retried elsewhere, spending budget', {}, RETRY],
  ['a header timeout on a GET too', { reason: 'timeout' }, RETRY],
  ['a --retry-on-status answer to a GET too', { reason: 'status' }, RETRY],
  ['a GET moved off an ejected upstream is a rescue: outside the budget', { reason: 'ejected' }, RESCUE],
  ['a rescue happens even with the budget spent', { reason: 'ejected', budgetLeft: false }, RESCUE],
  ['a reset GET with the budget spent gives up, saying so', { budgetLeft: false }, REFUSED],
  ['a reset on the last attempt gives up', { attempt: 2 }, GIVE_UP],
  ['a rescue on the last attempt gives up', { reason: 'ejected', attempt: 2 }, GIVE_UP],
  ['no retries configured: a reset gives up', { retries: 0 }, GIVE_UP],
  ['a POST is never replayed after a reset', { method: 'POST' }, GIVE_UP],
  ['a PUT with a body is not replayed (its body is read once)', { method: 'PUT', hasBody: true }, GIVE_UP],
  ['a body-less DELETE is idempotent: replayed', { method: 'DELETE' }, RETRY],
  ['after the whole-request deadline: give up', { reason: 'timeout', deadlinePassed: true }, GIVE_UP],
  ['once the status line went to the client: give up', { headersSent: true }, GIVE_UP],
  ['a refused connect fails over, whatever the method, at no cost', { reason: 'connect', method: 'POST', hasBody: true }, FAILOVER],
  ['a refused connect fails over on the last attempt and with no budget', { reason: 'connect', attempt: 2, budgetLeft: false }, FAILOVER],
  ['a refused connect after the body was read is an ordinary failure: a POST gives up', { reason: 'connect', method: 'POST', hasBody: true, bodyRead: true }, GIVE_UP],
  ['a refused connect once headers went out (cannot happen, but) gives up', { reason: 'connect', headersSent: true }, GIVE_UP],
];

describe('decideRetry: after a failed attempt, another upstream or give up (pure)', () => {
  for (const [name, change, expected] of table) {
    it(name, () => {
      assert.deepEqual(decideRetry({ ...base, ...change }), expected);
    });
  }

  it('replay-safe means body-less and idempotent (RFC 9110 §9.2.2)', () => {
    assert.deepEqual(
      ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE', 'POST', 'PATCH'].map((m) => isReplaySafe(m, false)),
      [true, true, true, true, true, true, false, false],
    );
    assert.equal(isReplaySafe('GET', true), false);
  });
});
