/**
 * The lab and operator panel: policy switcher, scenario buttons and operator controls per
 * replica, and the lab's runs and comparisons with their progress (SSE) and results.
 *
 * Every write carries the admin token typed into the page (kept for this tab only, in
 * sessionStorage). Writes go to `/api/...` on the page's own origin; nginx and the launcher pass
 * them to the balancer's admin port only with a bearer token, and the balancer checks it. The
 * backends are not reachable from a browser: scenarios go through the balancer, which knows every
 * replica and holds the backends' token.
 *
 * The lab is optional in the balancer (--lab / LB_LAB=1): without it, its runs and scenarios are
 * shown disabled with how to turn it on, while the policy and operator controls keep working.
 */
import { byId, h, setAttr, setText } from './dom.js';
import { BALANCER_MODES, IMAGE_SPEEDS, LAB_OFF_TEXT, POLICIES, SCENARIOS, describeProgress, describeSettings, describeSharing, parseLabStatus, progressFraction, readLabAnswer, resultCells, scenarioKeyOf } from './lab-model.js';
import type { Fault, LabStatus } from './lab-model.js';
import type { Snapshot } from './snapshot.js';

const TOKEN_KEY = 'lb-admin-token';

/** What the panel needs from the rest of the page. */
export interface LabPanel {
  /** Keeps the replica list and the current policy in step with the live snapshots. */
  update(snapshot: Snapshot): void;
}

export function setupLab(): LabPanel {
  const tokenInput = byId('admin-token', HTMLInputElement);
  const [policySelect, targetSelect, scenarioSelect, imagesSelect, balancersSelect] = ['policy-select', 'target-select', 'lab-scenario', 'lab-images', 'lab-balancers'].map((id) => byId(id, HTMLSelectElement)) as [
    HTMLSelectElement,
    HTMLSelectElement,
    HTMLSelectElement,
    HTMLSelectElement,
    HTMLSelectElement,
  ];
  const [controlStatus, labStatus] = [byId('control-status'), byId('lab-status')];
  // Read where used: the number inputs and the parts only the renderer touches.
  const numberIn = (id: string): number => Number(byId(id, HTMLInputElement).value);
  const onClick = (id: string, handler: () => void): void => {
    byId(id, HTMLButtonElement).addEventListener('click', handler);
  };

  tokenInput.value = sessionStorage.getItem(TOKEN_KEY) ?? '';
  tokenInput.addEventListener('change', () => {
    sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
  });
  policySelect.replaceChildren(...POLICIES.map((p) => h('option', { value: p }, p)));
  scenarioSelect.replaceChildren(
    h('option', { value: '' }, 'none (all healthy)'),
    ...Object.entries(SCENARIOS).map(([key, s]) => h('option', { value: key }, s.label)),
  );
  imagesSelect.replaceChildren(...IMAGE_SPEEDS.map((speed) => h('option', { value: String(speed.scale) }, speed.label)));
  balancersSelect.replaceChildren(...BALANCER_MODES.map((m) => h('option', { value: m.value }, m.label)));
  /** A replica to choose once the live view lists it (a reload shows the one the table came from). */
  let wantedTarget = '';

  /** A write with the token; the answer (or the failure) goes to `statusEl`. Resolves with the JSON body, if ok. */
  async function write(method: string, path: string, body: unknown, statusEl: HTMLElement, what: string): Promise<unknown> {
    const token = tokenInput.value.trim();
    if (token === '') {
      setText(statusEl, 'Enter the admin token first (LB_ADMIN_TOKEN).');
      setAttr(statusEl, 'data-state', 'error');
      return undefined;
    }
    setAttr(statusEl, 'data-state', 'waiting');
    setText(statusEl, `${what}…`);
    try {
      const res = await fetch(path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
      const text = await res.text();
      let json: unknown = undefined;
      try {
        json = text === '' ? undefined : JSON.parse(text);
      } catch {
        // not JSON: shown as text below
      }
      if (!res.ok) {
        const err = json as { error?: string; message?: string } | undefined;
        setText(statusEl, `${what} refused: ${res.status} ${err?.error ?? ''} ${err?.message ?? text}`.trim());
        setAttr(statusEl, 'data-state', 'error');
        return undefined;
      }
      setText(statusEl, `${what}: ok`);
      setAttr(statusEl, 'data-state', 'ok');
      return json ?? {};
    } catch (err) {
      setText(statusEl, `${what} failed: ${err instanceof Error ? err.message : String(err)}`);
      setAttr(statusEl, 'data-state', 'error');
      return undefined;
    }
  }

  const target = (): string => targetSelect.value;
  const upstreamPath = (suffix: string): string => `/api/upstreams/${encodeURIComponent(target())}/${suffix}`;

  onClick('policy-apply', () => {
    const policy = policySelect.value;
    void write('PUT', '/api/policy', { policy }, controlStatus, `Policy ${policy}`);
  });

  // Scenario buttons: one per preset, plus clear and exit, on the replica chosen above.
  for (const button of Array.from(document.querySelectorAll<HTMLButtonElement>('[data-scenario]'))) {
    button.addEventListener('click', () => {
      const key = button.dataset.scenario ?? '';
      if (target() === '') return;
      if (key === 'clear') void write('DELETE', upstreamPath('scenario'), undefined, controlStatus, `Clear scenario on ${target()}`);
      else if (key === 'exit') void write('POST', upstreamPath('exit'), undefined, controlStatus, `Exit ${target()}`);
      else {
        const preset = SCENARIOS[key];
        if (preset) void write('PUT', upstreamPath('scenario'), preset.fault, controlStatus, `${preset.label} on ${target()}`);
      }
    });
  }
  onClick('op-drain', () => {
    const timeoutMs = Math.round(numberIn('op-drain-seconds') * 1000);
    void write('POST', upstreamPath('drain'), { timeoutMs }, controlStatus, `Drain ${target()}`);
  });
  onClick('op-undrain', () => {
    void write('POST', upstreamPath('undrain'), undefined, controlStatus, `Undrain ${target()}`);
  });
  onClick('op-weight-set', () => {
    const weight = numberIn('op-weight');
    void write('PUT', upstreamPath('weight'), { weight }, controlStatus, `Weight ${weight} on ${target()}`);
  });
  onClick('op-cap-set', () => {
    const maxInFlight = numberIn('op-cap');
    void write('PUT', upstreamPath('max-in-flight'), { maxInFlight }, controlStatus, `Cap ${maxInFlight} on ${target()}`);
  });

  function render(s: LabStatus): void {
    setAttr(labStatus, 'data-state', s.state);
    setText(labStatus, describeProgress(s));
    const progress = byId('lab-progress', HTMLProgressElement);
    progress.hidden = s.state === 'idle';
    progress.value = progressFraction(s);
    byId('lab-cancel', HTMLButtonElement).disabled = s.state !== 'running';
    const resultsTable = byId('lab-results');
    resultsTable.hidden = s.results.length === 0;
    byId('lab-downloads').hidden = s.results.length === 0 || s.state === 'running';
    setAttr(resultsTable, 'data-rows', String(s.results.length));
    const settings = byId('lab-settings');
    setText(settings, s.results.length === 0 ? '' : `From: ${describeSettings(s)}`);
    settings.hidden = s.results.length === 0;
    const warnings = s.check?.warnings ?? [];
    const check = byId('lab-check');
    check.replaceChildren(...warnings.map((w) => h('li', {}, w)));
    check.hidden = warnings.length === 0 || s.state === 'idle';
    byId('lab-results-body').replaceChildren(
      ...s.results.map((r) => h('tr', { 'data-policy': r.policy, 'data-balancers': r.balancers }, ...resultCells(r).map((c, i) => h(i === 0 ? 'th' : 'td', i === 0 ? { scope: 'row' } : { class: 'num' }, c)))),
    );
  }

  // Progress arrives over SSE, but only while a run goes on: an idle stream would take one of the
  // browser's six connections for nothing.
  let events: EventSource | undefined;
  const follow = (): void => {
    if (events) return;
    events = new EventSource('/api/lab/events');
    events.addEventListener('lab', (e) => {
      let parsed: LabStatus | undefined;
      try {
        parsed = parseLabStatus(JSON.parse((e as MessageEvent<string>).data));
      } catch {
        parsed = undefined;
      }
      if (!parsed) return;
      render(parsed);
      if (parsed.state !== 'running') {
        events?.close();
        events = undefined;
      }
    });
  };

  const startRun = async (kind: 'run' | 'compare'): Promise<void> => {
    const key = scenarioSelect.value;
    const preset = SCENARIOS[key];
    const spec: { rate: number; durationMs: number; delayScale: number; seed: number; balancers: string; scenario?: { upstream: string; fault: Fault } } = {
      rate: numberIn('lab-rate'),
      durationMs: Math.round(numberIn('lab-duration') * 1000),
      delayScale: Number(imagesSelect.value),
      seed: 1,
      balancers: balancersSelect.value,
    };
    if (preset && target() !== '') spec.scenario = { upstream: target(), fault: preset.fault };
    const answer = await write('POST', `/api/lab/${kind}`, spec, labStatus, kind === 'run' ? 'Run' : 'Compare');
    if (answer === undefined) return;
    // The answer carries the capacity check's warnings: shown before the first progress event.
    const started = parseLabStatus(answer);
    if (started) render(started);
    follow();
  };
  byId('lab-form', HTMLFormElement).addEventListener('submit', (ev) => {
    ev.preventDefault();
    const submitter = (ev).submitter;
    void startRun(submitter?.id === 'lab-compare' ? 'compare' : 'run');
  });
  onClick('lab-cancel', () => {
    void write('POST', '/api/lab/cancel', {}, controlStatus, 'Cancel');
  });

  /** Puts a run's settings back into the form, so the form and the table below it agree. */
  const showSpec = (s: LabStatus): void => {
    const spec = s.spec;
    if (spec === null) return;
    byId('lab-rate', HTMLInputElement).value = String(spec.rate);
    byId('lab-duration', HTMLInputElement).value = String(spec.durationMs / 1000);
    if (IMAGE_SPEEDS.some((speed) => speed.scale === spec.delayScale)) imagesSelect.value = String(spec.delayScale);
    scenarioSelect.value = scenarioKeyOf(spec.scenario?.fault);
    if (BALANCER_MODES.some((m) => m.value === spec.balancers)) balancersSelect.value = spec.balancers;
    wantedTarget = spec.scenario?.upstream ?? '';
    if ([...targetSelect.options].some((o) => o.value === wantedTarget)) targetSelect.value = wantedTarget;
  };

  /** The balancer runs without the lab: its controls stay in place but disabled, and say how to turn it on. */
  const showOff = (): void => {
    setAttr(byId('lab'), 'data-lab', 'off');
    setAttr(labStatus, 'data-state', 'off');
    setText(labStatus, LAB_OFF_TEXT);
    for (const control of document.querySelectorAll<HTMLButtonElement | HTMLInputElement | HTMLSelectElement>('#lab-form :is(button, input, select), [data-scenario]')) {
      control.disabled = true;
    }
  };

  // The last run (or one started before this page loaded, or from another tab) is shown, with its
  // settings in the form, and followed; or the lab is off on this balancer.
  void fetch('/api/lab', { cache: 'no-store' })
    .then(async (res) => readLabAnswer(res.ok, await res.json().catch(() => undefined)))
    .then((s) => {
      if (s === 'off') {
        showOff();
        return;
      }
      if (!s) return;
      showSpec(s);
      render(s);
      if (s.state === 'running') follow();
    })
    .catch(() => undefined);

  let knownTargets = '';
  return {
    update(snap) {
      const policyCurrent = byId('policy-current');
      setText(policyCurrent, snap.policy || '–');
      setAttr(policyCurrent, 'data-policy', snap.policy);
      const sharing = byId('peer-sharing');
      setText(sharing, describeSharing(snap.sharing, snap.peers));
      setAttr(sharing, 'data-sharing', snap.sharing === true ? 'on' : 'off');
      const ids = snap.upstreams.map((u) => u.id);
      const key = ids.join(',');
      if (key === knownTargets) return;
      knownTargets = key;
      const chosen = wantedTarget !== '' && ids.includes(wantedTarget) ? wantedTarget : targetSelect.value;
      wantedTarget = '';
      targetSelect.replaceChildren(...ids.map((id) => h('option', { value: id }, id)));
      // Keep the operator's choice while that replica exists; otherwise the last one (often the one to make slow).
      targetSelect.value = ids.includes(chosen) ? chosen : (ids.at(-1) ?? '');
    },
  };
}
