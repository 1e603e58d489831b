// The chart webview's learning curves (imported by chartView.ts): under the experiments' chart,
// the running experiment's curve (or a clicked one's) over the best experiment's, step on x. Shown
// only once a curve exists ([metric] curve set); the label under the chart names the last point.
import uPlot from "uplot";
import { formatMetric as format } from "../../format";
import { aligned, curveLabel, type CurveMessage } from "../curveData";
import { css, theme } from "./theme";

const box = document.getElementById("curve")!;
const label = document.getElementById("curve-label")!;
let plot: uPlot | undefined;
let last: CurveMessage | undefined;

function build(message: CurveMessage): void {
  plot?.destroy();
  const { axis } = theme();
  const opts: uPlot.Options = {
    width: Math.max(200, box.clientWidth),
    height: Math.max(100, box.clientHeight),
    scales: { x: { time: false } },
    legend: { show: false },
    cursor: { points: { show: false } },
    axes: [
      { ...axis, label: "step" },
      { ...axis, label: message.metric || "curve", size: 70, values: (_u, values) => values.map((v) => format(v)) },
    ],
    series: [
      { label: "step" },
      { label: message.mainLabel, stroke: css("--vscode-charts-orange", "#d18616"), width: 2, spanGaps: true, points: { show: false } },
      { label: "best", stroke: css("--vscode-charts-blue", "#3794ff"), width: 1, dash: [4, 3], spanGaps: true, points: { show: false } },
    ],
  };
  plot = new uPlot(opts, aligned(message.main, message.reference) as unknown as uPlot.AlignedData, box);
}

function draw(message: CurveMessage): void {
  last = message;
  const any = !!(message.main?.steps.length || message.reference?.steps.length);
  box.style.display = any ? "block" : "none";
  label.style.display = any ? "block" : "none";
  label.textContent = curveLabel(message, format);
  if (!any) return;
  if (plot && plot.series[1]?.label === message.mainLabel) plot.setData(aligned(message.main, message.reference) as unknown as uPlot.AlignedData);
  else build(message);
}

window.addEventListener("message", (event: MessageEvent<{ type: string }>) => {
  if (event.data?.type === "curve") draw(event.data as CurveMessage);
});

new ResizeObserver(() => plot?.setSize({ width: Math.max(200, box.clientWidth), height: Math.max(100, box.clientHeight) })).observe(box);
new MutationObserver(() => last && plot && build(last)).observe(document.body, { attributes: true, attributeFilter: ["class"] });
