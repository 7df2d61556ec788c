/** See node22.mjs. */
export function node22Runtime(options?: {
  env?: Readonly<Record<string, string | undefined>>;
  log?: (line: string) => void;
}): { path: string; version: string };
