/** See require-tool.mjs. */
export function underCi(env?: Readonly<Record<string, string | undefined>>): boolean;
export function findExecutable(candidates: readonly string[], env?: Readonly<Record<string, string | undefined>>): string | undefined;
export function requireTool(
  ctx: { skip(): never },
  tool: 'promtool' | 'nginx' | 'haproxy' | 'chromium' | 'wrk' | 'make',
  options?: { env?: Readonly<Record<string, string | undefined>>; probeArgs?: readonly string[]; log?: (line: string) => void },
): string;
