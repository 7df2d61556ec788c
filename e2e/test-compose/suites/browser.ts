import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../../test/chromium.js';
import { ARTIFACTS } from '../../lib/artifacts.js';
import type { ClusterHarness } from '../../lib/cluster-harness.js';
import { upstreamIdOf } from '../../lib/upstream-id.js';
import { waitFor } from '../../lib/wait.js';

/** The page served by nginx works in a real browser against the real cluster. */
export function browserSuite(cluster: () => ClusterHarness): void {
  describe('browser (Chromium through nginx)', () => {
    let browser: Browser | undefined;

    before(async function () {
      browser = await launchChromium(this);
    });
    after(async () => {
      await browser?.close();
    });

    it('loads the page, lists every replica live and fetches an image through the balancer', async () => {
      const c = cluster();
      const replicas = await c.waitForBackends(4);
      const expected = replicas.map(upstreamIdOf).sort();
      assert.ok(browser, 'browser launched');
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      try {
        const response = await page.goto(`${c.web.origin}/`, { waitUntil: 'load' });
        assert.equal(response?.status(), 200);

        // The live view (SSE via nginx /api/events) connects and shows one row per replica, all up.
        await page.waitForSelector('#connection[data-state="live"]', { timeout: 15_000 });
        const rows = page.locator('#upstream-rows [data-testid="upstream-row"]');
        await waitFor(
          async () => {
            const shown: string[] = [];
            for (let i = 0, n = await rows.count(); i < n; i++) {
              const row = rows.nth(i);
              shown.push(`${(await row.getAttribute('data-upstream')) ?? '?'}=${(await row.getAttribute('data-state')) ?? '?'}`);
            }
            if (shown.sort().join() === expected.map((id) => `${id}=up`).join()) return true;
            throw new Error(`rows shown: ${shown.join(', ') || 'none'}`);
          },
          { what: `the live view to list ${expected.join(', ')} as up`, timeoutMs: 15_000, intervalMs: 200 },
        );

        // One click = one image through nginx -> balancer -> a backend, with who served it.
        await page.click('#fetch-image');
        await page.waitForSelector('#image-status[data-state="ok"]', { timeout: 15_000 });
        const upstream = (await page.textContent('#image-upstream'))?.trim() ?? '';
        assert.ok(expected.includes(upstream), `served by a replica: "${upstream}" in ${expected.join(', ')}`);
        // A string predicate runs in the page: the e2e code stays free of DOM types.
        await page.waitForFunction('document.querySelector("#image")?.naturalWidth > 0', undefined, { timeout: 5_000 });

        await mkdir(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: join(ARTIFACTS, 'compose-live-view.png'), fullPage: true });
        assert.deepEqual(problems, [], 'no console errors');
      } finally {
        await page.close();
      }
    });
  });
}
