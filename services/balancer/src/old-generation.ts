/**
 * Lets V8's old generation grow by 10 % of what the last full collection kept alive before the
 * next one starts, instead of V8's own factor (chosen from the collector's speed, up to 4x).
 * Imported by main.ts.
 *
 * Why: requests promote short-lived objects into the old generation, where only a full
 * collection frees them. With V8's factor, the balancer holding 10,000 idle keep-alive clients
 * (42 MB of live old generation) ran their next 10,000 requests without one, and the old
 * generation reached 61-67 MB, most of it garbage, at the moment the peak RSS was read
 * (bench/CONNECTIONS.md). At 10 % it stayed at 45-55 MB. Under steady load the live old generation is
 * about 15-20 MB and promotion is slow, so full collections stay rare (bench/PROFILE.md).
 *
 * How: V8 reads `--heap-growing-percent` each time it sets the next limit, after a full
 * collection, so setting it at run time works.
 */
import { setFlagsFromString } from 'node:v8';

/** Growth of the old generation, in percent of the live size, that starts the next full collection. */
export const OLD_GENERATION_GROWTH_PERCENT = 10;

setFlagsFromString(`--heap-growing-percent=${OLD_GENERATION_GROWTH_PERCENT}`);
