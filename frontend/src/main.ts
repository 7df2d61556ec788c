/**
 * Entry point of the page: subscribes to `/api/events`, keeps the traffic history, and drives the
 * live rows, the charts and the controls. Served by nginx (Docker) or the launcher (`npm start`)
 * with the same URLs, so everything here is same-origin.
 */
import './styles.css';
import { countFormat, createTimeChart, rateFormat } from './charts.js';
import { createColorMap } from './colors.js';
import { createSnapshotStream, type ConnectionInfo, type ConnectionState } from './connection.js';
import { byId, setAttr, setText } from './dom.js';
import { formatDuration } from './format.js';
import { createTrafficHistory } from './history.js';
import { setupBurst, setupImageDemo } from './image-demo.js';
import { setupLab } from './lab.js';
import { createLiveView } from './live-view.js';
import type { Snapshot } from './snapshot.js';

const WINDOWS_MS = [60_000, 300_000, 900_000] as const;

function start(): void {
  const colors = createColorMap();
  const history = createTrafficHistory({ stepMs: 500, capacityMs: WINDOWS_MS[WINDOWS_MS.length - 1] });
  const view = createLiveView(colors);
  const rpsChart = createTimeChart(byId('chart-rps'), {
    label: 'Requests per second per upstream',
    colors,
    minMax: 1,
    format: rateFormat,
  });
  const inFlightChart = createTimeChart(byId('chart-inflight'), {
    label: 'In-flight requests per upstream',
    colors,
    stepped: true,
    minMax: 4,
    format: countFormat,
  });
  let windowMs: number = WINDOWS_MS[0];
  let drawnVersion = -1;
  let latest: Snapshot | undefined;

  function drawCharts(): void {
    if (history.version === drawnVersion) return;
    drawnVersion = history.version;
    const rps = history.rateColumns(windowMs);
    const inFlight = history.inFlightColumns(windowMs);
    // Colours stay reserved while an upstream is still drawn, even after it left the snapshot.
    colors.retain([...(latest?.upstreams.map((u) => u.id) ?? []), ...rps.ids, ...inFlight.ids]);
    rpsChart.update(rps, windowMs);
    inFlightChart.update(inFlight, windowMs);
  }

  // The time window buttons behave as a radio group of toggle buttons.
  const windowButtons = Array.from(document.querySelectorAll<HTMLButtonElement>('[data-window-ms]'));
  for (const b of windowButtons) {
    b.addEventListener('click', () => {
      windowMs = Number(b.dataset.windowMs);
      for (const other of windowButtons) setAttr(other, 'aria-pressed', String(other === b));
      drawnVersion = -1;
      drawCharts();
    });
  }
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    rpsChart.rebuild();
    inFlightChart.rebuild();
  });

  const onBackend = (upstream: string, backend: string): void => {
    view.noteBackend(upstream, backend);
  };
  const onFailure = (): void => {
    view.notePageFailure();
  };
  setupImageDemo({ colors, onBackend, onFailure });
  setupBurst({ colors, onBackend, onFailure });

  const lab = setupLab();

  const connEl = byId('connection');
  const connText = byId('connection-text');
  const retryButton = byId('retry-now', HTMLButtonElement);
  let connState: ConnectionState = 'connecting';
  let connInfo: ConnectionInfo = {};

  function renderConnection(): void {
    setAttr(connEl, 'data-state', connState);
    const now = Date.now();
    let text: string;
    switch (connState) {
      case 'connecting':
        text = 'Connecting…';
        break;
      case 'live':
        text = 'Live';
        break;
      case 'stale':
        text = `No data for ${formatDuration(now - (connInfo.lastMessageAt ?? now))}`;
        break;
      case 'reconnecting':
        text = 'Reconnecting…';
        break;
      case 'disconnected': {
        const wait = Math.max(0, (connInfo.retryAt ?? now) - now);
        text = `Disconnected · retrying in ${Math.ceil(wait / 1000)} s`;
        break;
      }
    }
    setText(connText, text);
    retryButton.hidden = connState !== 'disconnected';
    view.setStale(connState !== 'live');
  }

  const stream = createSnapshotStream({
    url: '/api/events',
    onSnapshot(s) {
      latest = s;
      history.ingest(s);
      lab.update(s);
      // A background tab keeps its history but skips the drawing until it is looked at again.
      if (!document.hidden) view.update(s, history);
    },
    onState(state, info) {
      connState = state;
      connInfo = info;
      renderConnection();
    },
  });
  retryButton.addEventListener('click', () => {
    stream.retryNow();
  });
  stream.start();

  document.addEventListener('visibilitychange', () => {
    if (document.hidden || !latest) return;
    view.update(latest, history);
    drawCharts();
  });

  // Charts move at 2 Hz (their bucket width); the countdown texts need a clock of their own.
  window.setInterval(() => {
    if (document.hidden) return;
    drawCharts();
    if (connState !== 'live') renderConnection();
  }, 250);
}

start();
