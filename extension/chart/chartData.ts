// The chart's data, pure and shared by the extension host (chart.ts) and the webview script:
// one point per experiment, in uPlot's column layout, with the best line: the metric of the last
// keep so far (the commit the branch sat on, what the next experiment was measured against). The
// daemon decided each keep; nothing here compares metrics.
import type { Counts, Experiment, Status } from "../protocol";

export interface ChartPoint {
  number: number;
  status: Status;
  metric: number | null;
  description: string;
}

/** The session's numbers as the daemon counts them (baseline not counted), shown above the plot. */
export interface ChartSummary {
  counts: Counts;
  best: number | null;
}

/** Messages from the extension to the webview. */
export type ToWebview =
  | { type: "reset"; metric: string; direction: string; points: ChartPoint[]; summary: ChartSummary }
  | { type: "append"; points: ChartPoint[]; summary: ChartSummary }
  | { type: "summary"; summary: ChartSummary };

/** Messages from the webview to the extension. */
export type FromWebview = { type: "ready" } | { type: "open"; number: number };

export function toPoint(experiment: Experiment): ChartPoint {
  const metric = experiment.metric;
  return {
    number: experiment.number,
    status: experiment.status,
    metric: metric === null || metric === undefined || !Number.isFinite(metric) ? null : metric,
    description: experiment.description ?? "",
  };
}

/** uPlot columns: x, then one y column per series; null = no point for that series there. */
export interface Columns {
  x: number[];
  keep: (number | null)[];
  discard: (number | null)[];
  crash: (number | null)[];
  best: (number | null)[];
}

export class ChartSeries {
  readonly points: ChartPoint[] = [];
  readonly columns: Columns = { x: [], keep: [], discard: [], crash: [], best: [] };
  private best: number | null = null;
  private lastMetric: number | null = null;

  constructor(readonly direction: string) {}

  get size(): number {
    return this.points.length;
  }

  /** Add points; returns false when they were not all new and last (the caller rebuilds). */
  append(points: ChartPoint[]): boolean {
    for (const point of points) {
      const last = this.points[this.points.length - 1];
      if (last && point.number <= last.number) return false;
      this.push(point);
    }
    return true;
  }

  private push(point: ChartPoint): void {
    const c = this.columns;
    this.points.push(point);
    c.x.push(point.number);
    const m = point.metric;
    if (point.status === "keep" && m !== null) this.best = m;
    c.keep.push(point.status === "keep" ? m : null);
    c.discard.push(point.status === "discard" ? m : null);
    // A crash has no metric: mark it on the best line (or the last value seen) so it shows.
    c.crash.push(point.status === "crash" ? (m ?? this.best ?? this.lastMetric) : null);
    c.best.push(this.best);
    if (m !== null) this.lastMetric = m;
  }

  /** A series built from points in any order, one per experiment number (the last one wins). */
  static from(direction: string, points: ChartPoint[]): ChartSeries {
    const byNumber = new Map<number, ChartPoint>();
    for (const point of points) byNumber.set(point.number, point);
    const series = new ChartSeries(direction);
    series.append([...byNumber.values()].sort((a, b) => a.number - b.number));
    return series;
  }

  /** The index of the point for an experiment number, by binary search. */
  indexOf(number: number): number {
    let lo = 0;
    let hi = this.points.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const at = this.points[mid]!.number;
      if (at === number) return mid;
      if (at < number) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}
