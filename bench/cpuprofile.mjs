// Reads a V8 .cpuprofile (node --cpu-prof) and says where the CPU went: self and total time per
// group of functions (our files one by one, undici, node:http, timers, GC...) and per function.
// Pure: bench/profile.mjs does the I/O.
//
// Self time goes to the innermost frame that has a source (a native function such as `writev` or
// the HTTP parser's `execute` is charged to the JavaScript that called it); total time counts a
// sample once for every group (or function) anywhere on its stack.
//
// V8 samples on the wall clock: a thread descheduled inside a system call (a write that wakes its
// reader) keeps being charged to that call. On a busy machine bench/perf-script.mjs (perf, on-CPU
// samples only) is the truer view; this one needs nothing but node.
import { functionKey, groupOf } from './profile-groups.mjs';

/**
 * Sums the profile over samples taken in [fromUs, toUs] (V8's monotonic clock, the same as
 * process.hrtime on Linux; undefined = the whole profile). Returns milliseconds:
 * { busyMs, idleMs, samples, groups: [{ group, selfMs, totalMs }], functions: [{ name, group, selfMs, totalMs }] }
 * sorted by self time (a function's group is its own frame's, 'native' for one without a source);
 * shares are of busyMs (every sample but idle ones).
 */
export function summariseProfile(profile, fromUs = -Infinity, toUs = Infinity) {
  const nodes = new Map();
  for (const node of profile.nodes) nodes.set(node.id, { ...node, parent: undefined });
  for (const node of nodes.values()) for (const child of node.children ?? []) nodes.get(child).parent = node;

  const groups = new Map();
  const functions = new Map();
  const add = (map, key, field, ms, extra) => {
    let entry = map.get(key);
    if (entry === undefined) map.set(key, (entry = { ...extra, selfMs: 0, totalMs: 0 }));
    entry[field] += ms;
  };

  let t = profile.startTime;
  let busyMs = 0;
  let idleMs = 0;
  let counted = 0;
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i];
    if (t < fromUs || t > toUs) continue;
    // A sample stands for the time until the next one.
    const ms = (timeDeltas[i + 1] ?? timeDeltas[i]) / 1000;
    const leaf = nodes.get(samples[i]);
    if (leaf.callFrame.functionName === '(idle)') {
      idleMs += ms;
      continue;
    }
    busyMs += ms;
    counted++;
    let selfGroup;
    const seenGroups = new Set();
    const seenFunctions = new Map();
    for (let n = leaf; n !== undefined && n.callFrame.functionName !== '(root)'; n = n.parent) {
      const { url, functionName } = n.callFrame;
      const group = groupOf(url, functionName);
      if (group !== null) {
        selfGroup ??= group;
        seenGroups.add(group);
      }
      seenFunctions.set(functionKey(n.callFrame.functionName, n.callFrame.url, n.callFrame.lineNumber + 1), group ?? 'native');
    }
    add(groups, selfGroup ?? 'native, no JS caller', 'selfMs', ms, { group: selfGroup ?? 'native, no JS caller' });
    for (const g of seenGroups) add(groups, g, 'totalMs', ms, { group: g });
    add(functions, functionKey(leaf.callFrame.functionName, leaf.callFrame.url, leaf.callFrame.lineNumber + 1), 'selfMs', ms, { name: functionKey(leaf.callFrame.functionName, leaf.callFrame.url, leaf.callFrame.lineNumber + 1), group: seenFunctions.get(functionKey(leaf.callFrame.functionName, leaf.callFrame.url, leaf.callFrame.lineNumber + 1)) });
    for (const [f, group] of seenFunctions) add(functions, f, 'totalMs', ms, { name: f, group });
  }
  const bySelf = (a, b) => b.selfMs - a.selfMs || b.totalMs - a.totalMs;
  return { busyMs, idleMs, samples: counted, groups: [...groups.values()].sort(bySelf), functions: [...functions.values()].sort(bySelf) };
}
