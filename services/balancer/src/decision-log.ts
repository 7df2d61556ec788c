import type { PickReason } from './picker/types.js';

/** One routing decision, as the live view shows it. */
export interface Decision {
  readonly time: number;
  readonly chosen: string;
  readonly reason: PickReason;
}

/** The last few routing decisions, kept in a fixed ring so recording costs no allocation. */
export interface DecisionLog {
  /** `time` (ms epoch) defaults to now; another thread's decisions arrive with theirs. */
  record(chosen: string, reason: PickReason, time?: number): void;
  /** Oldest first. */
  recent(): Decision[];
}

/** Creates a ring of `size` decisions. */
export function createDecisionLog(size = 20): DecisionLog {
  const times = new Float64Array(size);
  const chosen: string[] = new Array<string>(size).fill('');
  const reasons: PickReason[] = new Array<PickReason>(size).fill('only-candidate');
  let next = 0;
  let count = 0;
  return {
    record(id, reason, time = Date.now()) {
      times[next] = time;
      chosen[next] = id;
      reasons[next] = reason;
      next = (next + 1) % size;
      if (count < size) count++;
    },
    recent() {
      const out: Decision[] = [];
      for (let i = 0; i < count; i++) {
        const at = (next - count + i + size) % size;
        out.push({ time: times[at] ?? 0, chosen: chosen[at] ?? '', reason: reasons[at] ?? 'only-candidate' });
      }
      return out;
    },
  };
}
