// Child processes of the bench: start, stop, notice deaths, and read their CPU time.
//
// Every process is started in its own process group (detached), so stopping nginx or HAProxy also
// reaches their workers, and a Ctrl-C in the terminal reaches only the harness, which then stops
// everything itself. Nothing here touches a process the bench did not start.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const STOP_GRACE_MS = 5000;

/** Clock ticks per second for /proc/<pid>/stat times (100 on every Linux we know, but ask). */
export const CLOCK_TICKS = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number(out.stdout?.trim());
  return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
})();

/**
 * Owns every child process of one bench run.
 * `spawnProcess()` starts one; `stopAll()` stops all (idempotent); `killAllSync()` is for
 * process 'exit' and signal handlers, where nothing asynchronous runs any more.
 */
export function createSupervisor(logDir) {
  /** @type {Set<ReturnType<typeof spawnProcess>>} */
  const live = new Set();

  /**
   * Starts `command args` with stderr (and stdout unless `pipeStdout`) appended to
   * `<logDir>/<name>.log`; stdin is a pipe with `pipeStdin` (so the harness can steer it, and it
   * sees EOF when the harness dies), else /dev/null. Returns a handle whose `exit` is null while
   * the process runs.
   */
  function spawnProcess(name, command, args, { env = process.env, pipeStdout = false, pipeStdin = false } = {}) {
    const logPath = join(logDir, `${name}.log`);
    const logFd = openSync(logPath, 'a');
    const child = spawn(command, args, {
      detached: true,
      env,
      stdio: [pipeStdin ? 'pipe' : 'ignore', pipeStdout ? 'pipe' : logFd, logFd],
    });
    // The child holds its own copy of the descriptor from here on.
    closeSync(logFd);

    const proc = {
      name,
      logPath,
      child,
      pid: child.pid,
      /** @type {null | { code: number | null, signal: string | null, error?: Error }} */
      exit: null,
      stopping: false,
      /** Resolves once the process has exited (or failed to start). */
      exited: /** @type {Promise<void>} */ (new Promise((resolve) => {
        child.once('exit', (code, signal) => { proc.exit ??= { code, signal }; live.delete(proc); resolve(); });
        child.once('error', (error) => { proc.exit ??= { code: null, signal: null, error }; live.delete(proc); resolve(); });
      })),
      /** SIGTERM to the group, SIGKILL after a grace period; idempotent. */
      async stop() {
        proc.stopping = true;
        if (proc.exit === null) {
          signalGroup(proc, 'SIGTERM');
          const timer = setTimeout(() => { signalGroup(proc, 'SIGKILL'); }, STOP_GRACE_MS);
          await proc.exited;
          clearTimeout(timer);
        }
        // A worker that outlived its master (it should not) goes too.
        signalGroup(proc, 'SIGKILL');
      },
    };
    if (proc.pid !== undefined) live.add(proc);
    return proc;
  }

  return {
    spawnProcess,
    async stopAll() { await Promise.all([...live].map((p) => p.stop())); },
    killAllSync() { for (const p of live) { p.stopping = true; signalGroup(p, 'SIGKILL'); } },
  };
}

/** Signals the process group the bench created for `proc`; a group that is already gone is fine. */
function signalGroup(proc, signal) {
  if (proc.pid === undefined) return;
  try {
    process.kill(-proc.pid, signal);
  } catch (err) {
    if (err.code !== 'ESRCH') throw err;
  }
}

/** Throws a loud error naming every process in `procs` that exited without being asked to. */
export function assertAlive(procs) {
  const dead = procs.filter((p) => p.exit !== null && !p.stopping);
  if (dead.length === 0) return;
  const lines = dead.map((p) => {
    const how = p.exit.error ? p.exit.error.message : `code ${p.exit.code}, signal ${p.exit.signal}`;
    return `${p.name} (pid ${p.pid}) died: ${how}\n--- last lines of ${p.logPath} ---\n${tail(p.logPath, 15)}`;
  });
  const err = new Error(`process died during the bench:\n${lines.join('\n')}`);
  // Polling loops give up at once on this one instead of retrying until their deadline.
  err.fatal = true;
  throw err;
}

/** The last `n` lines of a log file, or a note if it cannot be read. */
export function tail(path, n) {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch (err) {
    return `(cannot read ${path}: ${err.message})`;
  }
}

/** Resolves with the first capture group of the first stdout line matching `pattern`. */
export function waitForLine(proc, pattern, timeoutMs) {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: proc.child.stdout });
    const timer = setTimeout(() => { finish(new Error(`${proc.name}: no line matching ${pattern} within ${timeoutMs} ms`)); }, timeoutMs);
    const onExit = () => { finish(new Error(`${proc.name} exited before printing ${pattern}; see ${proc.logPath}`)); };
    function finish(err, value) {
      clearTimeout(timer);
      lines.off('line', onLine);
      proc.child.off('exit', onExit);
      lines.close();
      // Keep draining (and dropping) stdout so the child never blocks on a full pipe.
      proc.child.stdout.resume();
      if (err) reject(err); else resolve(value);
    }
    function onLine(line) {
      const match = pattern.exec(line);
      if (match) finish(null, match[1]);
    }
    lines.on('line', onLine);
    proc.child.once('exit', onExit);
  });
}

/**
 * `rootPid` and all its descendants (nginx master + worker, anything a proxy forks), found by
 * walking the parent links of every process in /proc. Threads are not listed there (they live in
 * /proc/<pid>/task), and need not be: a process's stat and status already cover all its threads.
 */
export function processTreePids(rootPid) {
  const byParent = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry);
    if (fields === null) continue; // exited while we were looking
    const ppid = Number(fields[1]);
    if (!byParent.has(ppid)) byParent.set(ppid, []);
    byParent.get(ppid).push(Number(entry));
  }
  const tree = [];
  const queue = [rootPid];
  const seen = new Set();
  while (queue.length > 0) {
    const pid = queue.pop();
    if (seen.has(pid)) continue;
    seen.add(pid);
    tree.push(pid);
    queue.push(...(byParent.get(pid) ?? []));
  }
  return tree;
}

/** The fields of /proc/<pid>/stat from field 3 (state) on, or null if the process is gone. */
function statFields(pid) {
  let stat;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name may contain spaces and parentheses: the fields start after the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/**
 * utime + stime, in clock ticks, of `rootPid` and all its descendants. Threads are included:
 * /proc/<pid>/stat sums all threads of the process, even those that already exited (checked with
 * two busy worker_threads: the process's ticks grew by both of their CPU times).
 */
export function processTreeCpuTicks(rootPid) {
  let total = 0;
  for (const pid of processTreePids(rootPid)) {
    const fields = statFields(pid);
    // Fields 14 and 15 of stat(5) are utime and stime; `fields` starts at field 3 (state).
    if (fields !== null) total += Number(fields[11]) + Number(fields[12]);
  }
  return total;
}

/**
 * Resident memory of `rootPid` and its descendants, in bytes: the sum of VmRSS (now) and of VmHWM
 * (each process's peak so far) from /proc/<pid>/status. One process covers all its threads (they
 * share its address space). A sum over processes counts pages they share (nginx master and worker:
 * the binary, the shared zone) once per process, so it errs on the high side.
 */
export function processTreeMemory(rootPid) {
  const pids = processTreePids(rootPid);
  let rssBytes = 0;
  let peakBytes = 0;
  for (const pid of pids) {
    let status;
    try {
      status = readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      continue;
    }
    const kib = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? 0);
    rssBytes += kib('VmRSS') * 1024;
    peakBytes += kib('VmHWM') * 1024;
  }
  return { rssBytes, peakBytes, processes: pids.length };
}
