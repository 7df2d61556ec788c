/**
 * The `X-Lb-Decision` response header the balancer adds with `--explain` (docs/contracts.md):
 * `chosen=<id>; reason=<reason>; candidates=<id>/<inFlight>/<weight>,...`
 * The in-flight counts are the ones the picker saw, before this request was counted.
 */

/** One upstream the picker considered. */
export interface DecisionCandidate {
  readonly id: string;
  readonly inFlight: number;
  readonly weight: number;
}

/** A parsed `X-Lb-Decision` header. */
export interface Decision {
  readonly chosen: string;
  readonly reason: string;
  readonly candidates: readonly DecisionCandidate[];
}

function parseCandidate(part: string): DecisionCandidate | undefined {
  // Split from the right: the id is `host:port`, possibly `[v6]:port`, but never contains '/'.
  const w = part.lastIndexOf('/');
  const f = w > 0 ? part.lastIndexOf('/', w - 1) : -1;
  if (f <= 0) return undefined;
  const inFlight = Number(part.slice(f + 1, w));
  const weight = Number(part.slice(w + 1));
  if (!Number.isFinite(inFlight) || !Number.isFinite(weight) || part.slice(w + 1) === '') return undefined;
  return { id: part.slice(0, f), inFlight, weight };
}

/** Parses the header; undefined when it is missing or has no `chosen`. Unknown keys are ignored. */
export function parseDecisionHeader(value: string | null | undefined): Decision | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  let chosen = '';
  let reason = '';
  const candidates: DecisionCandidate[] = [];
  for (const field of value.split(';')) {
    const eq = field.indexOf('=');
    if (eq < 0) continue;
    const key = field.slice(0, eq).trim().toLowerCase();
    const val = field.slice(eq + 1).trim();
    if (key === 'chosen') chosen = val;
    else if (key === 'reason') reason = val;
    else if (key === 'candidates') {
      for (const part of val.split(',')) {
        const c = parseCandidate(part.trim());
        if (c) candidates.push(c);
      }
    }
  }
  return chosen === '' ? undefined : { chosen, reason, candidates };
}

/** Human words for the picker's reasons; unknown reasons are shown as sent. */
export function describeReason(reason: string): string {
  switch (reason) {
    case 'only-candidate':
      return 'only one upstream was available';
    case 'least-loaded':
      return 'fewest in-flight requests per weight';
    case 'tie-rotation':
      return 'tie on load, broken by rotation';
    case 'tie-random':
      return 'tie on load, broken at random';
    case 'tie-latency':
      return 'tie on load; slower-lately upstreams left out, then rotation';
    default:
      return reason;
  }
}
