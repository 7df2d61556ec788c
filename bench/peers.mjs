// How should balancers tell each other their in-flight counts (issue 25)? This measures the
// candidates on one machine, at the rates considered: the CPU each report costs its sender and its
// receiver, and how stale the receiver's copy is (the age of the newest report it holds, at any
// instant), per transport:
//
//   udp          one datagram per report, from the receiver's bound socket (what the balancer does)
//   http-post    one POST per report over a keep-alive undici Pool, to a Koa route (the admin port)
//   http-stream  one long chunked POST per peer, one line per report (node:http)
//
// Each sender and receiver is a process of its own (this file, `--role`), so CPU is attributable;
// an idle process with the same timer is measured beside them and subtracted. The report is the
// balancer's own encoding (services/balancer/src/peers/report.ts, through Node's type stripping),
// decoded and summed per upstream as the balancer does. Staleness is measured on the monotonic
// clock shared by processes: between two arrivals the receiver holds the earlier report, whose age
// grows from its delivery time to the next arrival; "mean" is that age averaged over time, "max"
// its worst value (a late timer included).
//
// Run: node bench/peers.mjs   (~2 min; writes nothing, prints a Markdown table for bench/PEERS.md)
// Settings: BENCH_PEERS_INTERVALS (ms, default 10,20,50), BENCH_PEERS_SECONDS (measured seconds per
// run, default 10), BENCH_PEERS_UPSTREAMS (non-zero counts per report, default 12),
// BENCH_PEERS_TRANSPORTS (default udp,http-post,http-stream).
import { fork } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import Koa from 'koa';
import Router from '@koa/router';
import { Pool } from 'undici';
import { decodeReport, encodeReport } from '../services/balancer/src/peers/report.ts';

const TRANSPORTS = ['udp', 'http-post', 'http-stream'];
const WARM_UP_MS = 1000;

const nowNs = () => process.hrtime.bigint();

// ---------------------------------------------------------------------------------------------
// child roles

/** What a measured child does between `start` and `stop`: CPU used, and its own samples. */
function measured(extra) {
  let from;
  process.on('message', (msg) => {
    if (msg.type === 'start') {
      extra.reset();
      from = process.cpuUsage();
      process.send({ type: 'started' });
    } else if (msg.type === 'stop') {
      const used = process.cpuUsage(from);
      process.send({ type: 'result', cpuUs: used.user + used.system, ...extra.result() });
    }
  });
}

/** The receiver: decodes each report and sums its counts into a table, as the balancer does. */
async function receiver(transport) {
  const table = new Map();
  let arrivals = [];
  const apply = (bytes) => {
    const at = nowNs();
    const report = decodeReport(bytes);
    if (typeof report === 'string') throw new Error(`bad report: ${report}`);
    table.clear();
    for (const [id, n] of report.inFlight) table.set(id, (table.get(id) ?? 0) + n);
    arrivals.push([report.seq, String(at)]);
  };
  measured({ reset: () => { arrivals = []; }, result: () => ({ arrivals }) });
  let port;
  if (transport === 'udp') {
    const socket = createSocket('udp4');
    socket.on('message', (msg) => { apply(msg); });
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    port = socket.address().port;
  } else if (transport === 'http-post') {
    const app = new Koa();
    const router = new Router();
    router.post('/api/peers/report', async (ctx) => {
      const chunks = [];
      let size = 0;
      for await (const c of ctx.req) {
        size += c.length;
        if (size > 16_384) ctx.throw(413);
        chunks.push(c);
      }
      apply(Buffer.concat(chunks));
      ctx.status = 204;
    });
    app.use(router.routes());
    const server = createServer(app.callback());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = server.address().port;
  } else {
    const server = createServer((req, res) => {
      let pending = '';
      req.setEncoding('utf8');
      req.on('data', (text) => {
        pending += text;
        let at;
        while ((at = pending.indexOf('\n')) >= 0) {
          apply(Buffer.from(pending.slice(0, at)));
          pending = pending.slice(at + 1);
        }
      });
      req.on('end', () => res.end());
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = server.address().port;
  }
  process.send({ type: 'ready', port });
}

/** The sender: encodes its counts and sends them every `intervalMs`. */
async function sender(transport, port, intervalMs, upstreams) {
  let sent = [];
  measured({ reset: () => { sent = []; }, result: () => ({ sent }) });
  const counts = new Map(Array.from({ length: upstreams }, (_, i) => [`172.18.0.${10 + i}:8002`, 1 + (i % 4)]));
  let seq = 0;
  let send;
  if (transport === 'udp') {
    const socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    send = (bytes) => { socket.send(bytes, port, '127.0.0.1'); };
  } else if (transport === 'http-post') {
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 1, pipelining: 1 });
    send = (bytes) => {
      pool.request({ method: 'POST', path: '/api/peers/report', body: bytes, headers: { 'content-type': 'application/json' } })
        .then((res) => res.body.dump())
        .catch((err) => { console.error(err); });
    };
  } else {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: { 'content-type': 'application/x-ndjson' } });
    req.on('error', (err) => { console.error(err); });
    req.flushHeaders();
    const newline = Buffer.from('\n');
    send = (bytes) => { req.write(Buffer.concat([bytes, newline])); };
  }
  setInterval(() => {
    seq++;
    // The counts move a little, as live ones do.
    const id = `172.18.0.${10 + (seq % upstreams)}:8002`;
    counts.set(id, (counts.get(id) ?? 0) % 5 + 1);
    const { bytes } = encodeReport('0123456789abcdef', seq, counts);
    sent.push([seq, String(nowNs())]);
    send(bytes);
  }, intervalMs);
  process.send({ type: 'ready' });
}

/** The baseline: the same timer doing nothing. */
function idle(intervalMs) {
  measured({ reset: () => undefined, result: () => ({}) });
  setInterval(() => undefined, intervalMs);
  process.send({ type: 'ready' });
}

// ---------------------------------------------------------------------------------------------
// the harness

function spawn(args) {
  const child = fork(new URL(import.meta.url), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = (type) => new Promise((resolve, reject) => {
    const onMessage = (msg) => {
      if (msg.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(msg);
    };
    const onExit = (code) => { reject(new Error(`child ${args.join(' ')} exited (${code}) before ${type}`)); };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
  return { child, next };
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))] ?? NaN;

/** Delivery latency and time-averaged staleness from the sender's and receiver's samples. */
function staleness(sent, arrivals) {
  const sentAt = new Map(sent.map(([seq, ns]) => [seq, BigInt(ns)]));
  const got = arrivals.map(([seq, ns]) => ({ seq, at: BigInt(ns), sent: sentAt.get(seq) })).filter((a) => a.sent !== undefined);
  const ms = (ns) => Number(ns) / 1e6;
  const delivery = got.map((a) => ms(a.at - a.sent)).sort((a, b) => a - b);
  let area = 0;
  let span = 0;
  let max = 0;
  for (let i = 0; i + 1 < got.length; i++) {
    const a = got[i];
    const b = got[i + 1];
    const ageAtArrival = ms(a.at - a.sent);
    const ageBeforeNext = ms(b.at - a.sent);
    const gap = ms(b.at - a.at);
    area += gap * (ageAtArrival + ageBeforeNext) / 2;
    span += gap;
    max = Math.max(max, ageBeforeNext);
  }
  const lost = sent.length - got.length;
  return { reports: got.length, lost, deliveryP50: pct(delivery, 0.5), deliveryP99: pct(delivery, 0.99), meanAge: span === 0 ? NaN : area / span, maxAge: max };
}

async function run(transport, intervalMs, seconds, upstreams) {
  const rx = spawn(['--role', 'receiver', '--transport', transport]);
  const { port } = await rx.next('ready');
  const tx = spawn(['--role', 'sender', '--transport', transport, '--port', String(port), '--interval', String(intervalMs), '--upstreams', String(upstreams)]);
  const base = spawn(['--role', 'idle', '--interval', String(intervalMs)]);
  await Promise.all([tx.next('ready'), base.next('ready')]);
  await new Promise((resolve) => setTimeout(resolve, WARM_UP_MS));
  const all = [rx, tx, base];
  const started = all.map((p) => p.next('started'));
  for (const p of all) p.child.send({ type: 'start' });
  await Promise.all(started);
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const results = all.map((p) => p.next('result'));
  for (const p of all) p.child.send({ type: 'stop' });
  const [r, t, b] = await Promise.all(results);
  const measuredS = (performance.now() - t0) / 1000;
  for (const p of all) p.child.kill();
  const stale = staleness(t.sent, r.arrivals);
  const perSecond = (us) => us / 1000 / measuredS; // ms of CPU per second
  const baseline = perSecond(b.cpuUs);
  const senderMs = perSecond(t.cpuUs) - baseline;
  const receiverMs = perSecond(r.cpuUs) - baseline;
  const reportsPerSecond = t.sent.length / measuredS;
  return {
    transport, intervalMs, baselineMsPerS: baseline, senderMsPerS: senderMs, receiverMsPerS: receiverMs,
    senderUsPerReport: (senderMs * 1000) / reportsPerSecond, receiverUsPerReport: (receiverMs * 1000) / reportsPerSecond,
    bytes: encodeReport('0123456789abcdef', 1, Array.from({ length: upstreams }, (_, i) => [`172.18.0.${10 + i}:8002`, 3])).bytes.length,
    ...stale,
  };
}

function list(name, fallback) {
  return (process.env[name] ?? fallback).split(',').map((s) => s.trim()).filter((s) => s !== '');
}

async function main() {
  const intervals = list('BENCH_PEERS_INTERVALS', '10,20,50').map(Number);
  const transports = list('BENCH_PEERS_TRANSPORTS', TRANSPORTS.join(','));
  const seconds = Number(process.env.BENCH_PEERS_SECONDS ?? 10);
  const upstreams = Number(process.env.BENCH_PEERS_UPSTREAMS ?? 12);
  const bad = [...intervals.filter((i) => !Number.isInteger(i) || i < 1).map((i) => `interval ${i}`), ...transports.filter((t) => !TRANSPORTS.includes(t)).map((t) => `transport ${t}`)];
  if (!(seconds > 0) || !(Number.isInteger(upstreams) && upstreams > 0)) bad.push('BENCH_PEERS_SECONDS / BENCH_PEERS_UPSTREAMS');
  if (bad.length > 0) {
    console.error(`bench/peers.mjs: bad settings: ${bad.join(', ')}`);
    process.exit(2);
  }
  const rows = [];
  for (const intervalMs of intervals) {
    // Interleaved: the transports of one rate run back to back under the same machine conditions.
    for (const transport of transports) {
      const row = await run(transport, intervalMs, seconds, upstreams);
      console.error(`${transport} every ${intervalMs} ms: sender ${row.senderMsPerS.toFixed(2)} ms/s, receiver ${row.receiverMsPerS.toFixed(2)} ms/s, mean age ${row.meanAge.toFixed(1)} ms`);
      rows.push(row);
    }
  }
  const f = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
  console.log(`- Date: ${new Date().toISOString()}; Node ${process.version}; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}); load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end`);
  console.log(`- ${seconds} s measured per run after ${WARM_UP_MS} ms of warm-up; ${upstreams} upstreams with requests in flight in each report (${rows[0]?.bytes ?? '?'} bytes); one sender, one receiver, 127.0.0.1`);
  console.log(`- CPU: ms of CPU per second of wall time (user + system), less an idle Node process with the same timer (${rows.map((r) => f(r.baselineMsPerS, 2)).join(', ')} ms/s)`);
  console.log('');
  console.log('| transport | every | sender CPU ms/s | receiver CPU ms/s | sender µs/report | receiver µs/report | delivery p50 / p99 ms | age of the copy: mean / max ms | lost |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.transport} | ${r.intervalMs} ms | ${f(r.senderMsPerS, 2)} | ${f(r.receiverMsPerS, 2)} | ${f(r.senderUsPerReport, 0)} | ${f(r.receiverUsPerReport, 0)} | ${f(r.deliveryP50, 2)} / ${f(r.deliveryP99, 2)} | ${f(r.meanAge)} / ${f(r.maxAge)} | ${r.lost} of ${r.reports + r.lost} |`);
  }
}

const { values } = parseArgs({ options: { role: { type: 'string' }, transport: { type: 'string' }, port: { type: 'string' }, interval: { type: 'string' }, upstreams: { type: 'string' } } });
if (values.role === 'receiver') await receiver(values.transport);
else if (values.role === 'sender') await sender(values.transport, Number(values.port), Number(values.interval), Number(values.upstreams));
else if (values.role === 'idle') idle(Number(values.interval));
else await main();
