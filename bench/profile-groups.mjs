// How the profile summaries (bench/cpuprofile.mjs, bench/perf-script.mjs) name and group the
// functions they find: our files one by one, undici by part, node:http, streams, timers...

/** The group of a frame with a source URL, or null for a frame without one (native, builtin). */
export function groupOf(url, functionName) {
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return 'V8 / native, no JS on the stack';
  if (url === '') return null;
  const ours = /\/services\/balancer\/(?:dist|src)\/(.+)\.[jt]s$/.exec(url);
  if (ours) return `ours: ${ours[1]}`;
  if (url.endsWith('/bench/plain-proxy.mjs')) return 'plain-proxy.mjs';
  if (url.startsWith('wasm://')) return 'undici: llhttp (wasm)';
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url);
  if (pkg) {
    const [, name, path] = pkg;
    if (name === 'undici') {
      if (path.startsWith('lib/dispatcher/client-h1')) return 'undici: client-h1 (HTTP/1 writer, parser glue)';
      if (path.startsWith('lib/api/')) return 'undici: api (pool.stream)';
      if (path.startsWith('lib/core/request')) return 'undici: core/request';
      return 'undici: pool, dispatch, util';
    }
    if (['pino', 'thread-stream', 'sonic-boom', 'pino-std-serializers'].includes(name)) return 'pino';
    if (name === 'koa' || name.startsWith('@koa/')) return 'koa (admin)';
    return name;
  }
  const node = /^node:(.+)$/.exec(url);
  if (node) {
    const mod = node[1];
    if (/^_http_(server|incoming)/.test(mod)) return 'node:http server, incoming';
    if (mod.startsWith('_http_outgoing')) return 'node:http outgoing (writeHead, write, end)';
    if (mod.startsWith('_http_common')) return 'node:http parser glue';
    if (mod === 'net' || mod.startsWith('internal/stream_base_commons') || mod.startsWith('internal/net')) return 'node:net sockets';
    if (mod.startsWith('internal/streams')) return 'node streams';
    if (mod === 'events' || mod.startsWith('internal/event_target') || mod.startsWith('internal/events')) return 'events';
    if (mod.startsWith('internal/timers') || mod === 'timers') return 'timers';
    if (mod.startsWith('internal/process/task_queues') || mod.startsWith('internal/process/promises')) return 'nextTick, microtasks';
    if (mod.includes('async_hooks') || mod.includes('async_context')) return 'async hooks';
    if (mod.includes('perf')) return 'perf_hooks';
    if (mod.includes('crypto')) return 'crypto';
    if (mod.includes('worker') || mod.includes('per_context/messageport')) return 'worker messaging';
    return `node: other (${mod.split('/').slice(0, 2).join('/')})`;
  }
  return `other (${url.split('/').pop()})`;
}

/** `name file:line` of a JavaScript function, as the tables show it (`line` is 1-based). */
export function functionKey(name, url, line) {
  const file = url === '' ? '[native]' : `${url.replace(/^.*\/(node_modules\/|services\/balancer\/(?:dist|src)\/|bench\/)/, '')}:${line}`;
  return `${name || '(anonymous)'} ${file}`;
}
