/**
 * Time series charts (uPlot) of requests per second and in-flight requests per upstream. A chart is
 * rebuilt only when its set of series changes (an upstream joined or aged out of the window) or the
 * colour scheme flips; otherwise new points go in with `setData`.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { ColorMap } from './colors.js';
import { formatRate, niceCeil } from './format.js';
import { TOTAL_ID, type SeriesColumns } from './history.js';

/** Options of {@link createTimeChart}. */
export interface TimeChartOptions {
  /** Accessible name of the chart's canvas region. */
  readonly label: string;
  readonly colors: ColorMap;
  /** Draw in-flight counts as steps (they are integers) instead of lines. */
  readonly stepped?: boolean;
  /** Lowest upper end of the y axis, so an idle chart does not magnify noise. */
  readonly minMax: number;
  readonly format: (v: number) => string;
}

/** What {@link createTimeChart} returns. */
export interface TimeChart {
  /** Draws these columns over the last `windowMs`. */
  update(cols: SeriesColumns, windowMs: number): void;
  /** Re-creates the chart (colour scheme change). */
  rebuild(): void;
  destroy(): void;
}

const cssVar = (name: string, fallback: string): string =>
  getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

/** Axis ticks: exact (0.25 stays 0.25), thousands grouped. */
export function tickLabel(v: number): string {
  return Math.abs(v) >= 1000 ? formatRate(v) : String(Number(v.toFixed(2)));
}

/** Short label for an upstream in a legend: drop the loopback address, keep the port. */
export function legendLabel(id: string): string {
  return id.replace(/^(127\.0\.0\.1|localhost|\[::1\]):/, ':');
}

/** Creates a chart inside `el` (which must be in the document). */
export function createTimeChart(el: HTMLElement, opts: TimeChartOptions): TimeChart {
  let plot: uPlot | undefined;
  let key = '';
  let last: { cols: SeriesColumns; windowMs: number } | undefined;
  let windowSec = 300;

  // uPlot types the legend value as number, but passes null where a series has no point.
  const showValue = (v: number | null): string => (v === null ? '–' : opts.format(v));
  const height = (): number => (window.matchMedia('(max-width: 640px)').matches ? 150 : 190);
  const width = (): number => Math.max(200, Math.floor(el.clientWidth));

  function build(cols: SeriesColumns): void {
    plot?.destroy();
    const fg = cssVar('--fg-muted', '#888');
    const grid = cssVar('--grid', 'rgba(128,128,128,0.2)');
    const axis = (): uPlot.Axis => ({
      stroke: fg,
      grid: { stroke: grid, width: 1 },
      ticks: { stroke: grid, width: 1 },
      font: '11px system-ui, sans-serif',
    });
    const series: uPlot.Series[] = [{}];
    for (const id of cols.ids) {
      series.push({
        label: legendLabel(id),
        stroke: opts.colors.get(id),
        width: 1.5,
        points: { show: false },
        value: (_u, v) => showValue(v),
        ...(opts.stepped ? { paths: uPlot.paths.stepped?.({ align: 1 }) } : {}),
      });
    }
    if (cols.series.has(TOTAL_ID)) {
      series.push({
        label: 'total',
        stroke: fg,
        width: 1,
        dash: [4, 4],
        points: { show: false },
        value: (_u, v) => showValue(v),
      });
    }
    plot = new uPlot(
      {
        width: width(),
        height: height(),
        cursor: { drag: { x: false, y: false } },
        legend: { show: true },
        scales: {
          // The x range is the chosen window ending at the newest point, so the chart scrolls
          // smoothly even while it has only a few points.
          x: { time: true, range: (_u, _min, max) => [max - windowSec, max] },
          y: { range: (_u, _min, max) => [0, niceCeil(max, opts.minMax)] },
        },
        axes: [axis(), { ...axis(), size: 44, values: (_u, vals) => vals.map(tickLabel) }],
        series,
      },
      toData(cols),
      el,
    );
    plot.root.setAttribute('role', 'img');
    plot.root.setAttribute('aria-label', opts.label);
  }

  function toData(cols: SeriesColumns): uPlot.AlignedData {
    const out: (number | null)[][] = [cols.x];
    for (const id of cols.ids) out.push(cols.series.get(id) ?? []);
    const total = cols.series.get(TOTAL_ID);
    if (total) out.push(total);
    return out as uPlot.AlignedData;
  }

  const observer = new ResizeObserver(() => {
    if (plot && Math.abs(plot.width - width()) > 1) plot.setSize({ width: width(), height: height() });
  });
  observer.observe(el);

  return {
    update(cols, windowMs) {
      last = { cols, windowMs };
      windowSec = windowMs / 1000;
      const nextKey = `${cols.ids.map((id) => `${id}=${opts.colors.get(id)}`).join(',')}|${cols.series.has(TOTAL_ID)}`;
      if (!plot || nextKey !== key) {
        key = nextKey;
        build(cols);
      } else {
        plot.setData(toData(cols));
      }
      el.dataset.series = String(cols.ids.length);
      el.dataset.points = String(cols.x.length);
    },
    rebuild() {
      if (last) build(last.cols);
    },
    destroy() {
      observer.disconnect();
      plot?.destroy();
      plot = undefined;
    },
  };
}

/** The two charts of the page share these formats. */
export const rateFormat = formatRate;
/** In-flight counts are integers; the axis may still ask for 0.5 steps on a tiny range. */
export const countFormat = (v: number): string => (Number.isInteger(v) ? String(v) : v.toFixed(1));
