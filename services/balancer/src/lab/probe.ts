/**
 * The capacity check's probe: one GET of each image of the mix through the balancer's own data
 * port, all at once, each timed until its last byte or given up at the deadline.
 */
import { Pool } from '../undici-pool.js';
import type { ProbeSample } from './capacity.js';
import { imagePath } from './traffic.js';

/** Probes every image with a weight > 0 in `mix`. */
export async function probeImages(dataUrl: string, mix: readonly number[], delayScale: number, deadlineMs: number): Promise<ProbeSample[]> {
  const images = mix.flatMap((weight, i) => (weight > 0 ? [{ path: imagePath(i + 1, delayScale), weight }] : []));
  const pool = new Pool(dataUrl, { connections: images.length, pipelining: 1 });
  try {
    return await Promise.all(
      images.map(async ({ path, weight }): Promise<ProbeSample> => {
        const t0 = performance.now();
        try {
          const res = await pool.request({ path, method: 'GET', signal: AbortSignal.timeout(deadlineMs) });
          await res.body.arrayBuffer();
          return { path, weight, ms: performance.now() - t0, timedOut: false };
        } catch (err) {
          const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
          // A failure that is not the deadline (refused, reset) is what the run would meet too: its time counts.
          return { path, weight, ms: timedOut ? deadlineMs : performance.now() - t0, timedOut };
        }
      }),
    );
  } finally {
    await pool.destroy();
  }
}
