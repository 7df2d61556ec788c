import { freePorts } from '../../scripts/cluster-lib.mjs';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, below the kernel's ephemeral range (see
 * freePorts) so that no outgoing connection takes it before Docker publishes it.
 */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error('no free port');
  return port;
}
