// The chart webview's script (bundled to dist/chart.js with uPlot): the metric per experiment as
// keep / discard / crash markers, the running best as a stepped line, a tooltip with the
// description, click -> that experiment's changes. Colours come from VS Code's theme variables.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { exact, tally } from "../../counts";
import { ChartSeries, type ChartSummary, type FromWebview, type ToWebview } from "../chartData";
import "./curveView"; // the learning curves under the chart, with their own messages

interface VsCodeApi {
  postMessage(message: FromWebview): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
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

function css(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

function format(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return "—";
  const abs = Math.abs(value);
  return abs !== 0 && (abs >= 1e6 || abs < 1e-4) ? value.toExponential(3) : String(Number(value.toPrecision(6)));
}

function data(): uPlot.AlignedData {
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

function build(): void {
  plot?.destroy();
  const foreground = css("--vscode-foreground", "#ccc");
  const grid = css("--vscode-editorWidget-border", "rgba(128,128,128,0.2)");
  const font = `${css("--vscode-font-size", "12px")} ${css("--vscode-font-family", "sans-serif")}`;
  const axis: uPlot.Axis = { stroke: foreground, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, font };
  const opts: uPlot.Options = {
    width: Math.max(200, root.clientWidth),
    height: Math.max(150, root.clientHeight),
    // Half an experiment of room on each side: the first and last markers are not cut in half.
    scales: { x: { time: false, range: (_u, min, max) => (min === null || max === null ? [0, 1] : [min - 0.5, max + 0.5]) } },
    legend: { show: false },
    cursor: { drag: { x: true, y: false }, points: { show: false } },
    axes: [
      { ...axis, label: "experiment", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000] },
      { ...axis, label: metric, size: 70, values: (_u, values) => values.map((v) => format(v)) },
    ],
    series: [
      { label: "#" },
      markers("keep", css("--vscode-charts-green", "#89d185"), 9),
      markers("discard", css("--vscode-descriptionForeground", "#888"), 7),
      markers("crash", css("--vscode-charts-red", "#f14c4c"), 9),
      {
        label: "best",
        stroke: css("--vscode-charts-blue", "#3794ff"),
        width: 2,
        spanGaps: true,
        points: { show: false },
        paths: uPlot.paths.stepped!({ align: 1 }),
      },
    ],
    hooks: { setCursor: [(u) => showTooltip(u)] },
  };
  plot = new uPlot(opts, data(), root);
  plot.over.addEventListener("click", () => {
    if (hovered !== null) vscode.postMessage({ type: "open", number: hovered });
  });
  refreshText();
}

function showTooltip(u: uPlot): void {
  const idx = u.cursor.idx;
  const point = idx === null || idx === undefined ? undefined : series.points[idx];
  if (!point || u.cursor.left === undefined || u.cursor.left < 0) {
    hovered = null;
    tooltip.style.display = "none";
    return;
  }
  hovered = point.number;
  tooltip.textContent = `#${point.number} ${point.status} · ${metric} ${format(point.metric)}${
    point.description ? `\n${point.description}` : ""
  }`;
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
  summary.replaceChildren(
    `${exact(total)} experiment${total === 1 ? "" : "s"} · best ${metric} ${format(best)} `,
    key("keep", `● ${exact(counts.keep)} keep`),
    key("discard", `● ${exact(counts.discard)} discard`),
    key("crash", `● ${exact(counts.crash)} crash`),
    key("best", "— best"),
    " · click a point to open its changes",
  );
  empty.style.display = series.size ? "none" : "block";
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

window.addEventListener("message", (event: MessageEvent<ToWebview>) => {
  const message = event.data;
  if ((message.type as string) === "curve") return; // curveView.ts draws it
  if (message.type === "summary") {
    numbers = message.summary;
    refreshText();
    return;
  }
  numbers = message.summary;
  if (message.type === "reset") {
    metric = message.metric || "metric";
    series = ChartSeries.from(message.direction, message.points);
    build();
  } else if (message.type === "append") {
    if (!series.append(message.points)) {
      series = ChartSeries.from(series.direction, [...series.points, ...message.points]);
    }
    update();
  }
});

new ResizeObserver(() => plot?.setSize({ width: Math.max(200, root.clientWidth), height: Math.max(150, root.clientHeight) })).observe(root);
// Theme changes switch the body's class: rebuild with the new colours.
new MutationObserver(() => build()).observe(document.body, { attributes: true, attributeFilter: ["class"] });

vscode.postMessage({ type: "ready" });
