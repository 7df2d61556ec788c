/**
 * e2e/load/chaos.ts (`make chaos`): bad flags are refused with exit 2 and a usage line before it
 * touches Docker or sends a single request.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../scripts/cluster-lib.mjs';
import { delaysFromEnv, describeDelays, expectedByPath, MIXED_IMAGES } from '../load/delays.js';
import { describeStream, eventTable, eventWindow, type EventOutcome } from '../load/events.js';
import type { LoadRun, RequestRecord } from '../load/open-loop.js';
import { perSecond } from '../load/report.js';

const CHAOS = join(REPO_ROOT, 'e2e', 'load', 'chaos.ts');

const chaos = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', CHAOS, ...args], { cwd: REPO_ROOT, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });

describe('make chaos (e2e/load/chaos.ts)', function () {
  this.timeout(60_000);

  it('prints its usage with --help and exits 0', async () => {
    const r = await chaos('--help');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /usage: chaos \[--rate N\] \[--events scale-up,scale-down,restart,upgrade,stall,kill\]/);
  });

  it('refuses a bad rate, an unknown event and an unknown flag with exit 2, naming the problem', async () => {
    const rate = await chaos('--rate', 'lots');
    assert.equal(rate.code, 2);
    assert.match(rate.stderr, /--rate must be a whole number 1-2000, got lots/);
    const event = await chaos('--events', 'restart,explode');
    assert.equal(event.code, 2);
    assert.match(event.stderr, /unknown event explode/);
    const flag = await chaos('--fast');
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /Unknown option '--fast'/);
  });
});

describe('make chaos: the backends\' delays, read from their environment', () => {
  it('a default backend (BACKEND_DELAYS_MS passed empty, scale 1) takes the seed\'s 1, 3, 5 and 10 s', () => {
    const delays = delaysFromEnv(['PATH=/usr/bin', 'BACKEND_DELAY_SCALE=1', 'BACKEND_DELAYS_MS=', 'BACKEND_PORT=8002']);
    assert.deepEqual(delays, { scale: 1, imageMs: [1000, 3000, 5000, 10_000] });
    assert.equal(describeDelays(delays), 'delay scale 1: /images/1..4 take 1.00 s, 3.00 s, 5.00 s, 10.00 s');
    assert.deepEqual(expectedByPath(delays), { '/images/1': 1000, '/images/2': 3000, '/images/3': 5000, '/images/4': 10_000 });
  });

  it('the Compose suite\'s backends (scale 0.01) take 1, 150, 250 and 3000 ms, rounded as the backend rounds', () => {
    assert.deepEqual(delaysFromEnv(['BACKEND_DELAY_SCALE=0.01', 'BACKEND_DELAYS_MS=100,15000,25000,300000']).imageMs, [1, 150, 250, 3000]);
    assert.deepEqual(delaysFromEnv(['BACKEND_DELAY_SCALE=0.333', 'BACKEND_DELAYS_MS=1,10,100,1000']).imageMs, [0, 3, 33, 333]);
    assert.deepEqual(delaysFromEnv([]), { scale: 1, imageMs: [1000, 3000, 5000, 10_000] });
  });

  it('an environment the backend would refuse is an error, not a guess', () => {
    assert.throws(() => delaysFromEnv(['BACKEND_DELAY_SCALE=fast']), /BACKEND_DELAY_SCALE/);
  });
});

/** A finished request of `path`, due at `dueAt`, `latencyMs` long, its expected time known. */
const done = (seq: number, path: string, dueAt: number, latencyMs: number, expectedMs: number, failure?: { status: number; detail: string }): RequestRecord => ({
  seq,
  path,
  dueAt,
  sentAt: dueAt,
  endAt: dueAt + latencyMs,
  latencyMs,
  expectedMs,
  ...(failure === undefined ? { ok: true, status: 200, replica: 'b1:8002' } : { ok: false, status: failure.status, failure: 'status' as const, detail: failure.detail }),
});

describe('make chaos: the event window and the table', () => {
  // A scale-down at t = 5 s under the seed's delays: the 10 s images sent before it are the ones
  // the leaving replicas hold.
  const expected = expectedByPath(delaysFromEnv([]));
  const records = [
    done(0, '/images/1', 0, 1_010, 1_000),
    done(1, '/images/4', 1_000, 10_020, 10_000, { status: 504, detail: '504 LB_UPSTREAM_TIMEOUT' }),
    done(2, '/images/4', 2_000, 10_010, 10_000),
    done(3, '/images/2', 5_500, 3_900, 3_000),
    done(4, '/images/1', 6_000, 1_005, 1_000),
    done(5, '/images/3', 6_500, 5_010, 5_000),
  ];
  const run: LoadRun = { options: { origin: 'http://127.0.0.1:8080', ratePerSecond: 20, durationMs: 7_000, paths: MIXED_IMAGES, expectedMs: expected }, startedAtEpoch: 0, records, marks: [{ label: 'event', at: 5_000 }] };

  it('the window holds the requests due from the event on and those still open when it began', () => {
    const w = eventWindow(records, 5_000, 6_501);
    assert.equal(w.requests, 5);
    assert.equal(w.failed, 1);
    assert.equal(w.slow, 1);
  });

  it('describeStream gives the rate, the paths and their expected times', () => {
    assert.equal(describeStream(run.options), '20 GET/s, /images/1..4 (1.00 s–10.00 s)');
    assert.equal(describeStream({ origin: 'http://127.0.0.1:8080', ratePerSecond: 200, durationMs: 1, paths: ['/images/1'], expectedMs: { '/images/1': 1 } }), '200 GET/s, /images/1 (1 ms)');
    assert.equal(describeStream({ origin: 'http://127.0.0.1:8080', ratePerSecond: 200, durationMs: 1, paths: ['/a', '/b'] }), '200 GET/s, /a /b');
  });

  it('one row per event: its stream, failures by status and code, slow beyond the expected time', () => {
    const window = eventWindow(records, 5_000, 6_501);
    const outcome: EventOutcome = {
      name: 'scale 6→2',
      run,
      window,
      delays: delaysFromEnv([]),
      seconds: perSecond(records).filter((s) => s.second >= 5).map((s) => ({ second: s.second, web: s })),
      actionMs: 11_200,
    };
    const table = eventTable([outcome]);
    console.log(`      sample:\n${table.replace(/^/gm, '        ')}`);
    const lines = table.split('\n');
    assert.match(lines[0] ?? '', /^slow: more than 500 ms beyond the request's expected time/);
    assert.match(lines[2] ?? '', /^\| event \| stream \(expected\) \| requests \| failed \| slow \|.*\| \+p99 \| \+max \|/);
    assert.equal(
      lines[4],
      '| scale 6→2 | 20 GET/s, /images/1..4 (1.00 s–10.00 s) | 5 | 1 failed: 504 LB_UPSTREAM_TIMEOUT ×1 | 1 | 0 | 5.01 s | 10.02 s | 10.02 s | 900 ms | 900 ms | 900 ms | 0 ms | command 11.20 s |',
    );
  });
});
