/** The backends' delays, as the stack passes them ('' for BACKEND_DELAYS_MS: the backend's default, the seed's 1, 3, 5 and 10 s). */
export interface BackendDelayEnv {
  readonly BACKEND_DELAY_SCALE: string;
  readonly BACKEND_DELAYS_MS: string;
}

/**
 * The suites' own, as in the issue's measurements, under Compose and Swarm alike: /images/1 takes
 * 1 ms, so latency under change is the cluster's own. Ids 2 and 3 (150, 250 ms) overlap for the
 * least-connections checks, and id 4 stays slow (3 s) so that requests to it are reliably still in
 * flight while others are routed. (The backend accepts delays up to 600 s before scaling.)
 */
export const SUITE_DELAYS: BackendDelayEnv = { BACKEND_DELAY_SCALE: '0.01', BACKEND_DELAYS_MS: '100,15000,25000,300000' };
