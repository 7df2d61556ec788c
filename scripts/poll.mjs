// The one "poll until" of the repository's tests, bench and e2e suites: no fixed sleeps, a
// condition polled until it holds or a deadline passes, and a timeout message that says what was
// awaited (and, where errors count as "not yet", the last one).

/**
 * Calls `probe` every `intervalMs` until it returns (or resolves to) something other than
 * `undefined` or `false`, and returns that; throws after `timeoutMs` naming `what`.
 * With `retryErrors`, a probe that throws counts as "not yet" (its message ends up in the timeout
 * error), except an error with `fatal: true`; without it, a throwing probe fails at once.
 */
export async function pollUntil(what, probe, timeoutMs = 5000, { intervalMs = 20, retryErrors = false } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      if (!retryErrors || err?.fatal === true) throw err;
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
