import type { FailureReason } from '../errors.js';

/** Methods whose effect is the same however often they are sent (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/**
 * Safe to send again elsewhere: nothing of the request is lost (no body, which is read once) and
 * repeating it changes nothing (an idempotent method).
 */
export function isReplaySafe(method: string, hasBody: boolean): boolean {
  return !hasBody && IDEMPOTENT.has(method);
}

/** How an attempt ended badly: a failure, or an answer with a --retry-on-status code. */
export interface AttemptOutcome {
  readonly method: string;
  /** The request has a body. */
  readonly hasBody: boolean;
  /** Some of the body was already read from the client (and so sent to this upstream). */
  readonly bodyRead: boolean;
  readonly reason: FailureReason | 'status';
  /** The response's status line already went to the client. */
  readonly headersSent: boolean;
  /** The whole-request deadline (--request-timeout-ms) passed. */
  readonly deadlinePassed: boolean;
  /** Attempts that counted so far, this one included (failovers after a refused connect do not). */
  readonly attempt: number;
  /** --retries. */
  readonly retries: number;
  /** The retry budget has a retry left (looked at only when the retry would spend it). */
  readonly budgetLeft: boolean;
}

/**
 * - `failover`: another upstream, free (no attempt, no budget): the request never reached anyone.
 * - `retry`: another upstream, as one more attempt; `spendsBudget` unless it is a rescue off an
 *   ejected upstream (those are bounded by what was in flight there).
 * - `give-up`: the client gets this failure (or this answer); `budget` says the budget refused.
 */
export type RetryDecision =
  | { readonly action: 'failover' }
  | { readonly action: 'retry'; readonly spendsBudget: boolean }
  | { readonly action: 'give-up'; readonly budgetRefused: boolean };

const GIVE_UP: RetryDecision = { action: 'give-up', budgetRefused: false };
const BUDGET_REFUSED: RetryDecision = { action: 'give-up', budgetRefused: true };
const FAILOVER: RetryDecision = { action: 'failover' };
const RETRY: RetryDecision = { action: 'retry', spendsBudget: true };
const RESCUE: RetryDecision = { action: 'retry', spendsBudget: false };

/**
 * Whether a request whose attempt ended this way goes to another upstream (pure: the caller
 * checks that another upstream can take it, and spends the budget).
 *
 * A refused connection never reached the upstream: the next one is tried whatever the method,
 * at no cost (this keeps a scale-down clean while stopping replicas refuse connections). Anything
 * else is replayed only for a body-less idempotent request (after a reset, a header or per-try
 * timeout like HAProxy's retry-on, off an ejected upstream, or a --retry-on-status answer), never
 * once the client has the status line or after the whole-request deadline, within --retries and
 * the retry budget.
 */
export function decideRetry(o: AttemptOutcome): RetryDecision {
  if (o.headersSent) return GIVE_UP;
  if (o.reason === 'connect' && !o.bodyRead) return FAILOVER;
  if (!isReplaySafe(o.method, o.hasBody) || o.deadlinePassed || o.attempt > o.retries) return GIVE_UP;
  if (o.reason === 'ejected') return RESCUE;
  return o.budgetLeft ? RETRY : BUDGET_REFUSED;
}
