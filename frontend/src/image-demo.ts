/**
 * The controls: the original page's button (one random image, with who served it and how long it
 * took) and the load burst (N concurrent requests, tallied by upstream and by the picker's reason).
 */
import type { ColorMap } from './colors.js';
import { describeReason, type Decision } from './decision.js';
import { byId, h, setAttr, setStyle, setText } from './dom.js';
import { formatDuration, formatInt, formatShare } from './format.js';
import {
  addToTally,
  clampBurst,
  emptyTally,
  fetchImage,
  imageUrl,
  randomImageId,
  runLimited,
  BURST_PARALLEL,
  type BurstTally,
  type ImageOutcome,
} from './requests.js';

/** Wording of the original page, kept on purpose. */
export const WAITING_TEXT = 'Waiting for server response...';
/** Wording of the original page, kept on purpose. */
export const ERROR_TEXT = 'Error occurred, try again';

/** Callbacks into the rest of the page. */
export interface DemoHooks {
  readonly colors: ColorMap;
  /** A response told us which backend stands behind an upstream. */
  readonly onBackend: (upstream: string, backend: string) => void;
  /** One of the page's requests failed (not cancelled by the user): counted in the Errors card. */
  readonly onFailure: () => void;
}

/** Wires the single-image button. */
export function setupImageDemo(hooks: DemoHooks): void {
  const button = byId('fetch-image', HTMLButtonElement);
  const status = byId('image-status');
  const img = byId('image', HTMLImageElement);
  const facts = byId('image-facts');
  const factId = byId('image-id');
  const factUpstream = byId('image-upstream');
  const factBackend = byId('image-backend');
  const factTime = byId('image-time');
  const factHttp = byId('image-http');
  const decisionBox = byId('image-decision');
  let current: AbortController | undefined;
  let objectUrl: string | undefined;
  let ticker: number | undefined;

  function setStatus(state: 'idle' | 'waiting' | 'ok' | 'error', text: string): void {
    setAttr(status, 'data-state', state);
    setText(status, text);
  }

  async function run(): Promise<void> {
    // A new click replaces a request still waiting (the balancer sees the client go away).
    current?.abort();
    const controller = new AbortController();
    current = controller;
    const imageId = randomImageId();
    const started = performance.now();
    setStatus('waiting', WAITING_TEXT);
    setAttr(button, 'aria-busy', 'true');
    window.clearInterval(ticker);
    ticker = window.setInterval(() => {
      setText(factTime, `${formatDuration(performance.now() - started)}…`);
    }, 100);
    setText(factId, `#${imageId}`);
    setText(factUpstream, '…');
    setText(factBackend, '…');
    setText(factTime, '…');
    setText(factHttp, '…');
    facts.hidden = false;
    const outcome = await fetchImage({ imageId, url: imageUrl(imageId, Date.now()), signal: controller.signal });
    if (current !== controller) return; // superseded by a later click
    if (!outcome.ok && !outcome.aborted) hooks.onFailure();
    window.clearInterval(ticker);
    current = undefined;
    setAttr(button, 'aria-busy', undefined);
    show(outcome);
  }

  function show(o: ImageOutcome): void {
    setText(factUpstream, o.upstream ?? '–');
    if (o.upstream) setStyle(factUpstream, '--c', hooks.colors.get(o.upstream));
    setText(factTime, formatDuration(o.ms));
    setText(factHttp, o.status ? String(o.status) : 'no response');
    renderDecision(decisionBox, o.decision, hooks.colors);
    if (o.ok) {
      setText(factBackend, o.backend ?? '–');
      if (o.upstream && o.backend) hooks.onBackend(o.upstream, o.backend);
      if (objectUrl) URL.revokeObjectURL(objectUrl);
      objectUrl = URL.createObjectURL(o.blob);
      img.src = objectUrl;
      img.alt = `Image ${o.imageId}, served by ${o.backend ?? o.upstream ?? 'the balancer'}`;
      img.hidden = false;
      setStatus('ok', `Image ${o.imageId} in ${formatDuration(o.ms)}`);
    } else if (!o.aborted) {
      setText(factBackend, '–');
      img.hidden = true;
      setStatus('error', ERROR_TEXT);
      const detail = h('span', { class: 'error-code', 'data-testid': 'image-error-code' }, o.code);
      status.append(' ', detail);
      if (o.message) status.append(h('span', { class: 'error-message' }, ` ${o.message}`));
    }
  }

  button.addEventListener('click', () => {
    void run();
  });
}

/** Shows an `X-Lb-Decision`: the reason and the in-flight per candidate the picker saw. */
function renderDecision(box: HTMLElement, d: Decision | undefined, colors: ColorMap): void {
  box.replaceChildren();
  box.hidden = false;
  if (!d) {
    box.append(
      h('p', { class: 'hint' }, 'No X-Lb-Decision header: start the balancer with --explain to see why it chose.'),
    );
    return;
  }
  box.append(
    h('p', {}, 'Why: ', h('strong', { 'data-testid': 'decision-reason' }, d.reason), ` (${describeReason(d.reason)})`),
  );
  if (d.candidates.length === 0) return;
  const body = h('tbody');
  for (const c of d.candidates) {
    const tr = h(
      'tr',
      { 'data-chosen': String(c.id === d.chosen) },
      h('td', {}, h('span', { class: 'swatch', 'aria-hidden': 'true' }), c.id),
      h('td', { class: 'num' }, formatInt(c.inFlight)),
      h('td', { class: 'num' }, formatInt(c.weight)),
    );
    tr.style.setProperty('--c', colors.get(c.id));
    body.append(tr);
  }
  box.append(
    h(
      'table',
      { class: 'mini' },
      h('caption', {}, 'What the picker saw'),
      h(
        'thead',
        {},
        h('tr', {}, h('th', { scope: 'col' }, 'Upstream'), h('th', { scope: 'col' }, 'In flight'), h('th', { scope: 'col' }, 'Weight')),
      ),
      body,
    ),
  );
}

/** Wires the burst form. */
export function setupBurst(hooks: DemoHooks): void {
  const form = byId('burst-form', HTMLFormElement);
  const input = byId('burst-size', HTMLInputElement);
  const button = byId('burst-send', HTMLButtonElement);
  const progress = byId('burst-progress', HTMLProgressElement);
  const status = byId('burst-status');
  const tallyBody = byId('burst-tally-body');
  const tallyTable = byId('burst-tally');
  const reasons = byId('burst-reasons');
  let running: AbortController | undefined;

  function render(t: BurstTally, ms: number, finished: boolean): void {
    progress.hidden = false;
    progress.max = t.sent;
    progress.value = t.done;
    const inFlight = t.sent - t.done;
    const parts = [`${formatInt(t.done)} of ${formatInt(t.sent)} done`, `${formatInt(t.ok)} ok`];
    if (t.failed) parts.push(`${formatInt(t.failed)} failed`);
    if (!finished) parts.push(`${formatInt(inFlight)} waiting`);
    parts.push(formatDuration(ms));
    setText(status, parts.join(' · '));
    setAttr(status, 'data-state', finished ? 'done' : 'running');
    setAttr(status, 'data-ok', String(t.ok));
    setAttr(status, 'data-failed', String(t.failed));
    if (t.byError.size) {
      const errors = [...t.byError].map(([code, n]) => `${code} ×${n}`).join(', ');
      status.append(h('span', { class: 'error-code' }, ` ${errors}`));
    }
    const rows = [...t.byUpstream].sort((a, b) => a[0].localeCompare(b[0]));
    tallyBody.replaceChildren(
      ...rows.map(([id, n]) => {
        const share = h('span', { class: 'share-bar' });
        share.style.setProperty('--w', `${((n * 100) / Math.max(1, t.done)).toFixed(1)}%`);
        const tr = h(
          'tr',
          { 'data-upstream': id },
          h('td', {}, h('span', { class: 'swatch', 'aria-hidden': 'true' }), id),
          h('td', { class: 'num' }, formatInt(n)),
          h('td', { class: 'share-cell' }, share, h('span', { class: 'num' }, formatShare(n, t.done))),
        );
        tr.style.setProperty('--c', hooks.colors.get(id));
        return tr;
      }),
    );
    tallyTable.hidden = rows.length === 0;
    setText(
      reasons,
      t.byReason.size ? `Reasons: ${[...t.byReason].map(([r, n]) => `${r} ×${n}`).join(', ')}` : '',
    );
  }

  async function runBurst(n: number): Promise<void> {
    const controller = new AbortController();
    running = controller;
    setText(button, 'Cancel burst');
    setAttr(button, 'aria-label', 'Cancel the running burst');
    const started = performance.now();
    let tally = emptyTally(n);
    render(tally, 0, false);
    const salt = Date.now();
    const timer = window.setInterval(() => {
      render(tally, performance.now() - started, false);
    }, 200);
    // The page keeps its own queue (BURST_PARALLEL at a time), so a request's 30 s timeout and its
    // time start when it is really sent, never while it waits for one of the browser's connections.
    await runLimited(n, BURST_PARALLEL, async (i) => {
      const imageId = randomImageId();
      const o = await fetchImage({ imageId, url: imageUrl(imageId, salt, String(i)), signal: controller.signal });
      if (o.ok && o.upstream && o.backend) hooks.onBackend(o.upstream, o.backend);
      if (!o.ok && !o.aborted) hooks.onFailure();
      tally = addToTally(tally, o);
    });
    window.clearInterval(timer);
    running = undefined;
    render(tally, performance.now() - started, true);
    setText(button, 'Send burst');
    setAttr(button, 'aria-label', undefined);
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (running) {
      running.abort();
      return;
    }
    const n = clampBurst(input.value);
    input.value = String(n);
    void runBurst(n);
  });
}
