import { execFile } from 'node:child_process';

/** Outcome of one external command; `code` is 0 on success. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the command after this long (SIGTERM). Bounded by default: nothing here may hang a CI job. */
  timeoutMs?: number;
  /** Resolve with the non-zero code instead of rejecting (for commands that fail as a matter of course). */
  allowFailure?: boolean;
}

const tail = (text: string, lines = 40): string => text.trimEnd().split('\n').slice(-lines).join('\n');

/**
 * Runs a command without a shell and without blocking the event loop, so traffic loops and
 * pollers keep running while `docker compose` works.
 */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      {
        cwd: options.cwd,
        env: options.env,
        timeout: options.timeoutMs ?? 300_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        const ms = performance.now() - started;
        if (!err) {
          resolve({ code: 0, stdout, stderr, ms });
          return;
        }
        const code = typeof err.code === 'number' ? err.code : -1;
        if (options.allowFailure && !err.killed) {
          resolve({ code, stdout, stderr, ms });
          return;
        }
        const why = err.killed ? `killed after ${Math.round(ms)} ms` : `exit ${code}`;
        reject(new Error(`${cmd} ${args.join(' ')}: ${why}\n${tail(stderr || stdout)}`));
      },
    );
  });
}
