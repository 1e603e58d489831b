// The chart's data, pure and shared by the extension host (chart.ts) and the webview script:
// one point per experiment, in uPlot's column layout, with the best line: the metric of the last
// keep so far (the commit the branch sat on, what the next experiment was measured against). The
// daemon decided each keep; nothing here compares metrics.
import type { ChartBucket, ChartSeries as Reduction, Counts, Experiment, Status } from "../protocol";
import { workerText } from "../workers";

/** Up to this many experiments the chart gets each one (a marker each, its description in the
 * hover); above, the daemon's reduction (`autoresearch/chartSeries`): markers would merge into a
 * band, and sending 100,000 of them froze the window (#21). */
export const SMALL_SESSION = 2000;

export interface ChartPoint {
  number: number;
  status: Status;
  metric: number | null;
  description: string;
  /** A parallel loop's: the worker that ran it and its GPUs (absent otherwise, and then the
   * point costs nothing more to send). */
  worker?: number;
  gpus?: number[];
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
  | { type: "summary"; summary: ChartSummary }
  | { type: "reduced"; metric: string; direction: string; reduction: Reduction; summary: ChartSummary }
  | { type: "detail"; number: number; point: ChartPoint | null };

/** Messages from the webview to the extension; `columns`: the plot's width, one bucket each;
 * `first`: the id of the session embedded in the page (chartHtml.ts), drawn already. */
export type FromWebview =
  | { type: "ready"; columns?: number; first?: number }
  | { type: "open"; number: number }
  | { type: "detail"; number: number };

export function toPoint(experiment: Experiment): ChartPoint {
  const metric = experiment.metric;
  const point: ChartPoint = {
    number: experiment.number,
    status: experiment.status,
    metric: metric === null || metric === undefined || !Number.isFinite(metric) ? null : metric,
    description: experiment.description ?? "",
  };
  if (experiment.worker !== null && experiment.worker !== undefined) {
    point.worker = experiment.worker;
    if (experiment.gpus?.length) point.gpus = experiment.gpus;
  }
  return point;
}

/** The hover's first line: "#14 keep · val_bpb 0.98", and where it ran in a parallel loop
 * ("· worker 2 · GPU 1"); the description on the next line. */
export function pointText(point: ChartPoint, metric: string, format: (value: number | null) => string): string {
  const where = workerText(point.worker, point.gpus);
  return (
    `#${point.number} ${point.status} · ${metric} ${format(point.metric)}${where ? ` · ${where}` : ""}` +
    (point.description ? `\n${point.description}` : "")
  );
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
  /** A parallel loop's lanes: its workers, lowest first ([] when no point has a worker: the
   * one-at-a-time chart draws none). */
  readonly lanes: number[] = [];
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
    const worker = point.worker;
    if (worker !== undefined && !this.lanes.includes(worker)) {
      this.lanes.push(worker);
      this.lanes.sort((a, b) => a - b);
    }
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

/** A keep listed one by one (a marker on the best line). */
export interface ChartKeep {
  number: number;
  metric: number | null;
}

/** One x of the reduced chart: a keep (a marker on the best line) or a bucket of the rest. */
export interface ReducedEntry {
  x: number;
  keep: ChartKeep | null;
  bucket: ChartBucket | null;
}

/** uPlot columns of a reduced session: the keeps' markers, the best line stepping at each keep,
 * and each bucket's metric range (drawn as bars, not as markers). */
export interface ReducedColumns {
  x: number[];
  keep: (number | null)[];
  best: (number | null)[];
  low: (number | null)[];
  high: (number | null)[];
}

/** The daemon's reduction of a large session, and new records folded into it as they come. */
export class ReducedSeries {
  readonly entries: ReducedEntry[] = [];
  columns: ReducedColumns = { x: [], keep: [], best: [], low: [], high: [] };
  total: number;
  readonly span: number;
  /** The keeps came one by one (markers); else the buckets' keep ranges stand for them. */
  readonly listed: boolean;
  private readonly buckets: ChartBucket[];
  private readonly keeps: ChartKeep[];

  constructor(reduction: Reduction) {
    this.total = reduction.total;
    this.span = Math.max(1, reduction.span);
    this.buckets = reduction.buckets.map((b) => ({ ...b }));
    this.keeps = reduction.keep_numbers.map((number, i) => ({ number, metric: reduction.keep_metrics[i] ?? null }));
    this.listed = this.keeps.length > 0 || !reduction.buckets.some((b) => (b.keep ?? 0) > 0);
    this.rebuild();
  }

  /** A new experiment: into its bucket (a new one past the last), a keep also to the keeps. */
  append(point: ChartPoint): void {
    const lastBucket = this.buckets[this.buckets.length - 1];
    if (lastBucket && point.number < lastBucket.first) return; // older than the last bucket: already counted
    let bucket = lastBucket && point.number <= lastBucket.first + this.span - 1 ? lastBucket : undefined;
    if (!bucket) {
      const origin = this.buckets[0]?.first ?? point.number;
      const first = origin + Math.floor((point.number - origin) / this.span) * this.span;
      bucket = { first, last: point.number, keep: 0, discard: 0, crash: 0, discard_min: null, discard_max: null, best: lastBucket?.best ?? null };
      this.buckets.push(bucket);
    }
    bucket.last = Math.max(bucket.last, point.number);
    if (point.worker !== undefined) bucket.parallel = (bucket.parallel ?? 0) + 1;
    const m = point.metric;
    if (point.status === "keep") {
      bucket.keep = (bucket.keep ?? 0) + 1;
      bucket.best = m;
      if (m !== null) {
        bucket.keep_min = bucket.keep_min == null ? m : Math.min(bucket.keep_min, m);
        bucket.keep_max = bucket.keep_max == null ? m : Math.max(bucket.keep_max, m);
      }
      if (this.listed) this.keeps.push({ number: point.number, metric: m });
    } else if (point.status === "discard") {
      bucket.discard = (bucket.discard ?? 0) + 1;
      if (m !== null) {
        bucket.discard_min = bucket.discard_min == null ? m : Math.min(bucket.discard_min, m);
        bucket.discard_max = bucket.discard_max == null ? m : Math.max(bucket.discard_max, m);
      }
    } else {
      bucket.crash = (bucket.crash ?? 0) + 1;
    }
    this.total += 1;
    this.rebuild();
  }

  /** Keeps and buckets merged by x (a bucket at its middle), with the best as of each x. */
  private rebuild(): void {
    const entries = this.entries;
    entries.length = 0;
    let k = 0;
    for (const bucket of this.buckets) {
      const x = (bucket.first + bucket.last) / 2;
      while (k < this.keeps.length && this.keeps[k]!.number <= x) entries.push({ x: this.keeps[k]!.number, keep: this.keeps[k++]!, bucket: null });
      const shown = (bucket.discard ?? 0) + (bucket.crash ?? 0) + (this.listed ? 0 : (bucket.keep ?? 0));
      if (shown > 0) entries.push({ x, keep: null, bucket });
    }
    while (k < this.keeps.length) entries.push({ x: this.keeps[k]!.number, keep: this.keeps[k++]!, bucket: null });
    const c: ReducedColumns = { x: [], keep: [], best: [], low: [], high: [] };
    let best: number | null = null;
    for (const e of entries) {
      if (e.keep) best = e.keep.metric;
      else if (!this.listed && e.bucket) best = e.bucket.best ?? best;
      c.x.push(e.x);
      c.keep.push(e.keep ? e.keep.metric : null);
      c.best.push(best);
      const b = e.bucket;
      const keeps = !this.listed && b ? [b.keep_min, b.keep_max] : [];
      const values = [b?.discard_min, b?.discard_max, ...keeps].filter((v): v is number => v !== null && v !== undefined);
      c.low.push(values.length ? Math.min(...values) : null);
      c.high.push(values.length ? Math.max(...values) : null);
    }
    this.columns = c;
  }
}
