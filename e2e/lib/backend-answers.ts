import type { ContainerInfo } from './docker-inspect.js';
import { backendIdOf, upstreamIdOf } from './upstream-id.js';

/**
 * Whether the backend process of this very container answers at its address now: its /healthz
 * says 2xx with the X-Backend-Id the container's hostname gives (`<hostname>:8002`, the backend's
 * default id). An earlier container that had the same address, or nothing listening yet, is "no".
 * Reaches the container directly (the host routes to a Compose network's addresses).
 */
export async function backendAnswers(replica: ContainerInfo, timeoutMs = 1_000): Promise<boolean> {
  if (replica.ip === undefined) return false;
  try {
    const res = await fetch(`http://${upstreamIdOf(replica)}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.ok && res.headers.get('x-backend-id') === backendIdOf(replica);
  } catch {
    return false;
  }
}
