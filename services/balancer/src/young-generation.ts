/**
 * Caps V8's young generation at YOUNG_GENERATION_CAP_BYTES instead of letting it grow to 32 MB per
 * semi-space (64 MB committed) under a burst of allocation. Imported first by main.ts, before the
 * other modules allocate, so it is in force from the start.
 *
 * Why: the young generation grows in one burst (10,000 clients connecting, a spike of requests)
 * and its pages stay resident afterwards, which on Node 24 was the largest single part of the
 * balancer's peak RSS with 10,000 idle keep-alive clients (bench/CONNECTIONS.md). Held at its
 * initial 8 MB it cost more CPU per request in garbage collection (more scavenges, more
 * promotion); 16 MB keeps most of the memory saved for less of that cost (bench/PROFILE.md).
 *
 * How: `--max-semi-space-size` would say it, but V8 reads it once, when the heap is set up (the
 * command line only). The growth factor is read at every growth, so after each garbage
 * collection it is set to V8's own factor of 2 only while doubling stays within the cap, and to 1
 * (no growth) otherwise. V8 shrinks the young generation to any size when
 * allocation slows down (11 MB, say); a fixed factor of 2 below the cap then grew it to 22 MB,
 * past the cap, under the next burst (seen with 10,000 clients connecting: bench/CONNECTIONS.md).
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** Committed young generation (both semi-spaces) beyond which it does not grow. */
export const YOUNG_GENERATION_CAP_BYTES = 16 * 2 ** 20;

/** The growth factor last given to V8. */
let factor: number | undefined;

function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/** V8's own growth factor, kept wherever it does not pass the cap. */
const V8_GROWTH_FACTOR = 2;

/** The factor by which V8 may grow a young generation of `youngBytes`: V8's 2 while that stays within the cap, else 1. */
export function growthFactorFor(youngBytes: number, capBytes = YOUNG_GENERATION_CAP_BYTES): number {
  return youngBytes * V8_GROWTH_FACTOR <= capBytes ? V8_GROWTH_FACTOR : 1;
}

/** Lets the young generation grow while under the cap, and never beyond it. */
function steer(): void {
  const next = growthFactorFor(youngGenerationBytes());
  if (next === factor) return;
  factor = next;
  setFlagsFromString(`--semi-space-growth-factor=${next}`);
}

steer();
// Told after every collection (a few per second under load; nothing when idle).
new PerformanceObserver(steer).observe({ entryTypes: ['gc'] });
