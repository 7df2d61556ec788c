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

/** Where one x-axis label was drawn, in CSS pixels from the chart's left edge; `row` counts lines. */
export interface LabelBox {
  readonly text: string;
  readonly left: number;
  readonly right: number;
  readonly row: number;
}

/** The chart element, with what the browser tests (and a curious developer) can ask of it. */
export interface ChartElement extends HTMLElement {
  /** The x-axis labels of the last drawing, each line's box as the canvas drew it. */
  xAxisLabels?: () => LabelBox[];
}

/** uPlot's own record of an axis's last drawing (not in its types). */
interface DrawnAxis {
  readonly _splits?: readonly number[] | null;
  readonly _values?: readonly (string | number | null)[] | null;
  readonly font?: readonly [string, number];
}

/**
 * The x-axis labels' boxes of `plot`: uPlot draws them on the canvas, centred on their ticks, one
 * line under the other when a label has several.
 */
function xLabelBoxes(plot: uPlot): LabelBox[] {
  const axis = plot.axes[0] as DrawnAxis | undefined;
  const splits = axis?._splits ?? [];
  const values = axis?._values ?? [];
  const ctx = plot.ctx;
  ctx.save();
  ctx.font = axis?.font?.[0] ?? ctx.font;
  const plotLeft = plot.bbox.left / uPlot.pxRatio;
  const boxes: LabelBox[] = [];
  splits.forEach((split, i) => {
    const value = values[i];
    if (value === null || value === undefined) return;
    const centre = plotLeft + plot.valToPos(split, 'x');
    String(value)
      .split('\n')
      .forEach((text, row) => {
        // measureText works in canvas pixels: the canvas is scaled by pxRatio.
        const half = ctx.measureText(text).width / uPlot.pxRatio / 2;
        boxes.push({ text, left: centre - half, right: centre + half, row });
      });
  });
  ctx.restore();
  return boxes;
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

const pad2 = (n: number): string => String(n).padStart(2, '0');

/**
 * An x tick's label: the local 24-hour time, with seconds while ticks are under a minute apart.
 * One line and one width for every tick (uPlot's own labels add a date line and am/pm, and grow
 * from "1:05am" to "12:55pm", which is how neighbours came to touch).
 */
export function timeTickLabel(sec: number, incrSec: number): string {
  const d = new Date(sec * 1000);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return incrSec < 60 ? `${hm}:${pad2(d.getSeconds())}` : hm;
}

/** Ticks at these steps (seconds) only: the windows are 1 to 15 minutes. */
const TIME_STEPS = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
const AXIS_FONT = '11px system-ui, sans-serif';
/** Free space between two x labels, in CSS pixels. */
export const LABEL_GAP_PX = 12;

let widestLabel: number | undefined;
/** The width of the widest x label ("00:00:00" in the widest digit), in CSS pixels; measured once. */
function widestLabelPx(): number {
  if (widestLabel === undefined) {
    const ctx = document.createElement('canvas').getContext('2d');
    if (!ctx) return 64;
    ctx.font = AXIS_FONT;
    const digit = Math.max(...'0123456789'.split('').map((c) => ctx.measureText(c).width));
    widestLabel = Math.ceil(6 * digit + 2 * ctx.measureText(':').width);
  }
  return widestLabel;
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
      font: AXIS_FONT,
    });
    const labelPx = widestLabelPx();
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
        // Room on the right for half of the newest tick's label, which sits on the plot's edge.
        padding: [null, Math.ceil(labelPx / 2) + 2, null, null],
        legend: { show: true },
        scales: {
          // The x range is the chosen window ending at the newest point, so the chart scrolls
          // smoothly even while it has only a few points.
          x: { time: true, range: (_u, _min, max) => [max - windowSec, max] },
          y: { range: (_u, _min, max) => [0, niceCeil(max, opts.minMax)] },
        },
        axes: [
          {
            ...axis(),
            // Ticks at least one label plus a gap apart: neighbouring labels can never touch.
            space: labelPx + LABEL_GAP_PX,
            incrs: TIME_STEPS,
            values: (_u, splits, _axis, _space, incr) => splits.map((v) => timeTickLabel(v, incr)),
          },
          { ...axis(), size: 44, values: (_u, vals) => vals.map(tickLabel) },
        ],
        series,
      },
      toData(cols),
      el,
    );
    const drawn = plot;
    (el as ChartElement).xAxisLabels = () => xLabelBoxes(drawn);
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
