import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { Agent, request } from 'undici';
import { OverCap, errorCode, evenly, startOpenLoopRun } from '../src/lab/open-loop.js';
import type { OpenLoopRecord, OpenLoopRun, Schedule } from '../src/lab/open-loop.js';
import { deadPort, startOrigin, waitFor } from './helpers.js';
import type { Origin } from './helpers.js';

/** A server that holds every request until the test releases them, and notes the order they came in. */
async function holdingServer(): Promise<Origin & { arrived: string[]; release: () => void }> {
  const held: ServerResponse[] = [];
  const arrived: string[] = [];
  let holding = true;
  const origin = await startOrigin((req, res) => {
    arrived.push(req.url ?? '');
    if (holding) held.push(res);
    else res.end('ok');
  });
  return {
    ...origin,
    arrived,
    release: () => {
      holding = false;
      for (const res of held.splice(0)) res.end('ok');
    },
  };
}

describe('open-loop engine', () => {
  let origin: Awaited<ReturnType<typeof holdingServer>>;
  let agent: Agent;
  let run: OpenLoopRun<OpenLoopRecord> | undefined;
  beforeEach(async () => {
    origin = await holdingServer();
    agent = new Agent({ connections: null });
  });
  afterEach(async () => {
    origin.release();
    await run?.abort();
    run = undefined;
    await agent.close();
    await origin.close();
  });

  /** A run that GETs /<seq> from `port` and notes a failure by its code. */
  const start = (schedule: Schedule, durationMs: number, port = origin.port, maxOutstanding?: number): OpenLoopRun<OpenLoopRecord> =>
    startOpenLoopRun<OpenLoopRecord>({
      schedule,
      durationMs,
      ...(maxOutstanding === undefined ? {} : { maxOutstanding }),
      record: (times) => times,
      send: async (record, signal) => {
        const res = await request(`http://127.0.0.1:${port}/${record.seq}`, { dispatcher: agent, signal });
        await res.body.dump();
        record.status = res.statusCode;
      },
      failed: (record, err) => {
        record.failure = errorCode(err);
      },
    });

  it('evenly: ⌊duration × rate⌋ requests, 1000/rate ms apart, then none', () => {
    const s = evenly(40, 100);
    assert.deepEqual([0, 1, 2, 3, 4].map(s), [0, 25, 50, 75, undefined]);
    assert.equal(evenly(10, 99)(0), undefined);
  });

  it('sends each request at its due time while every earlier one is still open, in order; latency counts from the due time', async () => {
    const r = (run = start((seq) => (seq < 5 ? seq * 20 : undefined), 60_000));
    // The server answers none of them until all five have come: each left on its own due time.
    await waitFor(() => origin.arrived.length === 5, 10_000, 'five requests at the server');
    assert.equal(r.open(), 5);
    assert.ok(r.records.every((rec) => rec.endAt === 0), 'none ended before the server answered');
    origin.release();
    const records = await r.done;
    assert.deepEqual(origin.arrived, ['/0', '/1', '/2', '/3', '/4']);
    assert.deepEqual(records.map((rec) => [rec.seq, rec.dueAt, rec.status]), [0, 1, 2, 3, 4].map((i) => [i, i * 20, 200]));
    for (const rec of records) {
      assert.ok(rec.sentAt >= rec.dueAt, `request ${rec.seq} left before it was due`);
      assert.equal(rec.latencyMs, rec.endAt - rec.dueAt);
      assert.equal(rec.failure, undefined);
    }
  });

  it('sends nothing due at or after its duration, whatever the schedule says', async () => {
    origin.release();
    const records = await (run = start((seq) => seq * 10, 35)).done;
    assert.deepEqual(records.map((rec) => rec.dueAt), [0, 10, 20, 30]);
  });

  it('stop() ends the run: no more requests leave, open ones finish, the same promise every time', async () => {
    origin.release();
    const r = (run = start(evenly(200, 60_000), 60_000));
    await waitFor(() => r.records.filter((rec) => rec.endAt > 0).length >= 3, 10_000, 'three requests answered');
    const first = r.stop();
    assert.equal(r.stop(), first);
    assert.equal(r.done, first);
    const records = await first;
    const sent = records.length;
    assert.ok(sent < 60 * 200, `${sent} requests: the whole schedule left`);
    assert.ok(records.every((rec) => rec.endAt > 0 && rec.status === 200));
    assert.equal(await r.stop(), records);
    // Five more due times pass on the run's own clock: none of them sends.
    const stoppedAt = r.now();
    await waitFor(() => r.now() > stoppedAt + 25, 10_000, 'five due times after the stop');
    assert.equal(r.records.length, sent);
    assert.equal(origin.arrived.length, sent);
    assert.equal(r.open(), 0);
  });

  it('abort() cuts the open requests: each is recorded as failed, with its code', async () => {
    const r = (run = start((seq) => (seq < 3 ? 0 : undefined), 60_000));
    await waitFor(() => origin.arrived.length === 3, 10_000, 'three requests at the server');
    const records = await r.abort();
    assert.equal(await r.abort(), records);
    assert.deepEqual(records.map((rec) => rec.failure), ['AbortError', 'AbortError', 'AbortError']);
    assert.ok(records.every((rec) => rec.endAt > 0 && rec.status === undefined));
  });

  it('records a refused connection by its code', async () => {
    const records = await (run = start((seq) => (seq < 2 ? 0 : undefined), 60_000, await deadPort())).done;
    assert.deepEqual(records.map((rec) => rec.failure), ['ECONNREFUSED', 'ECONNREFUSED']);
  });

  it('over its cap on open requests, ends a due request at once without sending it (OverCap)', async () => {
    const r = (run = start((seq) => (seq < 4 ? 0 : undefined), 60_000, origin.port, 2));
    await waitFor(() => origin.arrived.length === 2, 10_000, 'two requests at the server');
    assert.deepEqual(r.records.map((rec) => rec.failure), [undefined, undefined, 'OPEN_LOOP_OVER_CAP', 'OPEN_LOOP_OVER_CAP']);
    assert.equal(r.open(), 2);
    origin.release();
    const records = await r.done;
    assert.deepEqual(records.map((rec) => rec.status), [200, 200, undefined, undefined]);
    assert.deepEqual(origin.arrived, ['/0', '/1']);
    assert.equal(new OverCap(2).code, 'OPEN_LOOP_OVER_CAP');
  });
});
