// Learning curves for the chart (pure: no vscode, used by the host and the webview). The running
// experiment's curve grows as its points arrive; it is drawn over a reference, the best
// experiment's stored curve. A clicked experiment's stored curve takes the running one's place
// until the next run sends points. Each curve keeps at most MAX_POINTS, thinned evenly.

export const MAX_POINTS = 5000;

export interface CurveLine {
  number: number;
  steps: number[];
  values: number[];
}

/** The host's message to the webview: what to draw, whole (about once a second at most). */
export interface CurveMessage {
  type: "curve";
  metric: string;
  /** The running experiment's curve, or a clicked experiment's. */
  main: CurveLine | null;
  mainLabel: string;
  /** The best experiment's curve. */
  reference: CurveLine | null;
}

export class CurveSet {
  /** The running (or last run) experiment's curve, kept while a clicked one is shown. */
  running: CurveLine | null = null;
  selected: CurveLine | null = null;
  reference: CurveLine | null = null;

  get main(): CurveLine | null {
    return this.selected ?? this.running;
  }

  get mainLabel(): string {
    return this.selected ? "selected" : this.running ? "running" : "";
  }

  /** Points of a running experiment: appended to its curve; a new number starts a new curve
   * (and ends the showing of a clicked one). */
  append(number: number, steps: number[], values: number[]): void {
    if (this.running?.number !== number) {
      this.running = { number, steps: [], values: [] };
      this.selected = null;
    }
    const line = this.running;
    for (let i = 0; i < steps.length && i < values.length; i++) {
      const last = line.steps.length - 1;
      if (last >= 0 && steps[i] === line.steps[last]) line.values[last] = values[i];
      else if (last < 0 || steps[i] > line.steps[last]) {
        line.steps.push(steps[i]);
        line.values.push(values[i]);
      }
    }
    if (line.steps.length > MAX_POINTS) this.running = thin(line);
  }

  /** A stored curve shown in the running curve's place (a clicked experiment). */
  select(line: CurveLine): void {
    this.selected = thin(line);
  }

  setReference(line: CurveLine | null): void {
    this.reference = line && line.steps.length ? thin(line) : null;
  }

  message(metric: string): CurveMessage {
    return { type: "curve", metric, main: this.main, mainLabel: this.mainLabel, reference: this.reference };
  }
}

/** Every other point until at most `limit` remain; the last point is always kept. */
export function thin(line: CurveLine, limit = MAX_POINTS): CurveLine {
  if (line.steps.length <= limit) return line;
  const every = Math.ceil(line.steps.length / limit);
  const steps: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < line.steps.length; i += every) {
    steps.push(line.steps[i]);
    values.push(line.values[i]);
  }
  const last = line.steps.length - 1;
  if (steps[steps.length - 1] !== line.steps[last]) {
    steps.push(line.steps[last]);
    values.push(line.values[last]);
  }
  return { number: line.number, steps, values };
}

/** uPlot's aligned data: the union of both curves' steps, each curve null where it has no point. */
export function aligned(main: CurveLine | null, reference: CurveLine | null): [number[], (number | null)[], (number | null)[]] {
  const xs = [...new Set([...(main?.steps ?? []), ...(reference?.steps ?? [])])].sort((a, b) => a - b);
  const column = (line: CurveLine | null): (number | null)[] => {
    const at = new Map<number, number>();
    line?.steps.forEach((s, i) => at.set(s, line.values[i]));
    return xs.map((x) => {
      const v = at.get(x);
      return v === undefined || !Number.isFinite(v) ? null : v;
    });
  };
  return [xs, column(main), column(reference)];
}

/** The line under the curve: "#4 running · step 1200: 2.31 · best #2 at step 1200: 2.25". */
export function curveLabel(message: CurveMessage, format: (v: number) => string): string {
  const { main, reference } = message;
  if (!main && !reference) return "";
  const parts: string[] = [];
  const lastOf = (l: CurveLine) => l.steps.length - 1;
  if (main && main.steps.length) {
    const i = lastOf(main);
    parts.push(`#${main.number} ${message.mainLabel} · step ${main.steps[i]}: ${format(main.values[i])}`);
  }
  if (reference && reference.steps.length) {
    const step = main && main.steps.length ? main.steps[lastOf(main)] : undefined;
    const j = step === undefined ? lastOf(reference) : reference.steps.findIndex((s) => s >= step);
    const k = j < 0 ? lastOf(reference) : j;
    parts.push(`best #${reference.number} at step ${reference.steps[k]}: ${format(reference.values[k])}`);
  }
  return parts.join(" · ");
}
