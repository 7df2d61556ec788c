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
 * collection it is set to 1 (no growth) once the young generation has reached the cap, and back
 * to V8's default of 2 when V8 has shrunk it below (it does, when allocation slows down).
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** Committed young generation (both semi-spaces) beyond which it does not grow. */
export const YOUNG_GENERATION_CAP_BYTES = 16 * 2 ** 20;

let growing: boolean | undefined;

function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/** Lets the young generation grow while under the cap, and not beyond. */
function steer(): void {
  const grow = youngGenerationBytes() < YOUNG_GENERATION_CAP_BYTES;
  if (grow === growing) return;
  growing = grow;
  setFlagsFromString(grow ? '--semi-space-growth-factor=2' : '--semi-space-growth-factor=1');
}

steer();
// Told after every collection (a few per second under load; nothing when idle).
new PerformanceObserver(steer).observe({ entryTypes: ['gc'] });
