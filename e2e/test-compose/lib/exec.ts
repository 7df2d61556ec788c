// e2e/load, rewritten elsewhere at the moment, still imports the command runner from this path; the
// runner itself is e2e/lib/exec.ts. Point those imports there and this file can go.
export { run } from '../../lib/exec.js';
