// Running wrk with bench/wrk-report.lua and reading its summary: shared by bench/run.mjs and
// bench/profile.mjs.
import { fileURLToPath } from 'node:url';
import { tail } from './processes.mjs';

export const WRK_SCRIPT = fileURLToPath(new URL('wrk-report.lua', import.meta.url));

/** wrk's arguments for `seconds` of load on `url` with `settings.threads` and `settings.connections`. */
export function wrkArgs(settings, seconds, url) {
  return [`-t${settings.threads}`, `-c${settings.connections}`, `-d${seconds}s`, '-s', WRK_SCRIPT, url];
}

/** Runs wrk and returns the numbers its Lua done() hook printed, plus `errorCount`. */
export async function runWrk(supervisor, settings, seconds, url) {
  const proc = supervisor.spawnProcess('wrk', 'wrk', wrkArgs(settings, seconds, url), { pipeStdout: true });
  let stdout = '';
  proc.child.stdout.setEncoding('utf8');
  proc.child.stdout.on('data', (chunk) => { stdout += chunk; });
  await proc.exited;
  const json = /^WRK_JSON (.+)$/m.exec(stdout)?.[1];
  if (proc.exit.code !== 0 || json === undefined) {
    throw new Error(`wrk ${url} failed (${proc.exit.error?.message ?? `exit ${proc.exit.code}`}):\n${stdout}${tail(proc.logPath, 10)}`);
  }
  const result = JSON.parse(json);
  const e = result.errors;
  result.errorCount = e.connect + e.read + e.write + e.status + e.timeout;
  return result;
}
