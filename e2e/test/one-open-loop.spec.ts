/**
 * One open-loop engine (issue 23, point 6): the lab, the end-to-end load tool and the fault tests
 * all send through services/balancer/src/lab/open-loop.ts. A second scheduler, the kind each of
 * them once had, turns a rate into due times or compares due times with a clock, and arms a timer
 * to send the next ones; this spec finds that shape in any source file but the engine.
 */
import assert from 'node:assert/strict';
import { globSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../scripts/cluster-lib.mjs';

const ENGINE = 'services/balancer/src/lab/open-loop.ts';

/** A rate turned into time: 1000 / rate, or rate … / 1000. */
const RATE_TO_TIME = /\b1000\s*\/\s*[\w$.]*(?:rate|persecond)\w*\b|(?:rate|persecond)\w*\)?\s*\/\s*1000\b/i;
/** A due time held against a clock reading: `due > t`, `a.at > now`, `elapsed >= dueAt`. */
const DUE_VS_CLOCK = /\b[\w$.]*(?:due|\.at)\w*\s*(?:<=?|>=?)\s*(?:now|elapsed|t)\b|\b(?:now|elapsed|t)\s*(?:<=?|>=?)\s*[\w$.]*(?:due|\.at)\w*\b/i;
const TIMER = /\b(?:setTimeout|setInterval|setImmediate)\s*\(|timers\/promises/;

/** Whether a file's text schedules requests itself. */
export function isOpenLoopScheduler(text: string): boolean {
  return (RATE_TO_TIME.test(text) || DUE_VS_CLOCK.test(text)) && TIMER.test(text);
}

describe('one open-loop engine', () => {
  it('knows the schedulers the lab, e2e/load and the fault table had before the engine, and not a schedule or a test clock', () => {
    // Condensed from each one as it was (git history of runner.ts, e2e/load/open-loop.ts, fault-table.soak.ts);
    // the timer's name is put in apart so that this file's own examples are no hit when it scans itself.
    const setTimer = 'setTimeout';
    const lab = `const now = performance.now() - t0;\nif (a === undefined || a.at > now) break;\nsend(a);\ntimer = ${setTimer}(tick, Math.max(0, upcoming.at - now));`;
    const e2e = `const intervalMs = 1000 / options.ratePerSecond;\nwhile (next < total && next * intervalMs <= t) send(next);\ntimer = ${setTimer}(tick, 5);`;
    const faultTable = `const due = Math.floor((elapsed * RATE) / 1000) + 1;\nwhile (tally.sent < due) one();\nawait new Promise((resolve) => ${setTimer}(resolve, 5));`;
    for (const [name, text] of Object.entries({ lab, e2e, faultTable })) assert.ok(isOpenLoopScheduler(text), name);
    // A seeded schedule computed up front (traffic.ts) has no timer; a fake clock in a test compares but sends nothing.
    assert.equal(isOpenLoopScheduler('const meanGap = 1000 / spec.rate;\nt += gap;'), false);
    assert.equal(isOpenLoopScheduler('const due = events.filter((e) => e.at <= now);'), false);
  });

  it(`no source file but ${ENGINE} schedules open-loop requests`, () => {
    const files = globSync('{services,e2e,frontend,scripts,bench}/**/*.{ts,mts,js,mjs}', {
      cwd: REPO_ROOT,
      exclude: (name) => ['node_modules', 'dist', 'artifacts', 'results', 'coverage'].includes(name),
    });
    assert.ok(files.includes(ENGINE) && files.length > 100, `${files.length} files, the engine among them`);
    const schedulers = files.filter((f) => isOpenLoopScheduler(readFileSync(join(REPO_ROOT, f), 'utf8')));
    assert.deepEqual(schedulers, [ENGINE], 'send through the engine (startOpenLoopRun) with a thin adapter instead');
  });
});
