// The chart panel: a webview running dist/chart.js (uPlot, bundled: no CDN) under a strict
// content security policy with a nonce. Sent the current session once, then each new experiment
// as it is recorded; a click on a point opens that experiment's changes. A small session is sent
// whole; a large one as the daemon's reduction (every keep, the rest per column), its details
// asked for on hover (#21: 100,000 experiments in one message froze the window). It follows
// the results model's events (the tree's): a new current session, its numbers, a record.
import { randomBytes } from "node:crypto";
import * as vscode from "vscode";
import { SMALL_SESSION, toPoint, type ChartSummary, type FromWebview, type ToWebview } from "./chartData";
import type { CurveMessage } from "./curveData";
import type { ChartSeries as Reduction, Experiment } from "../protocol";
import type { ResultsModel } from "../tree/treeModel";

/** The daemon's answers the chart asks for itself (the rest comes from the results model). */
export interface ChartSource {
  series(tag: string, buckets: number): Promise<Reduction>;
  experiment(tag: string, number: number): Promise<Experiment | undefined>;
}

export class ChartPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private ready = false;
  private tag: string | undefined;
  private epoch = -1; // the model's, when the webview was last sent everything
  private resets = 0;
  /** The numbers the webview was sent whole (it holds the points; only their numbers are kept
   * here, to count them once each), or, reduced, how many experiments its reduction holds. */
  private charted = new Set<number>();
  private reducedTotal: number | undefined;
  private columns = 1000;
  /** The reduction asked for when the panel opened, before the webview was ready. */
  private early: { tag: string; epoch: number; reduction: Promise<Reduction | undefined> } | undefined;
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  // For the learning curves (curveFeed.ts): a clicked experiment, and a webview ready for them.
  private readonly opened = new vscode.EventEmitter<{ tag: string; number: number }>();
  readonly onDidOpenExperiment = this.opened.event;
  private readonly readied = new vscode.EventEmitter<void>();
  readonly onDidBecomeReady = this.readied.event;
  private readonly subscriptions: { dispose(): void }[];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly model: ResultsModel,
    private readonly openExperiment: (tag: string, number: number) => Promise<void>,
    private readonly log: vscode.LogOutputChannel,
    private readonly source: ChartSource,
  ) {
    this.subscriptions = [
      model.onChange(() => {
        if (model.currentTag !== this.tag || model.epoch !== this.epoch) void this.reset();
        else this.refreshSummary();
      }),
      model.onRecord(({ tag, experiment }) => this.add(tag, experiment)),
    ];
  }

  get open(): boolean {
    return this.panel !== undefined;
  }

  get points(): number {
    return this.reducedTotal ?? this.charted.size;
  }

  get reduced(): boolean {
    return this.reducedTotal !== undefined;
  }

  show(): void {
    if (this.panel) {
      this.panel.reveal(undefined, true);
      return;
    }
    const dist = vscode.Uri.joinPath(this.extensionUri, "dist");
    const panel = vscode.window.createWebviewPanel(
      "autoresearch.chart",
      "Autoresearch Chart",
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      { enableScripts: true, retainContextWhenHidden: true, localResourceRoots: [dist] },
    );
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, "media", "autoresearch.svg");
    panel.webview.html = html(panel.webview, dist);
    panel.webview.onDidReceiveMessage((message: FromWebview) => this.onMessage(message));
    panel.onDidDispose(() => {
      this.panel = undefined;
      this.ready = false;
      this.charted = new Set();
      this.reducedTotal = undefined;
      this.early = undefined;
      this.changed.fire();
    });
    this.panel = panel;
    // Ask the daemon while the webview loads: the first render need not wait for both in turn.
    const tag = this.model.currentTag;
    if (tag !== undefined) {
      const reduction = this.source.series(tag, this.columns).catch(() => undefined);
      this.early = { tag, epoch: this.model.epoch, reduction };
    }
    this.changed.fire();
  }

  private onMessage(message: FromWebview): void {
    if (message.type === "ready") {
      this.ready = true;
      if (message.columns) this.columns = Math.max(50, Math.min(4000, Math.round(message.columns)));
      void this.reset();
      this.readied.fire();
    } else if (message.type === "open" && this.tag !== undefined) {
      void this.openExperiment(this.tag, message.number);
      this.opened.fire({ tag: this.tag, number: message.number });
    } else if (message.type === "detail" && this.tag !== undefined) {
      void this.detail(this.tag, message.number);
    }
  }

  /** One experiment's description and metric, for the hover of a reduced chart. */
  private async detail(tag: string, number: number): Promise<void> {
    let experiment: Experiment | undefined;
    try {
      experiment = this.model.experiment(tag, number) ?? (await this.source.experiment(tag, number));
    } catch (error) {
      this.log.warn(`chart: #${number}: ${String(error)}`);
    }
    if (tag !== this.tag) return;
    this.post({ type: "detail", number, point: experiment ? toPoint(experiment) : null });
  }

  /** Send the whole current session (on open, on a new session, after a daemon restart). */
  async reset(): Promise<void> {
    if (!this.panel || !this.ready) return;
    const tag = this.model.currentTag;
    const mine = ++this.resets;
    this.tag = tag;
    this.epoch = this.model.epoch;
    const state = this.model.state;
    let experiments: Experiment[] = [];
    let reduction: Reduction | undefined;
    try {
      // The reduction first: it says how large the session is, and a large one is drawn from it.
      const started = Date.now();
      const early = this.early;
      this.early = undefined;
      if (early && early.tag === tag && early.epoch === this.model.epoch) reduction = await early.reduction;
      // Records that came while the webview loaded are not in it (nor were they sent): ask again.
      if (reduction && tag !== undefined && reduction.total < this.model.summary(tag).total) reduction = undefined;
      if (!reduction && tag !== undefined) reduction = await this.source.series(tag, this.columns);
      if (reduction) this.log.info(`chart: ${reduction.total} experiments in ${this.columns} columns, ${Date.now() - started} ms`);
    } catch (error) {
      this.log.warn(`chart: the session's reduction: ${String(error)}`);
    }
    try {
      if (tag !== undefined && (reduction?.total ?? 0) <= SMALL_SESSION) {
        reduction = undefined;
        experiments = await this.model.all(tag);
      }
    } catch (error) {
      this.log.warn(`chart: ${String(error)}`);
    }
    if (mine !== this.resets) return; // a newer reset won
    const direction = state?.direction || "lower";
    this.panel.title = `Autoresearch Chart${state?.metric ? `: ${state.metric}` : ""}`;
    if (reduction) {
      this.charted = new Set();
      this.reducedTotal = reduction.total;
      this.post({ type: "reduced", metric: state?.metric ?? "", direction, reduction, summary: this.summary() });
      return;
    }
    // The webview orders them and builds its columns (ChartSeries.from).
    const points = experiments.map(toPoint);
    this.charted = new Set(points.map((p) => p.number));
    this.reducedTotal = undefined;
    this.post({ type: "reset", metric: state?.metric ?? "", direction, points, summary: this.summary() });
  }

  /** The daemon's counts and best for the charted session (the tree's numbers). */
  private summary(): ChartSummary {
    if (this.tag === undefined) return { counts: {}, best: null };
    const s = this.model.summary(this.tag);
    return { counts: s.counts, best: s.best };
  }

  /** The session's numbers may have changed (they come with the state after each record). */
  private refreshSummary(): void {
    if (!this.panel || !this.ready || this.tag === undefined) return;
    this.post({ type: "summary", summary: this.summary() });
  }

  /** A recorded experiment: appended when it belongs to the charted session. */
  private add(tag: string, experiment: Experiment): void {
    if (!this.panel || !this.ready) return;
    if (tag !== this.tag) {
      if (tag === this.model.currentTag) void this.reset();
      return;
    }
    // One the reset already had (the page was read after it was recorded) is not counted twice.
    if (this.reducedTotal !== undefined) this.reducedTotal += 1;
    else this.charted.add(experiment.number);
    this.post({ type: "append", points: [toPoint(experiment)], summary: this.summary() });
  }

  /** The learning curves, drawn under the chart (curveView.ts). */
  postCurve(message: CurveMessage): void {
    if (this.panel && this.ready) void this.panel.webview.postMessage(message);
  }

  private post(message: ToWebview): void {
    void this.panel?.webview.postMessage(message);
    this.changed.fire();
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
    this.panel?.dispose();
    this.changed.dispose();
    this.opened.dispose();
    this.readied.dispose();
  }
}

function html(webview: vscode.Webview, dist: vscode.Uri): string {
  const nonce = randomBytes(16).toString("base64");
  const script = webview.asWebviewUri(vscode.Uri.joinPath(dist, "chart.js"));
  const style = webview.asWebviewUri(vscode.Uri.joinPath(dist, "chart.css"));
  const csp = [
    "default-src 'none'",
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `script-src 'nonce-${nonce}'`,
    `img-src ${webview.cspSource} data:`,
    `font-src ${webview.cspSource}`,
  ].join("; ");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style}" nonce="${nonce}">
<style nonce="${nonce}">
  html, body { height: 100%; margin: 0; padding: 0; overflow: hidden; }
  body { color: var(--vscode-foreground); background: var(--vscode-editor-background);
         font-family: var(--vscode-font-family); font-size: var(--vscode-font-size);
         display: flex; flex-direction: column; }
  #summary { padding: 6px 12px; color: var(--vscode-descriptionForeground); }
  #chart { flex: 1; min-height: 0; padding: 0 8px 8px 0; }
  #curve { display: none; height: 35%; min-height: 120px; padding: 0 8px 8px 0; }
  #curve-label { display: none; padding: 2px 12px; color: var(--vscode-descriptionForeground); }
  #empty { display: none; padding: 24px; color: var(--vscode-descriptionForeground); }
  #tooltip { position: fixed; display: none; pointer-events: none; white-space: pre-wrap; max-width: 420px;
             padding: 4px 8px; z-index: 10; color: var(--vscode-editorHoverWidget-foreground);
             background: var(--vscode-editorHoverWidget-background);
             border: 1px solid var(--vscode-editorHoverWidget-border); }
  .key { margin-left: 10px; }
  .key.keep { color: var(--vscode-charts-green); }
  .key.discard { color: var(--vscode-disabledForeground); }
  .key.crash { color: var(--vscode-charts-red); }
  .key.best { color: var(--vscode-charts-blue); }
  .u-over { cursor: pointer; }
</style>
<title>Autoresearch Chart</title>
</head>
<body>
<div id="summary">Loading…</div>
<div id="empty">No experiments yet.</div>
<div id="chart"></div>
<div id="curve-label"></div>
<div id="curve"></div>
<div id="tooltip"></div>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
}
