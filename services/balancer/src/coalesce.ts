/**
 * Turns a synchronous notification into an event: `fn` runs once, in a microtask, however many
 * times the returned function was called since. A listener wrapped this way never runs inside the
 * call stack that caused the change (a failing attempt reporting a failure does not re-enter the
 * proxy through its own report), and a burst of changes (a DNS sync, several verdicts in one
 * callback) costs one call.
 */
export function coalesced(fn: () => void): () => void {
  let queued = false;
  const run = (): void => {
    queued = false;
    fn();
  };
  return () => {
    if (queued) return;
    queued = true;
    queueMicrotask(run);
  };
}
