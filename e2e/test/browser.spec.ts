/**
 * The page in Chromium against the real cluster of `npm start` (built backends, balancer and the
 * launcher's page server on free ports): the image button, a load burst seen live, a backend killed,
 * the balancer restarted, a phone screen, and no console errors along the way.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { DESKTOP, PHONE, axisLabelProblems, launchChromium } from './chromium.js';
import { REPO_ROOT, freePorts, missingBuild, startCluster, type Cluster } from '../../scripts/cluster-lib.mjs';
import { createUiServer, type UiServer } from '../../scripts/static-server.mjs';

const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const REASONS = ['only-candidate', 'least-loaded', 'tie-rotation', 'tie-random', 'tie-latency'];
const WAITING = 'Waiting for server response...';
const FAILED = 'Error occurred, try again';


/** Collects console errors and uncaught exceptions of a page. */
function watchProblems(page: Page, problems: string[]): void {
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
}

/** The text of every row's in-flight value, by upstream id. */
async function inFlightByUpstream(page: Page): Promise<Record<string, number>> {
  return page.$$eval('[data-testid="upstream-row"]', (rows) =>
    Object.fromEntries(rows.map((r) => [r.getAttribute('data-upstream') ?? '', Number(r.getAttribute('data-in-flight'))])),
  );
}

describe('the page against a real cluster', function () {
  this.timeout(60_000);
  let cluster: Cluster | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  const problems: string[] = [];
  /** Console messages a test expects (e.g. the 404 it provoked); reset after every test. */
  let expected: RegExp[] = [];

  before(async function () {
    this.timeout(120_000);
    const missing = missingBuild();
    if (missing.length) throw new Error(`run \`npm run build\` first (missing ${missing.join(', ')})`);
    await mkdir(ARTIFACTS, { recursive: true });
    // Images take 50-500 ms instead of 1-10 s; explain on for X-Lb-Decision.
    cluster = await startCluster({ backends: 4, basePort: 0, balancerPort: 0, adminPort: 0, uiPort: 0, delayScale: 0.05 });
    browser = await launchChromium(this);
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, colorScheme: 'dark' });
    page = await context.newPage();
    watchProblems(page, problems);
  });

  /** Ends every test: no console error or uncaught exception other than the ones it expects. */
  function assertNoConsoleErrors(): void {
    const unexpected = problems.filter((p) => !expected.some((re) => re.test(p)));
    assert.deepEqual(unexpected, [], 'console errors');
  }

  afterEach(() => {
    problems.length = 0;
    expected = [];
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await cluster?.stop();
  });

  it('shows every backend live, up, with its weight', async () => {
    assert.ok(cluster);
    const res = await page.goto(cluster.urls.ui);
    assert.equal(res?.status(), 200);
    await page.waitForSelector('#connection[data-state="live"]');
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="upstream-row"]').length === n, cluster.upstreams.length);
    const rows = await page.$$eval('[data-testid="upstream-row"]', (els) =>
      els.map((r) => ({
        id: r.getAttribute('data-upstream'),
        state: r.querySelector('[data-testid="state"]')?.textContent,
        weight: r.querySelector('[data-testid="weight"]')?.textContent,
        inFlight: r.querySelector('[data-testid="in-flight"]')?.textContent,
      })),
    );
    assert.deepEqual(rows.map((r) => r.id).sort(), [...cluster.upstreams].sort());
    for (const r of rows) assert.deepEqual([r.state, r.weight, r.inFlight], ['up', '1', '0'], JSON.stringify(r));
    assert.equal(await page.textContent('#kpi-available'), '4 / 4');
    assert.equal(await page.textContent('#explain'), 'on');
    assert.equal(await page.textContent('#connection-text'), 'Live');
    assertNoConsoleErrors();
  });

  it('updates the live view at least five times a second', async () => {
    // The footer shows the time of the last snapshot: count how often it changes in 2 s.
    const changes = await page.evaluate(
      () =>
        new Promise<number>((ok) => {
          const el = document.getElementById('last-update');
          if (!el) {
            ok(0);
            return;
          }
          const seen = new Set<string>();
          const obs = new MutationObserver(() => seen.add(el.textContent));
          obs.observe(el, { childList: true, characterData: true, subtree: true });
          setTimeout(() => {
            obs.disconnect();
            ok(seen.size);
          }, 2000);
        }),
    );
    assert.ok(changes >= 10, `only ${changes} updates in 2 s`);
    assertNoConsoleErrors();
  });

  it('fetches an image through the balancer and names the backend that served it', async () => {
    assert.ok(cluster);
    // Record every status text, so the short "waiting" phase cannot slip between two polls.
    await page.evaluate(() => {
      const el = document.getElementById('image-status');
      const texts: string[] = [];
      (window as unknown as { statusTexts: string[] }).statusTexts = texts;
      if (el) new MutationObserver(() => texts.push(el.textContent)).observe(el, { childList: true, characterData: true, subtree: true });
    });
    // Row heights while no backend id is known yet: learning one must not make its row grow.
    const heights = (): Promise<Record<string, number>> =>
      page.$$eval('[data-testid="upstream-row"]', (rows) => Object.fromEntries(rows.map((r) => [r.getAttribute('data-upstream') ?? '', r.getBoundingClientRect().height])));
    const before = await heights();
    assert.deepEqual(await page.$$eval('[data-testid="backend-id"]', (els) => els.map((e) => e.textContent)), ['', '', '', '']);
    await page.getByRole('button', { name: 'Fetch a random image' }).click();
    await page.waitForSelector('#image-status[data-state="ok"]');
    const texts = await page.evaluate(() => (window as unknown as { statusTexts: string[] }).statusTexts);
    assert.equal(texts[0], WAITING);
    assert.ok(await page.evaluate(() => (document.getElementById('image') as HTMLImageElement).naturalWidth > 0), 'image decoded');
    const upstream = (await page.textContent('#image-upstream')) ?? '';
    assert.ok(cluster.upstreams.includes(upstream), `served by ${upstream}`);
    const backend = (await page.textContent('#image-backend')) ?? '';
    assert.match(backend, /^backend-[1-4]$/);
    assert.match((await page.textContent('#image-time')) ?? '', /^\d+(\.\d+)? (ms|s)$/);
    assert.equal(await page.textContent('#image-http'), '200');
    assert.ok(REASONS.includes((await page.textContent('[data-testid="decision-reason"]')) ?? ''));
    // What the picker saw: one line per upstream, from X-Lb-Decision.
    assert.equal(await page.locator('#image-decision tbody tr').count(), 4);
    // The row of that upstream now also names the backend behind it.
    assert.equal(await page.textContent(`[data-upstream="${upstream}"] [data-testid="backend-id"]`), backend);
    assert.deepEqual(await heights(), before, 'every row keeps its height');
    assert.match((await page.getAttribute('#image', 'alt')) ?? '', new RegExp(`served by ${backend}`));
    assertNoConsoleErrors();
  });

  it('shows "Error occurred, try again" with the error code of a failed request', async () => {
    // Ask the real backends for an image that does not exist: their 404 comes back through the balancer.
    expected = [/Failed to load resource: the server responded with a status of 404/];
    await page.route('**/images/*', (route) => route.continue({ url: route.request().url().replace(/\/images\/\d+/, '/images/9') }));
    try {
      await page.getByRole('button', { name: 'Fetch a random image' }).click();
      await page.waitForSelector('#image-status[data-state="error"]');
    } finally {
      await page.unroute('**/images/*');
    }
    const status = (await page.textContent('#image-status')) ?? '';
    assert.ok(status.startsWith(FAILED), status);
    assert.equal(await page.textContent('[data-testid="image-error-code"]'), 'IMAGE_NOT_FOUND');
    assert.equal(await page.textContent('#image-http'), '404');
    assert.equal(await page.isVisible('#image'), false);
    assertNoConsoleErrors();
  });

  it('a burst of 40 shows in-flight rising on several backends and falling back to 0', async () => {
    assert.ok(cluster);
    const before = Number((await page.textContent('#kpi-requests'))?.replace(/,/g, ''));
    // Record the highest in-flight each row displays while the burst runs.
    await page.evaluate(() => {
      const max: Record<string, number> = {};
      (window as unknown as { maxInFlight: Record<string, number> }).maxInFlight = max;
      const rowsEl = document.getElementById('upstream-rows');
      if (!rowsEl) return;
      new MutationObserver((records) => {
        for (const r of records) {
          const row = r.target as Element;
          const id = row.getAttribute('data-upstream') ?? '';
          max[id] = Math.max(max[id] ?? 0, Number(row.getAttribute('data-in-flight')));
        }
      }).observe(rowsEl, { attributes: true, attributeFilter: ['data-in-flight'], subtree: true });
    });
    // The label promises what a browser does: a burst of N, four of them in flight at a time.
    assert.equal(await page.textContent('label[for="burst-size"]'), 'Requests in the burst (1–200, sent 4 at a time)');
    await page.getByLabel('Requests in the burst').fill('40');
    await page.getByRole('button', { name: 'Send burst' }).click();
    await page.waitForSelector('#burst-status[data-state="done"]', { timeout: 45_000 });
    assert.equal(await page.getAttribute('#burst-status', 'data-ok'), '40');
    assert.equal(await page.getAttribute('#burst-status', 'data-failed'), '0');
    await page.waitForFunction(() =>
      [...document.querySelectorAll('[data-testid="upstream-row"]')].every((r) => r.getAttribute('data-in-flight') === '0'),
    );
    const max = await page.evaluate(() => (window as unknown as { maxInFlight: Record<string, number> }).maxInFlight);
    const busy = Object.entries(max).filter(([, n]) => n > 0);
    assert.ok(busy.length >= 2, `in-flight rose on ${busy.length} backend(s): ${JSON.stringify(max)}`);
    assert.deepEqual(Object.values(await inFlightByUpstream(page)), [0, 0, 0, 0]);
    // Least-connections spread the burst: every backend served part of it.
    assert.equal(await page.locator('#burst-tally tbody tr').count(), 4);
    await page.waitForFunction((n) => Number(document.getElementById('kpi-requests')?.textContent.replace(/,/g, '')) >= n, before + 40);
    // The peak marker remembers the burst; the charts have a line per upstream.
    const peaks = await page.$$eval('[data-testid="upstream-row"]', (rows) => rows.map((r) => Number(r.getAttribute('data-peak'))));
    assert.ok(peaks.filter((p) => p > 0).length >= 2, `peaks ${peaks.join(',')}`);
    await page.waitForFunction(() => document.getElementById('chart-inflight')?.dataset.series === '4');
    assert.ok(Number(await page.getAttribute('#chart-rps', 'data-points')) > 0);
    await page.screenshot({ path: `${ARTIFACTS}page-after-burst-dark.png`, fullPage: true });
    assertNoConsoleErrors();
  });

  it('lists the routing decisions with their reasons', async () => {
    assert.ok(cluster);
    await page.waitForFunction(() => Number(document.getElementById('decisions')?.getAttribute('data-count')) > 0);
    const items = await page.$$eval('[data-testid="decision"]:not([hidden])', (els) =>
      els.map((li) => ({ chosen: li.getAttribute('data-chosen') ?? '', reason: li.getAttribute('data-reason') ?? '' })),
    );
    assert.ok(items.length > 0 && items.length <= 20);
    for (const d of items) {
      assert.ok(cluster.upstreams.includes(d.chosen), d.chosen);
      assert.ok(REASONS.includes(d.reason), d.reason);
    }
    assertNoConsoleErrors();
  });

  it('marks a killed backend as no longer up, and up again once it is back', async () => {
    assert.ok(cluster);
    const victim = cluster.backends[1];
    const id = cluster.upstreams[1];
    assert.ok(victim && id);
    await victim.stop('SIGKILL');
    try {
      // Some traffic, so the balancer also notices through failed requests, not only its probes.
      expected = [/Failed to load resource: the server responded with a status of 50[234]/];
      await page.getByLabel('Requests in the burst').fill('8');
      await page.getByRole('button', { name: 'Send burst' }).click();
      // Static upstreams stay listed; health checking moves the dead one out of `up`.
      await page.waitForSelector(`[data-upstream="${id}"]:not([data-state="up"])`, { timeout: 20_000 });
      assert.match((await page.textContent(`[data-upstream="${id}"] [data-testid="state"]`)) ?? '', /^(down|unproven|draining)/);
      await page.waitForSelector('#kpi-available[data-degraded="true"]');
      assert.equal(await page.textContent('#kpi-available'), '3 / 4');
      await page.waitForSelector('#burst-status[data-state="done"]', { timeout: 30_000 });
      await page.screenshot({ path: `${ARTIFACTS}page-backend-down-dark.png`, fullPage: true });
    } finally {
      if (!victim.running) await victim.restart();
    }
    await page.waitForSelector(`[data-upstream="${id}"][data-state="up"]`, { timeout: 20_000 });
    await page.waitForSelector('#kpi-available:not([data-degraded="true"])');
    assertNoConsoleErrors();
  });

  it('shows "reconnecting" while the balancer restarts, then goes live again by itself', async () => {
    assert.ok(cluster);
    // While the balancer is away the page server answers /api/events with a JSON 502, which the
    // browser reports in the console; that is the expected part of this test.
    expected = [/Failed to load resource: the server responded with a status of 502/, /EventSource's response has a MIME type/];
    await cluster.balancer.stop();
    try {
      await page.waitForSelector('#connection:is([data-state="reconnecting"], [data-state="disconnected"], [data-state="stale"])');
      await page.waitForSelector('#upstream-table[data-stale="true"]');
      // The page server answers 502 now, so the browser gives up and the page retries on its own, with a countdown.
      await page.waitForFunction(
        () => /^Disconnected · retrying in \d+ s$/.test(document.getElementById('connection-text')?.textContent ?? ''),
        undefined,
        { timeout: 15_000 },
      );
      assert.equal(await page.isVisible('#retry-now'), true);
      await page.screenshot({ path: `${ARTIFACTS}page-disconnected-dark.png`, fullPage: true });
    } finally {
      // Later tests need the balancer whatever happened above.
      if (!cluster.balancer.running) await cluster.balancer.restart();
    }
    await page.waitForSelector('#connection[data-state="live"]', { timeout: 20_000 });
    await page.waitForSelector('#upstream-table[data-stale="false"]');
    assert.equal(await page.isVisible('#retry-now'), false);
    // The restarted balancer counts from 0: the page follows instead of showing old totals.
    await page.waitForFunction(() => Number(document.getElementById('kpi-requests')?.textContent.replace(/,/g, '')) < 40);
    assertNoConsoleErrors();
  });

  it('fits a phone screen and the light scheme, with every control labelled', async () => {
    assert.ok(cluster && browser);
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, colorScheme: 'light' });
    try {
      const p = await phone.newPage();
      watchProblems(p, problems);
      await p.goto(cluster.urls.ui);
      await p.waitForSelector('#connection[data-state="live"]');
      await p.waitForFunction(() => document.querySelectorAll('[data-testid="upstream-row"]').length === 4);
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `page is ${overflow}px wider than the phone`);
      const unlabelled = await p.$$eval('button, input, select, textarea, progress', (els) =>
        els
          .filter((el) => {
            const labelled = (el as HTMLInputElement).labels?.length ?? 0;
            const name = el.getAttribute('aria-label') ?? el.textContent.trim();
            return labelled === 0 && name === '';
          })
          .map((el) => el.outerHTML),
      );
      assert.deepEqual(unlabelled, []);
      const bg = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.equal(bg, 'rgb(244, 246, 249)', 'light scheme background');
      await p.screenshot({ path: `${ARTIFACTS}page-phone-light.png`, fullPage: true });
    } finally {
      await phone.close();
    }
    assertNoConsoleErrors();
  });
});

/** One upstream of a scripted snapshot: [id, inFlight, requests, state, weight]. */
type Row = [string, number, number, string, number?];

/** One peer of a scripted snapshot, as the balancer sends it. */
interface ScriptedPeer {
  readonly address: string;
  readonly ageMs: number | null;
  readonly state: string;
}

/** Answers the page's /api/events with `body()` on each (re)connect; with `labIdle`, its one /api/lab question with "no run". */
async function scriptStreams(page: Page, body: () => string, labIdle = true): Promise<void> {
  if (labIdle) await page.route('**/api/lab', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: '{"state":"idle","results":[]}' }));
  await page.route('**/api/events', (route) => route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }, body: body() }));
}

function snapshotEvent(time: number, rows: Row[], imbalance = 1, peers: readonly ScriptedPeer[] = []): string {
  const upstreams = rows.map(([id, inFlight, requests, state, weight]) => ({
    id,
    weight: weight ?? 1,
    inFlight,
    requests,
    errors: 0,
    state,
    available: state === 'up',
    source: 'dns',
  }));
  const snapshot = {
    time,
    tieBreak: 'random',
    explain: false,
    totals: {
      requests: upstreams.reduce((s, u) => s + u.requests, 0),
      inFlight: upstreams.reduce((s, u) => s + u.inFlight, 0),
      errors: 0,
    },
    imbalance,
    upstreams,
    decisions: [],
    peers: peers.map((p) => ({ ...p, id: p.ageMs === null ? null : '9c1f0a7e5b2d4c83', dataUrl: null, adminUrl: null })),
  };
  // A short retry: each fulfilled response ends the stream and the browser asks for the next one.
  return `retry: 50\n\nevent: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`;
}

describe('the live view with a scripted event stream (upstreams coming and going)', function () {
  this.timeout(30_000);
  let browser: Browser | undefined;
  let ui: UiServer | undefined;
  let base = '';

  before(async function () {
    if (missingBuild().length) throw new Error('run `npm run build` first');
    browser = await launchChromium(this);
    // Nothing listens behind these ports: every /api/events answer below comes from page.route.
    const [dead] = await freePorts(1);
    ui = createUiServer({
      root: join(REPO_ROOT, 'frontend', 'dist'),
      balancer: { host: '127.0.0.1', port: dead ?? 1 },
      admin: { host: '127.0.0.1', port: dead ?? 1 },
    });
    base = `http://127.0.0.1:${await ui.listen(0)}/`;
  });

  after(async () => {
    await browser?.close();
    await ui?.close();
  });

  it('adds and removes rows without a reload and keeps the rows that stay', async () => {
    assert.ok(browser);
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const problems: string[] = [];
    watchProblems(page, problems);
    let script: Row[] = [
      ['10.0.0.2:8002', 1, 10, 'up'],
      ['10.0.0.3:8002', 3, 20, 'up', 3],
      ['10.0.0.4:8002', 0, 5, 'unproven'],
    ];
    let time = Date.now();
    await scriptStreams(page, () => snapshotEvent((time += 100), script, 1.5));
    try {
      await page.goto(base);
      const ids = () => page.$$eval('[data-testid="upstream-row"]', (rows) => rows.map((r) => r.getAttribute('data-upstream')));
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="upstream-row"]').length === 3);
      assert.deepEqual(await ids(), ['10.0.0.2:8002', '10.0.0.3:8002', '10.0.0.4:8002']);
      assert.equal(await page.textContent('[data-upstream="10.0.0.3:8002"] [data-testid="weight"]'), '3');
      assert.equal(await page.textContent('[data-upstream="10.0.0.3:8002"] [data-testid="in-flight"]'), '3');
      assert.equal(await page.textContent('[data-upstream="10.0.0.4:8002"] [data-testid="state"]'), 'unproven');
      assert.equal(await page.textContent('#kpi-imbalance'), '1.50×');
      assert.equal(await page.textContent('#kpi-available'), '2 / 3');
      assert.equal(await page.textContent('#tie-break'), 'random');
      // Tag the row elements: stable DOM means the same elements are updated, not rebuilt.
      await page.$$eval('[data-testid="upstream-row"]', (rows) => {
        for (const r of rows) (r as HTMLElement).dataset.tag = 'original';
      });

      // Scale down (10.0.0.3 leaves), scale up (10.0.0.5 joins), 10.0.0.4 passes its probe.
      script = [
        ['10.0.0.2:8002', 0, 12, 'up'],
        ['10.0.0.4:8002', 2, 7, 'up'],
        ['10.0.0.5:8002', 0, 0, 'unproven'],
      ];
      await page.waitForFunction(() => document.querySelector('[data-upstream="10.0.0.5:8002"]') !== null);
      assert.deepEqual(await ids(), ['10.0.0.2:8002', '10.0.0.4:8002', '10.0.0.5:8002']);
      const tags = await page.$$eval('[data-testid="upstream-row"]', (rows) => rows.map((r) => (r as HTMLElement).dataset.tag ?? 'new'));
      assert.deepEqual(tags, ['original', 'original', 'new']);
      await page.waitForSelector('[data-upstream="10.0.0.4:8002"][data-state="up"]');
      assert.equal(await page.textContent('[data-upstream="10.0.0.4:8002"] [data-testid="in-flight"]'), '2');

      // Draining, then gone entirely: the "no upstreams" note comes back.
      script = [['10.0.0.2:8002', 0, 12, 'draining']];
      await page.waitForSelector('[data-upstream="10.0.0.2:8002"] [data-testid="state"][data-state="draining"]');
      script = [];
      await page.waitForSelector('#no-upstreams', { state: 'visible' });
      assert.equal(await page.locator('[data-testid="upstream-row"]').count(), 0);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  it('names each peer balancer with the age of its latest report, and marks one that dropped out', async () => {
    assert.ok(browser);
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const problems: string[] = [];
    watchProblems(page, problems);
    let peers: ScriptedPeer[] = [];
    let time = Date.now();
    await scriptStreams(page, () => snapshotEvent((time += 100), [['10.0.0.2:8002', 1, 10, 'up']], 1, peers));
    try {
      await page.goto(base);
      await page.waitForFunction(() => document.querySelector('[data-testid="peers"]')?.textContent === 'none');
      peers = [{ address: '10.0.1.7:9001', ageMs: 12, state: 'live' }, { address: '10.0.1.8:9001', ageMs: 9, state: 'live' }];
      await page.waitForFunction(() => document.querySelector('[data-testid="peers"]')?.textContent === '10.0.1.7 12 ms · 10.0.1.8 9 ms');
      assert.equal(await page.getAttribute('[data-testid="peers"]', 'data-degraded'), 'false');
      peers = [{ address: '10.0.1.7:9001', ageMs: 14, state: 'live' }, { address: '10.0.1.8:9001', ageMs: 400, state: 'dropped' }];
      await page.waitForFunction(() => document.querySelector('[data-testid="peers"]')?.textContent === '10.0.1.7 14 ms · 10.0.1.8 dropped');
      assert.equal(await page.getAttribute('[data-testid="peers"]', 'data-degraded'), 'true');
      assert.match((await page.getAttribute('[data-testid="peers"]', 'title')) ?? '', /10\.0\.1\.8:9001: dropped, latest report 400 ms ago/);
      const color = await page.$eval('[data-testid="peers"]', (el) => getComputedStyle(el).color);
      const bad = await page.$eval('[data-testid="peers"]', (el) => getComputedStyle(el).getPropertyValue('--bad').trim());
      assert.ok(bad !== '', 'the page defines --bad');
      assert.notEqual(color, await page.$eval('#policy', (el) => getComputedStyle(el).color), 'a dropped peer is shown in the warning colour');
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  it('a balancer without the lab: the panel says to start it with LB_LAB=1, its runs and scenarios are disabled, the operator controls are not', async () => {
    assert.ok(browser);
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const problems: string[] = [];
    watchProblems(page, problems);
    let time = Date.now();
    await page.route('**/api/lab', (route) =>
      route.fulfill({ status: 404, contentType: 'application/json', body: JSON.stringify({ error: 'LB_LAB_DISABLED', message: 'the algorithm lab is off' }) }),
    );
    await scriptStreams(page, () => snapshotEvent((time += 100), [['10.0.0.2:8002', 0, 1, 'up']]), false);
    try {
      await page.goto(base);
      await page.waitForSelector('#lab-status[data-state="off"]');
      assert.match((await page.textContent('#lab-status')) ?? '', /start the balancer with LB_LAB=1/);
      assert.equal(await page.getAttribute('#lab', 'data-lab'), 'off');
      const disabled = (selector: string) => page.$$eval(selector, (els) => els.map((el) => (el as HTMLButtonElement).disabled));
      for (const selector of ['#lab-run', '#lab-compare', '#lab-rate', '#lab-scenario', '[data-scenario]']) {
        const states = await disabled(selector);
        assert.ok(states.length > 0 && states.every(Boolean), `${selector} disabled`);
      }
      for (const selector of ['#policy-apply', '#op-drain', '#admin-token']) assert.deepEqual(await disabled(selector), [false], `${selector} enabled`);
      // The browser reports the refused read itself; nothing else may go wrong.
      assert.deepEqual(problems.filter((p) => !p.includes('status of 404')), []);
    } finally {
      await page.close();
    }
  });

  it('never lets the x-axis labels touch, on a phone and a laptop, in every window, at the widest times of day', async () => {
    assert.ok(browser);
    for (const [screen, options] of [['phone', PHONE], ['laptop', DESKTOP]] as const) {
      // 23:5x UTC: two-digit hours and a pm, the longest labels uPlot's own format writes.
      const context = await browser.newContext({ ...options, timezoneId: 'UTC' });
      try {
        const page = await context.newPage();
        let time = Date.UTC(2026, 11, 12, 23, 58, 0);
        await scriptStreams(page, () => snapshotEvent((time += 100), [['10.0.0.2:8002', 1, 10, 'up']]));
        await page.goto(base);
        // Both charts drawn with points of the scripted day, not the empty chart of 1 January 1970.
        await page.waitForFunction(() => [...document.querySelectorAll<HTMLElement>('.chart')].every((el) => Number(el.dataset.points) > 1));
        for (const span of ['60000', '300000', '900000']) {
          await page.click(`[data-window-ms="${span}"]`);
          await page.waitForSelector(`[data-window-ms="${span}"][aria-pressed="true"]`);
          assert.deepEqual(await axisLabelProblems(page), [], `${screen}, ${Number(span) / 60000} min window`);
        }
      } finally {
        await context.close();
      }
    }
  });
});
