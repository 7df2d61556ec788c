import type { ContainerInfo } from './docker-inspect.js';

/** The port every backend replica listens on inside the cluster's network (Compose and Swarm alike). */
export const BACKEND_PORT = 8002;

/** `<ip>:8002`: the balancer's upstream id and Prometheus' instance label of a replica. */
export const upstreamIdOf = (c: ContainerInfo): string => `${c.ip ?? '?'}:${BACKEND_PORT}`;

/** `<hostname>:8002`: the X-Backend-Id a replica sends by default (BACKEND_ID unset), its container's hostname. */
export const backendIdOf = (c: Pick<ContainerInfo, 'hostname'>): string => `${c.hostname}:${BACKEND_PORT}`;
