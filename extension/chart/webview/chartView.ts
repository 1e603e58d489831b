// The chart webview's script (bundled to dist/chart.js with uPlot): the metric per experiment as
// keep / discard / crash markers, the running best as a stepped line, a tooltip with the
// description, click -> that experiment's changes. Colours come from VS Code's theme variables.
// A large session comes reduced (the daemon's `chartSeries`): the keeps stay markers on the best
// line (or, more of them than columns, a green bar over each column's keeps), each column's
// discards one bar over their metric range, stronger the more of the column they are, crashes a
// red tick at the bottom; the hover asks for the experiment under it. A parallel loop's experiments
// carry a mark in their worker's lane at the top (a shaded band per column when reduced), and the
// hover names the worker.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { exact, tally } from "../../counts";
import { formatMetric as format } from "../../format";
import {
  ChartSeries,
  pointText as describePoint,
  ReducedSeries,
  type ChartPoint,
  type ChartSummary,
  type FromWebview,
  type ToWebview,
} from "../chartData";
import "./curveView"; // the learning curves under the chart, with their own messages
import { css, theme } from "./theme";

interface VsCodeApi {
  postMessage(message: FromWebview): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
// When the script started, the data came and the plot was drawn (ms since the page's start): the
// e2e suite reads them to tell the webview's loading from the drawing.
const timing: Record<string, number> = { script: Math.round(performance.now()) };
const mark = (what: string) => {
  timing[what] = Math.round(performance.now());
  document.body.dataset.timing = JSON.stringify(timing);
};
const root = document.getElementById("chart")!;
const tooltip = document.getElementById("tooltip")!;
const summary = document.getElementById("summary")!;
const empty = document.getElementById("empty")!;

let series = new ChartSeries("lower");
let metric = "metric";
let numbers: ChartSummary = { counts: {}, best: null };
let plot: uPlot | undefined;
let pending = false;
let hovered: number | null = null;
/** Set when the session came reduced; `series` is then empty. */
let reduced: ReducedSeries | undefined;
const details = new Map<number, ChartPoint | null>();
const asked = new Set<number>();

function data(): uPlot.AlignedData {
  if (reduced) {
    const r = reduced.columns;
    return [r.x, r.keep, r.best, r.low, r.high] as unknown as uPlot.AlignedData;
  }
  const c = series.columns;
  return [c.x, c.keep, c.discard, c.crash, c.best] as unknown as uPlot.AlignedData;
}

function markers(label: string, color: string, size: number): uPlot.Series {
  return {
    label,
    stroke: color,
    fill: color,
    paths: () => null,
    points: { show: true, size, space: 0, stroke: color, fill: color },
  };
}

/** The reduced chart's buckets, under the series: a bar over each column's discard range, its
 * strength the share of discards in the column (density, not 100,000 merged markers); a red tick
 * at the bottom for the column's crashes. */
function drawBuckets(u: uPlot): void {
  if (!reduced) return;
  const { left, top, width, height } = u.bbox;
  const xs = u.scales.x;
  if (xs.min === undefined || xs.max === undefined || xs.max <= xs.min) return;
  const ctx = u.ctx;
  const dpr = window.devicePixelRatio || 1;
  const barWidth = Math.max(dpr, (reduced.span * width) / (xs.max - xs.min));
  const discard = css("--vscode-descriptionForeground", "#888");
  const crash = css("--vscode-charts-red", "#f14c4c");
  const keep = css("--vscode-charts-green", "#89d185");
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top, width, height);
  ctx.clip();
  for (const entry of reduced.entries) {
    const b = entry.bucket;
    if (!b) continue;
    const x = u.valToPos(entry.x, "x", true) - barWidth / 2;
    const n = b.last - b.first + 1;
    if ((b.discard ?? 0) > 0 && b.discard_min != null && b.discard_max != null) {
      const y1 = u.valToPos(b.discard_max, "y", true);
      const y2 = u.valToPos(b.discard_min, "y", true);
      ctx.globalAlpha = 0.25 + 0.75 * Math.min(1, (b.discard ?? 0) / n);
      ctx.fillStyle = discard;
      ctx.fillRect(x, y1 - dpr, barWidth, Math.max(2 * dpr, y2 - y1 + 2 * dpr));
    }
    if (!reduced.listed && (b.keep ?? 0) > 0 && b.keep_min != null && b.keep_max != null) {
      // Keeps too many for markers: their range in the keep colour, over the discards.
      const y1 = u.valToPos(b.keep_max, "y", true);
      const y2 = u.valToPos(b.keep_min, "y", true);
      ctx.globalAlpha = 0.35 + 0.65 * Math.min(1, ((b.keep ?? 0) * 4) / n);
      ctx.fillStyle = keep;
      ctx.fillRect(x, y1 - dpr, barWidth, Math.max(2 * dpr, y2 - y1 + 2 * dpr));
    }
    if ((b.crash ?? 0) > 0) {
      ctx.globalAlpha = 0.35 + 0.65 * Math.min(1, ((b.crash ?? 0) * 4) / n);
      ctx.fillStyle = crash;
      ctx.fillRect(x, top + height - 5 * dpr, barWidth, 5 * dpr);
    }
  }
  ctx.restore();
}

/** Lane colours, one per worker (cycled past eight). */
const LANE_COLOURS = ["blue", "orange", "purple", "yellow", "green", "red"].map((c) => `--vscode-charts-${c}`);
const LANE_HEIGHT = 4;

/** A parallel loop's marks at the top of the plot: each experiment a worker ran is a tick in that
 * worker's lane, so experiments that ran side by side show as ticks in several lanes; a reduced
 * chart shades each column by its share of such experiments. Nothing when none had a worker. */
function drawLanes(u: uPlot): void {
  const { left, top, width, height } = u.bbox;
  const xs = u.scales.x;
  if (xs.min === undefined || xs.max === undefined || xs.max <= xs.min) return;
  const ctx = u.ctx;
  const dpr = window.devicePixelRatio || 1;
  const lane = LANE_HEIGHT * dpr;
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top, width, height);
  ctx.clip();
  if (reduced) {
    const barWidth = Math.max(dpr, (reduced.span * width) / (xs.max - xs.min));
    ctx.fillStyle = css(LANE_COLOURS[0]!, "#3794ff");
    for (const entry of reduced.entries) {
      const b = entry.bucket;
      if (!b || !b.parallel) continue;
      ctx.globalAlpha = 0.3 + 0.7 * Math.min(1, b.parallel / (b.last - b.first + 1));
      ctx.fillRect(u.valToPos(entry.x, "x", true) - barWidth / 2, top, barWidth, lane);
    }
  } else {
    const lanes = series.lanes;
    const tick = Math.max(2 * dpr, Math.min(8 * dpr, (0.8 * width) / (xs.max - xs.min)));
    const colours = lanes.map((_, i) => css(LANE_COLOURS[i % LANE_COLOURS.length]!, "#3794ff"));
    for (const point of series.points) {
      if (point.worker === undefined) continue;
      const i = lanes.indexOf(point.worker);
      ctx.fillStyle = colours[i]!;
      ctx.fillRect(u.valToPos(point.number, "x", true) - tick / 2, top + i * lane, tick, lane - dpr);
    }
  }
  ctx.restore();
}

function seriesOptions(): uPlot.Series[] {
  const best: uPlot.Series = {
    label: "best",
    stroke: css("--vscode-charts-blue", "#3794ff"),
    width: 2,
    spanGaps: true,
    points: { show: false },
    paths: uPlot.paths.stepped!({ align: 1 }),
  };
  if (reduced) {
    // low / high are not drawn as series: they only make the y range hold every discard.
    const range = (label: string): uPlot.Series => ({ label, paths: () => null, points: { show: false } });
    return [{ label: "#" }, markers("keep", css("--vscode-charts-green", "#89d185"), 5), best, range("low"), range("high")];
  }
  return [
    { label: "#" },
    markers("keep", css("--vscode-charts-green", "#89d185"), 9),
    markers("discard", css("--vscode-descriptionForeground", "#888"), 7),
    markers("crash", css("--vscode-charts-red", "#f14c4c"), 9),
    best,
  ];
}

function build(): void {
  plot?.destroy();
  const { axis } = theme();
  const opts: uPlot.Options = {
    width: Math.max(200, root.clientWidth),
    height: Math.max(150, root.clientHeight),
    // Half an experiment of room on each side: the first and last markers are not cut in half.
    scales: { x: { time: false, range: (_u, min, max) => (min === null || max === null ? [0, 1] : [min - 0.5, max + 0.5]) } },
    legend: { show: false },
    cursor: { drag: { x: true, y: false }, points: { show: false } },
    axes: [
      {
        ...axis,
        label: "experiment",
        incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1e6],
      },
      { ...axis, label: metric, size: 70, values: (_u, values) => values.map((v) => format(v)) },
    ],
    series: seriesOptions(),
    hooks: { setCursor: [(u) => showTooltip(u)], drawAxes: [(u) => drawBuckets(u), (u) => drawLanes(u)] },
  };
  plot = new uPlot(opts, data(), root);
  plot.over.addEventListener("click", () => {
    if (hovered !== null) vscode.postMessage({ type: "open", number: hovered });
  });
  refreshText();
}

function detail(number: number): ChartPoint | null | undefined {
  if (!details.has(number) && !asked.has(number)) {
    asked.add(number);
    vscode.postMessage({ type: "detail", number });
  }
  return details.get(number);
}

function pointText(point: ChartPoint): string {
  return describePoint(point, metric, format);
}

/** The reduced chart's hover: a keep, or a column's numbers and the experiment under the cursor. */
function reducedTooltip(u: uPlot, idx: number): string | null {
  const entry = reduced!.entries[idx];
  if (!entry) return null;
  if (entry.keep) {
    hovered = entry.keep.number;
    const known = detail(hovered);
    return known ? pointText(known) : `#${hovered} keep · ${metric} ${format(entry.keep.metric)}`;
  }
  const b = entry.bucket!;
  const at = Math.round(u.posToVal(u.cursor.left ?? 0, "x"));
  hovered = Math.min(b.last, Math.max(b.first, at));
  const parts = [`${exact(b.discard ?? 0)} discard${b.discard_min != null ? ` (${format(b.discard_min)} – ${format(b.discard_max ?? null)})` : ""}`];
  if (b.crash) parts.push(`${exact(b.crash)} crash`);
  if (b.keep) parts.push(`${exact(b.keep)} keep`);
  const known = detail(hovered);
  const head = `#${b.first}–#${b.last}: ${parts.join(" · ")}`;
  return known === undefined ? `${head}\n#${hovered} …` : known ? `${head}\n${pointText(known)}` : head;
}

function showTooltip(u: uPlot): void {
  const idx = u.cursor.idx;
  if (reduced) {
    const text = idx === null || idx === undefined || u.cursor.left === undefined || u.cursor.left < 0 ? null : reducedTooltip(u, idx);
    if (text === null) {
      hovered = null;
      tooltip.style.display = "none";
      return;
    }
    tooltip.textContent = text;
    // What the hover is about and whether its details came (the e2e suite waits on these).
    tooltip.dataset.number = String(hovered);
    tooltip.dataset.detail = details.get(hovered!) ? "1" : "0";
    const bounds = u.over.getBoundingClientRect();
    tooltip.style.display = "block";
    tooltip.style.left = `${Math.min(bounds.left + (u.cursor.left ?? 0) + 12, window.innerWidth - tooltip.offsetWidth - 8)}px`;
    tooltip.style.top = `${bounds.top + (u.cursor.top ?? 0) + 12}px`;
    return;
  }
  const point = idx === null || idx === undefined ? undefined : series.points[idx];
  if (!point || u.cursor.left === undefined || u.cursor.left < 0) {
    hovered = null;
    tooltip.style.display = "none";
    return;
  }
  hovered = point.number;
  tooltip.textContent = pointText(point);
  const bounds = u.over.getBoundingClientRect();
  const left = bounds.left + u.valToPos(point.number, "x");
  tooltip.style.display = "block";
  tooltip.style.left = `${Math.min(left + 12, window.innerWidth - tooltip.offsetWidth - 8)}px`;
  tooltip.style.top = `${bounds.top + (u.cursor.top ?? 0) + 12}px`;
}

function refreshText(): void {
  // The daemon's numbers, worded as in the tree's tooltip (counts.ts), not counted from the points:
  // the baseline is not an experiment there.
  const counts = tally(numbers.counts);
  const total = counts.experiments;
  const best = numbers.best;
  const key = (cls: string, text: string) => {
    const span = document.createElement("span");
    span.className = `key ${cls}`;
    span.textContent = text;
    return span;
  };
  const span = reduced && reduced.span > 1 ? ` · a column per ${exact(reduced.span)} experiments` : "";
  const lanes = reduced ? [] : series.lanes;
  const parallel = lanes.length > 0 || (reduced?.entries.some((e) => e.bucket?.parallel) ?? false);
  summary.replaceChildren(
    `${exact(total)} experiment${total === 1 ? "" : "s"} · best ${metric} ${format(best)} `,
    key("keep", `${reduced && !reduced.listed ? "▮" : "●"} ${exact(counts.keep)} keep`),
    key("discard", `${reduced ? "▮" : "●"} ${exact(counts.discard)} discard`),
    key("crash", `${reduced ? "▁" : "●"} ${exact(counts.crash)} crash`),
    key("best", "— best"),
    ...(parallel ? [key("parallel", lanes.length > 1 ? `▔ ${lanes.length} workers' lanes` : "▔ ran by a worker")] : []),
    `${span} · click a point to open its changes`,
  );
  empty.style.display = series.size || reduced?.total ? "none" : "block";
}

function update(): void {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    if (!plot) build();
    else plot.setData(data());
    refreshText();
  });
}

function receive(message: ToWebview): void {
  if ((message.type as string) === "curve") return; // curveView.ts draws it
  if (message.type === "summary") {
    numbers = message.summary;
    refreshText();
    return;
  }
  if (message.type === "detail") {
    details.set(message.number, message.point);
    asked.delete(message.number);
    if (plot && hovered === message.number) showTooltip(plot);
    return;
  }
  numbers = message.summary;
  if (message.type === "reset" || message.type === "reduced") {
    mark("data");
    metric = message.metric || "metric";
    details.clear();
    asked.clear();
    if (message.type === "reduced") {
      reduced = new ReducedSeries(message.reduction);
      series = new ChartSeries(message.direction);
    } else {
      reduced = undefined;
      series = ChartSeries.from(message.direction, message.points);
    }
    build();
    mark("drawn");
    // The frame that shows it (the e2e suite's click-to-plot figure ends here).
    requestAnimationFrame(() => setTimeout(() => mark("painted")));
  } else if (message.type === "append") {
    if (reduced) {
      for (const point of message.points) reduced.append(point);
    } else if (!series.append(message.points)) {
      series = ChartSeries.from(series.direction, [...series.points, ...message.points]);
    }
    update();
  }
}

window.addEventListener("message", (event: MessageEvent<ToWebview>) => receive(event.data));

new ResizeObserver(() => plot?.setSize({ width: Math.max(200, root.clientWidth), height: Math.max(150, root.clientHeight) })).observe(root);
// Theme changes switch the body's class: rebuild with the new colours.
new MutationObserver(() => build()).observe(document.body, { attributes: true, attributeFilter: ["class"] });

// The session embedded in the page (chartHtml.ts): drawn without asking for it, in a task of its
// own after the next frame. The page's parsing and this script's compiling are one task already,
// and the webview may share the window's main thread: run back to back, the two tasks made one
// frame gap of both (#21). A hidden page gets no frames: the timer starts it then.
let started = false;
function start(): void {
  if (started) return;
  started = true;
  const embedded = document.getElementById("first")?.textContent;
  const first = embedded ? (JSON.parse(embedded) as { id: number; message: ToWebview }) : undefined;
  if (first) receive(first.message);
  // About one bucket per pixel of the plot (its width less the y axis).
  vscode.postMessage({ type: "ready", columns: Math.max(50, root.clientWidth - 80), first: first?.id });
}
requestAnimationFrame(() => setTimeout(start));
setTimeout(start, 100);
