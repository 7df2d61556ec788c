import type { HttpClient } from './http.js';

/** One entry of `/api/v1/targets` (the fields the tests read). */
export interface Target {
  labels: Record<string, string>;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
}

interface TargetsResponse {
  status: string;
  data: { activeTargets: Target[] };
}

interface QueryResponse {
  status: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

/** Active scrape targets of one job. */
export async function activeTargets(prometheus: HttpClient, job: string): Promise<Target[]> {
  const body = await prometheus.json<TargetsResponse>('/api/v1/targets?state=active');
  return body.data.activeTargets.filter((t) => t.labels.job === job);
}

/** The value of a scalar-like instant query (first series), or undefined when it has none. */
export async function queryValue(prometheus: HttpClient, promql: string): Promise<number | undefined> {
  const body = await prometheus.json<QueryResponse>(`/api/v1/query?query=${encodeURIComponent(promql)}`);
  const first = body.data.result[0];
  return first === undefined ? undefined : Number(first.value[1]);
}
