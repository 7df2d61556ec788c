// Reads the text of `perf script` (perf record -e cpu-clock -g on a node started with
// --perf-basic-prof) and says where the CPU went, in the same shape as bench/cpuprofile.mjs:
// self and total time per group of functions and per function. Pure: bench/profile.mjs runs perf.
//
// perf samples only while a thread is on a CPU, so a thread descheduled in a system call (on a
// machine shared with wrk and the backends) is not charged for the wait, unlike V8's profiler;
// kernel time (the system calls themselves) is in the samples too, by system call.
//
// Self time: the innermost frame, except that V8 builtins and inline caches, RegExp code and the
// wasm-to-JS glue are charged to the JavaScript function they run for. Total time: a sample
// counts once for every group (or JavaScript function) anywhere on its stack.
import { functionKey, groupOf } from './profile-groups.mjs';

/** One stack frame of `perf script`: `\t<addr> <symbol>+0x<off> (<dso>)`. */
const FRAME = /^\s*[0-9a-f]+ (.*?)(?:\+0x[0-9a-f]+)? \((.*)\)$/;
/** A --perf-basic-prof name: JS:<tier mark>'<name> <url>:<line>:<column> (the name may be empty). */
const JS_FRAME = /^JS:[*~+^]?'?(.*) (\S+):(\d+):(\d+)$/;
/** Kernel entry points that name the system call. */
const SYSCALL = /^(?:__x64_sys_|__do_sys_|ksys_|__sys_)(\w+)$/;

/**
 * What one frame is: { js: { name, url, line } } for JavaScript, { transparent: true } for code
 * that runs on behalf of the JavaScript frame below it, or { native: group } for the rest.
 */
function classify(symbol, dso) {
  if (dso.startsWith('/tmp/perf-') || dso === '[unknown]' && symbol.startsWith('JS:')) {
    const m = JS_FRAME.exec(symbol);
    if (m) return { js: { name: m[1], url: m[2], line: Number(m[3]) } };
    if (symbol.startsWith('JS:wasm')) return { native: 'undici: llhttp (wasm)' };
    return { transparent: true }; // RegExp code, stubs
  }
  if (dso === '[kernel.kallsyms]') return { native: 'kernel' };
  if (/^Builtins_/.test(symbol)) return { transparent: true };
  if (dso.includes('libc.so')) return { native: 'libc (memcpy, malloc...)' };
  if (/Heap|Scavenge|MarkCompact|Sweeper|Marking|GCTracer|Evacuat|MinorMS|Mark.*Visitor/.test(symbol)) return { native: 'GC' };
  if (/^(?:node::http_parser|llhttp)/.test(symbol)) return { native: 'node:http parser (llhttp, C++)' };
  if (/^uv_|^uv__/.test(symbol)) return { native: 'libuv' };
  if (/^v8::|^Builtin|^Runtime_|^v8_/.test(symbol)) return { native: 'V8 runtime (C++)' };
  if (/^node::/.test(symbol)) return { native: 'node C++ (streams, callbacks)' };
  if (dso === '[unknown]') return { transparent: true };
  return { native: `native: other (${dso.split('/').pop()})` };
}

/**
 * Sums the samples of `text` (every thread of the process). Returns milliseconds of CPU:
 * { busyMs, samples, threads: { comm: ms }, groups: [{ group, selfMs, totalMs }], functions: [{ name, group, selfMs, totalMs }] }
 * sorted by self time.
 */
export function summarisePerfScript(text) {
  const groups = new Map();
  const functions = new Map();
  const threads = {};
  const add = (map, key, field, ms, extra) => {
    let entry = map.get(key);
    if (entry === undefined) map.set(key, (entry = { ...extra, selfMs: 0, totalMs: 0 }));
    entry[field] += ms;
  };
  let busyMs = 0;
  let samples = 0;

  const finish = (comm, ms, frames) => {
    if (frames.length === 0) return;
    busyMs += ms;
    samples++;
    threads[comm] = (threads[comm] ?? 0) + ms;
    let selfGroup;
    let selfFunction;
    let syscall;
    let inSyscall = false;
    const seenGroups = new Set();
    const seenFunctions = new Map();
    for (const [symbol, dso] of frames) {
      const kind = classify(symbol, dso);
      if (kind.transparent) continue;
      if (kind.native !== undefined) {
        if (kind.native === 'kernel') syscall ??= SYSCALL.exec(symbol)?.[1];
        // The libc wrapper right below the kernel's system call entry names the call best.
        else if (selfGroup === 'kernel' && syscall === undefined && inSyscall && dso.includes('libc.so')) syscall = symbol.replace(/^(?:__GI___|__libc_|__)+/, '').replace(/^libc_/, '');
        if (symbol.startsWith('entry_SYSCALL')) inSyscall = true;
        if (selfGroup === undefined) {
          selfGroup = kind.native;
          if (kind.native !== 'kernel') selfFunction = `${symbol.slice(0, 80)} [${kind.native}]`;
        }
        seenGroups.add(kind.native);
        continue;
      }
      const group = groupOf(kind.js.url, kind.js.name) ?? 'other';
      const key = functionKey(kind.js.name, kind.js.url, kind.js.line);
      selfGroup ??= group;
      selfFunction ??= key;
      seenGroups.add(group);
      seenFunctions.set(key, group);
    }
    if (selfGroup === 'kernel') {
      selfFunction = `[kernel] ${syscall ?? 'no system call (interrupts, softirq)'}`;
      selfGroup = `kernel: ${syscall ?? 'interrupts, softirq'}`;
    }
    selfGroup ??= 'other';
    selfFunction ??= '(unknown)';
    add(groups, selfGroup, 'selfMs', ms, { group: selfGroup });
    seenGroups.delete('kernel');
    seenGroups.add(selfGroup);
    for (const g of seenGroups) add(groups, g, 'totalMs', ms, { group: g });
    add(functions, selfFunction, 'selfMs', ms, { name: selfFunction, group: seenFunctions.get(selfFunction) ?? selfGroup });
    seenFunctions.set(selfFunction, seenFunctions.get(selfFunction) ?? selfGroup);
    for (const [f, group] of seenFunctions) add(functions, f, 'totalMs', ms, { name: f, group });
  };

  let comm = '';
  let ms = 0;
  let frames = [];
  for (const line of text.split('\n')) {
    if (line === '') {
      finish(comm, ms, frames);
      frames = [];
      continue;
    }
    if (!/^\s/.test(line)) {
      // `comm tid time: period cpu-clock:`; the thread name may contain spaces.
      const header = /^(.*?)\s+\d+\s+[\d.]+:\s+(\d+)\s+\S+:/.exec(line);
      comm = header?.[1] ?? '?';
      ms = Number(header?.[2] ?? 0) / 1e6;
      continue;
    }
    const frame = FRAME.exec(line);
    if (frame) frames.push([frame[1], frame[2]]);
  }
  finish(comm, ms, frames);
  const bySelf = (a, b) => b.selfMs - a.selfMs || b.totalMs - a.totalMs;
  return { busyMs, idleMs: 0, samples, threads, groups: [...groups.values()].sort(bySelf), functions: [...functions.values()].sort(bySelf) };
}
