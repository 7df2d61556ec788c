/**
 * What the registry thread and the data-path threads tell each other (structured-cloned over
 * MessagePorts). Counts never travel here: they are in the shared CounterTable.
 */
import type { FailureReason } from '../errors.js';
import type { PickReason } from '../picker/types.js';
import type { PolicyName } from '../picker/policy.js';
import type { UpstreamSource, UpstreamState } from '../upstreams/upstream.js';

/** One upstream as the data path needs it. */
export interface UpstreamView {
  /** The upstream's key (Upstream.key): what reports from the data path name it by. */
  readonly key: number;
  /** Its cells in the shared CounterTable. */
  readonly slot: number;
  readonly host: string;
  readonly port: number;
  readonly source: UpstreamSource;
  readonly state: UpstreamState;
  /** Stopped answering: a down one's waiting requests are moved (UpstreamFields.unresponsive). */
  readonly unresponsive: boolean;
  readonly weight: number;
  readonly configuredWeight: number;
  readonly maxInFlight: number;
}

export type ToWorker =
  /** The whole list, after any change; a slot missing from it is gone. */
  | { readonly type: 'upstreams'; readonly upstreams: readonly UpstreamView[] }
  | { readonly type: 'listen'; readonly port: number; readonly host: string }
  /** The selection policy changed (admin API); every thread picks with the same one. */
  | { readonly type: 'policy'; readonly policy: PolicyName }
  | { readonly type: 'scrape'; readonly id: number }
  | { readonly type: 'stop' };

export interface WorkerDecision {
  readonly time: number;
  /** Upstream.key, never the slot: a report may arrive after the slot went to a newcomer. */
  readonly key: number;
  readonly reason: PickReason;
}

export type FromWorker =
  | { readonly type: 'listening'; readonly port: number }
  | { readonly type: 'listen-failed'; readonly code: string; readonly message: string }
  /** Passive health: sent at once, as one failure may eject an upstream. */
  | { readonly type: 'failure'; readonly key: number; readonly reason: FailureReason | 'status' }
  /** Sent a few times a second: recent decisions, and the upstreams (keys) that answered well. */
  | { readonly type: 'report'; readonly decisions: readonly WorkerDecision[]; readonly succeeded: readonly number[] }
  /** The worker let go of a slot that left the list: no request of its own is still on it. */
  | { readonly type: 'dropped'; readonly slot: number }
  | { readonly type: 'scrape'; readonly id: number; readonly metrics: unknown }
  | { readonly type: 'stopped' };
