/**
 * The lab's traffic as a schedule, computed before the run: Poisson arrivals at `rate` per second
 * (exponential gaps) and an image per request drawn from `mix`, both from one seed. The same seed
 * gives the same schedule, so every policy of a comparison faces the same requests at the same
 * offsets. Pure.
 */
import { seededRandom } from './random.js';

/** One request of the schedule: when to send it (ms from the start) and which path. */
export interface Arrival {
  readonly at: number;
  readonly path: string;
}

export interface TrafficSpec {
  /** Requests per second, on average. */
  readonly rate: number;
  readonly durationMs: number;
  /** Relative weights of /images/1..N (at least one > 0). */
  readonly mix: readonly number[];
  readonly seed: number;
  /**
   * Multiplies the backends' image delays for these requests (`?delayScale=`, 0–1; 1 = as
   * configured): 0.001 gives millisecond images on a cluster whose images take seconds.
   */
  readonly delayScale?: number;
}

/** The path of one image at a delay scale; the query is left out at scale 1. */
export function imagePath(image: number, delayScale = 1): string {
  // Six decimals at most: String() would write 1e-7, which the backend refuses.
  return delayScale === 1 ? `/images/${image}` : `/images/${image}?delayScale=${Number(delayScale.toFixed(6))}`;
}

/** The whole schedule, sorted by time. */
export function schedule(spec: TrafficSpec): Arrival[] {
  const random = seededRandom(spec.seed);
  const total = spec.mix.reduce((a, b) => a + b, 0);
  const out: Arrival[] = [];
  const meanGap = 1000 / spec.rate;
  let t = 0;
  for (;;) {
    // 1 - random() is in (0, 1]: never log(0).
    t += -Math.log(1 - random()) * meanGap;
    if (t >= spec.durationMs) return out;
    let pick = random() * total;
    let image = spec.mix.length;
    for (let i = 0; i < spec.mix.length; i++) {
      pick -= spec.mix[i] ?? 0;
      if (pick < 0) {
        image = i + 1;
        break;
      }
    }
    out.push({ at: t, path: imagePath(image, spec.delayScale) });
  }
}
