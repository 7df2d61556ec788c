import { Agent, request } from 'undici';

/** A response read to the end. */
export interface HttpResult {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  ms: number;
}

/** Keep-alive HTTP client for one origin on 127.0.0.1; `close()` releases its sockets so mocha can exit. */
export interface HttpClient {
  readonly origin: string;
  get(path: string, timeoutMs?: number): Promise<HttpResult>;
  /** GET, expect 200, parse JSON. */
  json<T>(path: string, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

export function createHttpClient(origin: string): HttpClient {
  const agent = new Agent({ connections: 64, keepAliveTimeout: 5_000 });
  let closed: Promise<void> | undefined;

  async function get(path: string, timeoutMs = 15_000): Promise<HttpResult> {
    const started = performance.now();
    const res = await request(new URL(path, origin), {
      method: 'GET',
      dispatcher: agent,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(res.headers)) {
      if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
    }
    return { status: res.statusCode, headers, body, ms: performance.now() - started };
  }

  return {
    origin,
    get,
    async json<T>(path: string, timeoutMs?: number): Promise<T> {
      const res = await get(path, timeoutMs);
      if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${res.body.toString('utf8').slice(0, 200)}`);
      return JSON.parse(res.body.toString('utf8')) as T;
    },
    close() {
      closed ??= agent.close();
      return closed;
    },
  };
}
