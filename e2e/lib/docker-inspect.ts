/** One container, as `docker inspect` reports it (Compose containers and Swarm task containers alike). */
export interface ContainerInfo {
  id: string;
  /** The container's hostname: the first 12 hex digits of its id; the backend's default id is `<hostname>:8002`. */
  hostname: string;
  /** Address on the given network (`<project>_default`), when attached. */
  ip: string | undefined;
  /** created | running | exited | ... */
  status: string;
  /** starting | healthy | unhealthy, or undefined without a healthcheck. */
  health: string | undefined;
  /** End time (ms since epoch) of the oldest passing health probe still in Docker's log of the last 5. */
  firstPassingProbeAt: number | undefined;
  /** Docker labels (Swarm puts the task id in `com.docker.swarm.task.id`). */
  labels: Record<string, string>;
}

interface InspectEntry {
  Id: string;
  Config: { Hostname: string; Labels: Record<string, string> | null };
  State: {
    Status: string;
    Health?: { Status: string; Log: { End: string; ExitCode: number }[] | null };
  };
  NetworkSettings: { Networks: Record<string, { IPAddress: string } | undefined> | null };
}

/** Parses `docker inspect` output (a JSON array; empty output = none) for containers on `network`. */
export function parseInspect(stdout: string, network: string): ContainerInfo[] {
  const entries = JSON.parse(stdout.trim() || '[]') as InspectEntry[];
  return entries.map((entry) => {
    const passing = (entry.State.Health?.Log ?? []).filter((l) => l.ExitCode === 0).map((l) => Date.parse(l.End));
    // Docker reports "" for a network the container has left.
    const ip = entry.NetworkSettings.Networks?.[network]?.IPAddress;
    return {
      id: entry.Id,
      hostname: entry.Config.Hostname,
      ip: ip === undefined || ip === '' ? undefined : ip,
      status: entry.State.Status,
      health: entry.State.Health?.Status,
      firstPassingProbeAt: passing.length > 0 ? Math.min(...passing) : undefined,
      labels: entry.Config.Labels ?? {},
    };
  });
}
