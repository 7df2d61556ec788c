/**
 * The live part of the page: one row per upstream (in-flight bar, rates, totals, health, weight),
 * the cluster totals and the balancer's last routing decisions. Elements are created once per
 * upstream and then only their text and attributes change, ten times a second.
 */
import type { ColorMap } from './colors.js';
import { describeReason } from './decision.js';
import { byId, h, setAttr, setStyle, setText } from './dom.js';
import { formatClock, formatInt, formatRate, formatRatio, formatShare, niceCeil } from './format.js';
import type { TrafficHistory } from './history.js';
import { describePeers } from './peers.js';
import type { Snapshot, UpstreamSnapshot } from './snapshot.js';

/** The peak marker on each bar and the bar scale look back this far. */
export const PEAK_WINDOW_MS = 60_000;

interface Row {
  readonly el: HTMLElement;
  readonly backend: HTMLElement;
  readonly state: HTMLElement;
  readonly weight: HTMLElement;
  readonly meter: HTMLElement;
  readonly fill: HTMLElement;
  readonly peak: HTMLElement;
  readonly inFlight: HTMLElement;
  readonly rps: HTMLElement;
  readonly requests: HTMLElement;
  readonly share: HTMLElement;
  readonly errors: HTMLElement;
}

/** What {@link createLiveView} returns. */
export interface LiveView {
  /** Shows one Snapshot; `history` must already have ingested it. */
  update(snapshot: Snapshot, history: TrafficHistory): void;
  /** Remembers which backend (X-Backend-Id) answered through an upstream, learned from the page's own requests. */
  noteBackend(upstreamId: string, backendId: string): void;
  /**
   * Counts a failure of the page's own requests (timeout, network error, 5xx) in the Errors card:
   * a balancer that is not reachable counts none itself, and that is when users look.
   */
  notePageFailure(): void;
  /** Dims the figures while they are not live. */
  setStale(stale: boolean): void;
}

const STATE_LABEL: Record<string, string> = {
  up: 'up',
  down: 'down',
  unproven: 'unproven',
  draining: 'draining',
};

/** Finds the static elements of index.html; rows are added and removed as upstreams come and go. */
export function createLiveView(colors: ColorMap): LiveView {
  const rowsEl = byId('upstream-rows');
  const emptyEl = byId('no-upstreams');
  const table = byId('upstream-table');
  const scaleEl = byId('bar-scale');
  const kpi = {
    rps: byId('kpi-rps'),
    inFlight: byId('kpi-inflight'),
    requests: byId('kpi-requests'),
    errors: byId('kpi-errors'),
    imbalance: byId('kpi-imbalance'),
    available: byId('kpi-available'),
  };
  const tieBreakEl = byId('tie-break');
  const instanceEl = byId('instance');
  const policyEl = byId('policy');
  const peersEl = byId('peers');
  // The Errors card: the balancer's count plus the page's own failed requests.
  let lastErrors = 0;
  let pageFailures = 0;
  const renderErrors = (): void => {
    const total = lastErrors + pageFailures;
    setText(kpi.errors, formatInt(total));
    setAttr(kpi.errors, 'data-nonzero', String(total > 0));
    setAttr(kpi.errors, 'data-page-failures', String(pageFailures));
    setAttr(kpi.errors, 'title', `${formatInt(lastErrors)} counted by the balancer, ${formatInt(pageFailures)} failed requests of this page`);
  };
  const explainEl = byId('explain');
  const lastUpdateEl = byId('last-update');
  const decisionList = byId('decisions');
  // The balancer keeps the last 20 decisions; 20 list items are made once and reused.
  const decisionItems = Array.from({ length: 20 }, () => {
    const li = h(
      'li',
      { 'data-testid': 'decision' },
      h('time', { class: 'num' }),
      h('span', { class: 'chosen' }),
      h('span', { class: 'reason' }),
    );
    li.hidden = true;
    decisionList.append(li);
    return li;
  });
  const rows = new Map<string, Row>();
  const backends = new Map<string, string>();

  function createRow(id: string): Row {
    const backend = h('span', { class: 'backend', 'data-testid': 'backend-id' });
    const state = h('span', { class: 'badge', 'data-testid': 'state' });
    const weight = h('span', { 'data-testid': 'weight' });
    const fill = h('div', { class: 'fill' });
    const peak = h('div', { class: 'peak', title: 'Peak over the last minute' });
    const meter = h(
      'div',
      {
        class: 'bar',
        role: 'meter',
        'aria-label': `In-flight requests at ${id}`,
        'aria-valuemin': '0',
        'aria-valuemax': '4',
        'aria-valuenow': '0',
      },
      fill,
      peak,
    );
    const inFlight = h('span', { class: 'inflight num', 'data-testid': 'in-flight' }, '0');
    const rps = h('span', { class: 'num', 'data-testid': 'rps' }, '0');
    const requests = h('span', { class: 'num', 'data-testid': 'requests' }, '0');
    const share = h('span', { class: 'num', 'data-testid': 'share' }, '0%');
    const errors = h('span', { class: 'num', 'data-testid': 'errors' }, '0');
    const cell = (cls: string, label: string, ...kids: (Node | string)[]): HTMLElement =>
      h('div', { class: `cell ${cls}`, role: 'cell', 'data-label': label }, ...kids);
    const el = h(
      'div',
      { class: 'row', role: 'row', 'data-testid': 'upstream-row', 'data-upstream': id },
      cell(
        'c-name',
        'Upstream',
        h('span', { class: 'swatch', 'aria-hidden': 'true' }),
        h('span', { class: 'names' }, h('span', { class: 'name', 'data-testid': 'upstream-id', title: id }, id), backend),
      ),
      cell('c-state', 'State', state),
      cell('c-weight', 'Weight', weight),
      cell('c-bar', 'In flight', meter, inFlight),
      cell('c-rps', 'Req/s', rps),
      cell('c-requests', 'Requests', requests),
      cell('c-share', 'Share', share),
      cell('c-errors', 'Errors', errors),
    );
    return { el, backend, state, weight, meter, fill, peak, inFlight, rps, requests, share, errors };
  }

  function updateRow(row: Row, u: UpstreamSnapshot, snap: Snapshot, history: TrafficHistory, scale: number): void {
    const { el } = row;
    setStyle(el, '--c', colors.get(u.id));
    setAttr(el, 'data-state', u.state);
    setAttr(el, 'data-available', String(u.available));
    setAttr(el, 'data-in-flight', String(u.inFlight));
    const peak = history.peakInFlight(u.id, PEAK_WINDOW_MS);
    setAttr(el, 'data-peak', String(peak));
    const stateText = (STATE_LABEL[u.state] ?? u.state) + (u.state === 'up' && !u.available ? ' · full' : '');
    // A drain shows its countdown to the operator's deadline, live (ten snapshots a second).
    const drainText = u.drain ? (u.drain.drained ? ' · drained' : ` · ${Math.max(0, Math.ceil((u.drain.deadline - Date.now()) / 1000))} s`) : '';
    setText(row.state, stateText + drainText);
    setAttr(el, 'data-drain', u.drain ? (u.drain.drained ? 'drained' : 'running') : undefined);
    setAttr(row.state, 'data-state', u.state);
    setText(row.backend, backends.get(u.id) ?? '');
    // Long-lived (WebSocket) tunnels are in inFlight too; shown apart so requests read as requests.
    // With peers sharing counts, what every balancer has in flight there is shown beside this one's.
    const cluster = u.inFlightCluster ?? u.inFlight;
    const acrossBalancers = cluster === u.inFlight ? '' : ` · ${formatInt(cluster)} all`;
    setText(row.inFlight, (u.longLived > 0 ? `${formatInt(u.inFlight - u.longLived)} + ${formatInt(u.longLived)} ws` : formatInt(u.inFlight)) + acrossBalancers);
    setAttr(row.inFlight, 'title', acrossBalancers === '' ? undefined : `${formatInt(u.inFlight)} through this balancer, ${formatInt(cluster)} through all of them (peers' reports)`);
    setAttr(el, 'data-long-lived', String(u.longLived));
    setText(row.weight, formatInt(u.weight) + (u.maxInFlight > 0 ? ` · cap ${formatInt(u.maxInFlight)}` : ''));
    setStyle(row.fill, 'transform', `scaleX(${Math.min(1, u.inFlight / scale).toFixed(4)})`);
    setStyle(row.peak, 'left', `${(Math.min(1, peak / scale) * 100).toFixed(2)}%`);
    setAttr(row.peak, 'data-visible', String(peak > 0));
    setAttr(row.meter, 'aria-valuenow', String(u.inFlight));
    setAttr(row.meter, 'aria-valuemax', String(scale));
    setText(row.rps, formatRate(history.rate(u.id)));
    setText(row.requests, formatInt(u.requests));
    setText(row.share, formatShare(u.requests, snap.totals.requests));
    setText(row.errors, formatInt(u.errors));
    setAttr(row.errors, 'data-nonzero', String(u.errors > 0));
  }

  function updateRows(snap: Snapshot, history: TrafficHistory): void {
    const present = new Set(snap.upstreams.map((u) => u.id));
    for (const [id, row] of rows) {
      if (!present.has(id)) {
        row.el.remove();
        rows.delete(id);
      }
    }
    let scale = 4;
    for (const u of snap.upstreams) scale = Math.max(scale, u.inFlight, history.peakInFlight(u.id, PEAK_WINDOW_MS));
    scale = niceCeil(scale);
    setText(scaleEl, `0–${scale}`);
    // Rows follow the balancer's order; only a row that is out of place is moved.
    let prev: Element | null = null;
    for (const u of snap.upstreams) {
      let row = rows.get(u.id);
      if (!row) {
        row = createRow(u.id);
        rows.set(u.id, row);
      }
      updateRow(row, u, snap, history, scale);
      const want: Element | null = prev ? prev.nextElementSibling : rowsEl.firstElementChild;
      if (want !== row.el) rowsEl.insertBefore(row.el, want);
      prev = row.el;
    }
    emptyEl.hidden = rows.size > 0;
  }

  function updateDecisions(snap: Snapshot): void {
    const newestFirst = snap.decisions.slice(-decisionItems.length).reverse();
    decisionItems.forEach((li, i) => {
      const d = newestFirst[i];
      li.hidden = !d;
      if (!d) return;
      const [timeEl, chosenEl, reasonEl] = li.children;
      if (timeEl) setText(timeEl, formatClock(d.time));
      if (chosenEl) setText(chosenEl, d.chosen);
      if (reasonEl) {
        setText(reasonEl, d.reason);
        setAttr(reasonEl, 'title', describeReason(d.reason));
      }
      setAttr(li, 'data-chosen', d.chosen);
      setAttr(li, 'data-reason', d.reason);
      setStyle(li, '--c', colors.get(d.chosen));
    });
    setAttr(decisionList, 'data-count', String(newestFirst.length));
  }

  return {
    update(snap, history) {
      updateRows(snap, history);
      setText(kpi.rps, formatRate(history.totalRate()));
      setText(kpi.inFlight, formatInt(snap.totals.inFlight));
      setText(kpi.requests, formatInt(snap.totals.requests));
      lastErrors = snap.totals.errors;
      renderErrors();
      setText(kpi.imbalance, formatRatio(snap.imbalance));
      const available = snap.upstreams.filter((u) => u.available).length;
      // Panic: none passes its checks, yet every one takes requests; say so where health is shown.
      setText(kpi.available, snap.panic ? `${available} / ${snap.upstreams.length} · panic` : `${available} / ${snap.upstreams.length}`);
      setAttr(kpi.available, 'data-degraded', String(available < snap.upstreams.length));
      setAttr(kpi.available, 'data-panic', String(snap.panic));
      setText(tieBreakEl, snap.tieBreak || '–');
      setText(instanceEl, snap.instance || '–');
      setText(policyEl, snap.policy || '–');
      const peers = describePeers(snap.peers);
      setText(peersEl, peers.text);
      setAttr(peersEl, 'title', peers.title);
      setAttr(peersEl, 'data-degraded', String(peers.degraded));
      setText(explainEl, snap.explain ? 'on' : 'off');
      setText(lastUpdateEl, formatClock(snap.time));
      setAttr(lastUpdateEl, 'datetime', new Date(snap.time).toISOString());
      updateDecisions(snap);
    },
    noteBackend(upstreamId, backendId) {
      backends.set(upstreamId, backendId);
      const row = rows.get(upstreamId);
      if (row) setText(row.backend, backendId);
    },
    notePageFailure() {
      pageFailures++;
      renderErrors();
    },
    setStale(stale) {
      setAttr(table, 'data-stale', String(stale));
    },
  };
}
