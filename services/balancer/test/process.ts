import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** src/main.ts run through tsx, as a separate process (for exit codes, signals and RSS). */
export const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

export interface Child {
  readonly proc: ChildProcessWithoutNullStreams;
  stdout: string;
  stderr: string;
  readonly exited: Promise<number | null>;
}

/** `node` is the binary to run it with (default: this one). */
export function runBalancer(args: readonly string[], env: Record<string, string> = {}, node = process.execPath): Child {
  const proc = spawn(node, ['--import', 'tsx', MAIN, ...args], {
    env: { ...process.env, ...env },
    stdio: 'pipe',
  });
  const child: Child = {
    proc,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => proc.once('exit', (code) => {
      resolve(code);
    })),
  };
  proc.stdout.setEncoding('utf8').on('data', (c: string) => (child.stdout += c));
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (child.stderr += c));
  return child;
}

/** Resident set size of a process in bytes, from /proc. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kb) * 1024;
}

/** The data and admin ports from the "balancer listening" log line. */
export function listeningPorts(stdout: string): { data: number; admin: number } | undefined {
  for (const line of stdout.split('\n')) {
    if (!line.includes('balancer listening')) continue;
    const entry = JSON.parse(line) as { data: string; admin: string };
    return { data: Number(new URL(entry.data).port), admin: Number(new URL(entry.admin).port) };
  }
  return undefined;
}
