/**
 * Run by worker-reports.spec.ts in a process of its own (worker threads need reusePort): a balancer with two
 * data-path threads whose upstream is replaced, cycle after cycle, by a newcomer that takes over
 * its counter slot right after the worker let go of it. Requests go only to the old upstreams;
 * prints, as one JSON line, the newcomers the live view says were chosen anyway.
 */
import { get } from 'node:http';
import type { Config } from '../src/config.js';
import { startBalancer, startOrigin, testConfig } from './helpers.js';
import type { Origin } from './helpers.js';

const CYCLES = 6;

function fetchOnNewConnection(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      res.resume().on('end', resolve);
    }).on('error', reject);
  });
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

const origins: Origin[] = [];
const origin = async (): Promise<Origin> => {
  const o = await startOrigin((_req, res) => res.end('ok'));
  origins.push(o);
  return o;
};

const first = await origin();
const config: Config = { ...testConfig([first.port]), workers: 2, tieBreak: 'rotation' };
const lb = await startBalancer(config);
const { registry } = lb.balancer;
const misattributed: string[] = [];
let reusedSlots = 0;
let current = first;
try {
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const old = registry.get(`127.0.0.1:${current.port}`);
    if (old === undefined) throw new Error('the upstream is not in the registry');
    // Connections of their own, so the kernel hands some to the worker thread.
    await Promise.all(Array.from({ length: 8 }, () => fetchOnNewConnection(`${lb.url}/`)));
    // Gone at once (idle); its slot is free as soon as the worker has let go of it.
    registry.sync('static', []);
    await sleep(10);
    const next = await origin();
    registry.sync('static', [{ host: '127.0.0.1', port: next.port, weight: 1 }]);
    const newcomer = registry.get(`127.0.0.1:${next.port}`);
    if (newcomer?.slot === old.slot) reusedSlots++;
    // Longer than the worker's report interval (100 ms): every batch has arrived.
    await sleep(250);
    if (newcomer !== undefined && lb.balancer.snapshot().decisions.some((d) => d.chosen === newcomer.id)) misattributed.push(newcomer.id);
    current = next;
  }
} finally {
  await lb.balancer.stop();
  await Promise.all(origins.map((o) => o.close()));
}
process.stdout.write(`${JSON.stringify({ workers: lb.balancer.workers, reusedSlots, misattributed })}\n`);
