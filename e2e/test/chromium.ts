/** Debian's Chromium for the browser specs, launched the way toolchain.md says, and the layout checks they share. */
import { chromium, type Browser, type Page } from 'playwright-core';
import { requireTool } from '../../scripts/require-tool.mjs';

/**
 * Launches Chromium (CHROMIUM_PATH, else /usr/bin/chromium). When it is missing, skips the suite
 * of `ctx` with a reason, or fails it under CI (requireTool): call it before starting anything.
 */
export function launchChromium(ctx: Mocha.Context): Promise<Browser> {
  const executablePath = requireTool(ctx, 'chromium');
  return chromium.launch({
    executablePath,
    args: ['--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** The phone and the laptop screens the page is checked on (issue 22). */
export const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true } as const;
export const DESKTOP = { viewport: { width: 1280, height: 800 } } as const;

/**
 * Every visible element that sticks out of its card (a `.panel` or a `.kpi`) sideways, and every
 * card that sticks out of the window, as `tag#id.class: how far`. An element inside a scroll or
 * clip container is that container's business: the container itself is checked instead.
 */
export function overflowingElements(page: Page): Promise<string[]> {
  // No named functions inside: the test's transpiler would wrap them in a helper the page lacks.
  return page.evaluate(() => {
    const out: string[] = [];
    for (const card of document.querySelectorAll('.panel, .kpi')) {
      const box = card.getBoundingClientRect();
      const cardName = `${card.tagName.toLowerCase()}.${card.className.trim().split(/\s+/).join('.')}`;
      if (box.width === 0) continue;
      if (box.left < -0.5 || box.right > window.innerWidth + 0.5) out.push(`${cardName} is outside the window: ${box.left}..${box.right} of ${window.innerWidth}`);
      const stack: Element[] = [...card.children];
      for (let el = stack.pop(); el !== undefined; el = stack.pop()) {
        const style = getComputedStyle(el);
        if (style.display === 'none' || style.visibility === 'hidden') continue;
        const r = el.getBoundingClientRect();
        if (r.width > 0 && (r.right > box.right + 0.5 || r.left < box.left - 0.5)) {
          const elName = `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${typeof el.className === 'string' && el.className.trim() ? `.${el.className.trim().split(/\s+/).join('.')}` : ''}`;
          out.push(`${elName} in ${cardName}: ${Math.round(r.left - box.left)}..${Math.round(r.right - box.left)} of ${Math.round(box.width)} px`);
        }
        if (style.overflowX === 'visible') stack.push(...el.children);
      }
    }
    return out;
  });
}

/**
 * What is wrong with the x-axis labels of the page's charts (as uPlot drew them on the canvas,
 * see ChartElement.xAxisLabels in frontend/src/charts.ts): labels of one line closer than `minGap`
 * pixels or overlapping, and labels cut by the chart's edges. Empty when all is well.
 */
export function axisLabelProblems(page: Page, minGap = 6): Promise<string[]> {
  return page.evaluate((gap) => {
    interface Box { text: string; left: number; right: number; row: number }
    const out: string[] = [];
    for (const el of document.querySelectorAll<HTMLElement & { xAxisLabels?: () => Box[] }>('.chart')) {
      const boxes = el.xAxisLabels?.();
      if (boxes === undefined || boxes.length === 0) {
        out.push(`#${el.id}: no x-axis labels drawn`);
        continue;
      }
      const width = el.getBoundingClientRect().width;
      for (const b of boxes) if (b.left < 0 || b.right > width) out.push(`#${el.id}: "${b.text}" cut at ${Math.round(b.left)}..${Math.round(b.right)} of ${Math.round(width)} px`);
      const rows = new Map<number, Box[]>();
      for (const b of boxes) rows.set(b.row, [...(rows.get(b.row) ?? []), b]);
      for (const row of rows.values()) {
        row.sort((a, b) => a.left - b.left);
        for (let i = 1; i < row.length; i++) {
          const [a, b] = [row[i - 1], row[i]];
          if (a && b && b.left - a.right < gap) out.push(`#${el.id}: "${a.text}" and "${b.text}" ${Math.round(b.left - a.right)} px apart`);
        }
      }
    }
    return out;
  }, minGap);
}
