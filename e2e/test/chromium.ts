/** Debian's Chromium for the browser specs, launched the way toolchain.md says. */
import { chromium, type Browser } from 'playwright-core';
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
