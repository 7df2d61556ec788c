import type { ClusterHarness } from './cluster-harness.js';
import { createHttpClient } from './http.js';

/** The host ports on 127.0.0.1 a cluster publishes its three entry points on. */
export interface PublishedPorts {
  readonly frontend: number;
  readonly balancer: number;
  readonly prometheus: number;
}

export type PublishedClients = Pick<ClusterHarness, 'web' | 'balancer' | 'prometheus'> & {
  /** Releases the three clients' kept-alive sockets, so mocha can exit. */
  close(): Promise<void>;
};

/** Keep-alive clients of nginx, the balancer's data port and Prometheus. */
export function createPublishedClients(ports: PublishedPorts): PublishedClients {
  const web = createHttpClient(`http://127.0.0.1:${ports.frontend}`);
  const balancer = createHttpClient(`http://127.0.0.1:${ports.balancer}`);
  const prometheus = createHttpClient(`http://127.0.0.1:${ports.prometheus}`);
  return {
    web,
    balancer,
    prometheus,
    close: async () => {
      await Promise.all([web.close(), balancer.close(), prometheus.close()]);
    },
  };
}
