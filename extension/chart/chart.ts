// The chart panel: a webview running dist/chart.js (uPlot, bundled: no CDN) inline under a strict
// content security policy with a nonce (chartHtml.ts). The current session comes embedded in the
// page when the daemon answers in time (else as a message once the webview is ready), then each
// new experiment as it is recorded; a click on a point opens that experiment's changes. A small
// session is sent whole; a large one as the daemon's reduction (every keep, the rest per column),
// its details asked for on hover (#21: 100,000 experiments in one message froze the window). It
// follows the results model's events (the tree's): a new current session, its numbers, a record.
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import * as vscode from "vscode";
import { chartHtml } from "./chartHtml";
import { SMALL_SESSION, toPoint, type ChartSummary, type FromWebview, type ToWebview } from "./chartData";
import type { CurveMessage } from "./curveData";
import type { ChartSeries as Reduction, Experiment } from "../protocol";
import type { ResultsModel } from "../tree/treeModel";

/** The daemon's answers the chart asks for itself (the rest comes from the results model). */
export interface ChartSource {
  series(tag: string, buckets: number): Promise<Reduction>;
  experiment(tag: string, number: number): Promise<Experiment | undefined>;
}

/** How long the page waits for the first plot's data before it is set without (the data then
 * follows as a message): VS Code's webview frame takes longer than this to start anyway. */
const FIRST_WAIT_MS = 400;

/** The whole session as the webview is sent it, and what the panel then holds. */
interface Contents {
  message: ToWebview;
  charted: Set<number>;
  reducedTotal: number | undefined;
}

/** A session's contents embedded in the page, until the webview says it drew them. */
interface Embedded {
  id: number;
  tag: string | undefined;
  epoch: number;
  records: number;
  contents: Contents;
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
  /** A large session's reduction asked for before the chart was opened (prefetch). */
  private ahead: { tag: string; epoch: number; reduction: Promise<Reduction | undefined> } | undefined;
  /** The reduction last charted: kept for the next opening once the panel is closed (it is asked
   * again if experiments were recorded since). */
  private last: { tag: string; epoch: number; reduction: Promise<Reduction | undefined> } | undefined;
  private embedded: Embedded | undefined;
  private pages = 0;
  /** Experiments recorded since the extension started: an embedded session older than the last
   * one is sent again. */
  private records = 0;
  /** dist/chart.js and dist/chart.css, read once. */
  private assets: Promise<{ script: string; style: string }> | undefined;
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
      model.onRecord(({ tag, experiment }) => {
        this.records += 1;
        this.add(tag, experiment);
      }),
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
    // Nothing is loaded from disk by the page (its script and style are inline).
    const panel = vscode.window.createWebviewPanel(
      "autoresearch.chart",
      this.title(), // its final title at once: a later one relabels the tab while the plot draws
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      { enableScripts: true, retainContextWhenHidden: true, localResourceRoots: [] },
    );
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, "media", "autoresearch.svg");
    panel.webview.onDidReceiveMessage((message: FromWebview) => this.onMessage(message));
    panel.onDidDispose(() => {
      this.panel = undefined;
      this.ready = false;
      this.charted = new Set();
      this.reducedTotal = undefined;
      this.early = undefined;
      this.embedded = undefined;
      this.ahead = this.last;
      this.last = undefined;
      this.changed.fire();
    });
    this.panel = panel;
    // Ask the daemon while VS Code starts the webview's frame (the panel exists: its frame is
    // under way without a page), then set the page with the session in it.
    const tag = this.model.currentTag;
    const ahead = this.ahead;
    if (ahead && ahead.tag === tag && ahead.epoch === this.model.epoch) {
      this.early = ahead; // asked for before the click (still checked against the records since)
    } else if (tag !== undefined) {
      const reduction = this.source.series(tag, this.columns).catch(() => undefined);
      this.early = { tag, epoch: this.model.epoch, reduction };
    }
    this.ahead = undefined;
    void this.setPage(panel, tag);
    this.changed.fire();
  }

  /**
   * Ask for the current session's reduction before the chart is opened, when the session is large
   * (the daemon's pass over 100,000 experiments takes a few hundred ms, the click need not wait on
   * it), and read the page's script. Called once the tree's first page is in (not to slow it).
   */
  prefetch(): void {
    const tag = this.model.currentTag;
    if (this.panel || tag === undefined || this.model.summary(tag).total <= SMALL_SESSION) return;
    if (this.ahead && this.ahead.tag === tag && this.ahead.epoch === this.model.epoch) return;
    this.ahead = { tag, epoch: this.model.epoch, reduction: this.source.series(tag, this.columns).catch(() => undefined) };
    this.assets ??= this.readAssets();
  }

  private async setPage(panel: vscode.WebviewPanel, tag: string | undefined): Promise<void> {
    const id = ++this.pages;
    const taken = { id, tag, epoch: this.model.epoch, records: this.records };
    this.assets ??= this.readAssets();
    let assets: { script: string; style: string };
    try {
      assets = await this.assets;
    } catch (error) {
      this.assets = undefined;
      this.log.error(`chart: the webview's script: ${String(error)}`);
      void vscode.window.showErrorMessage(`Autoresearch: the chart's script cannot be read (${String(error)}); reinstall the extension.`);
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), FIRST_WAIT_MS)));
    const contents = await Promise.race([this.contents(tag, this.early), late]).catch((error) => {
      this.log.warn(`chart: ${String(error)}`);
      return undefined;
    });
    clearTimeout(timer);
    if (this.panel !== panel) return; // closed meanwhile
    if (contents) {
      this.embedded = { ...taken, contents };
      this.early = undefined;
    } else this.log.info(`chart: the session's data not there after ${FIRST_WAIT_MS} ms: sent once the webview is ready`);
    const nonce = randomBytes(16).toString("base64");
    panel.webview.html = chartHtml({ nonce, ...assets, first: contents && { id, message: contents.message } });
  }

  private async readAssets(): Promise<{ script: string; style: string }> {
    const dist = vscode.Uri.joinPath(this.extensionUri, "dist");
    const [script, style] = await Promise.all([
      readFile(vscode.Uri.joinPath(dist, "chart.js").fsPath, "utf-8"),
      readFile(vscode.Uri.joinPath(dist, "chart.css").fsPath, "utf-8"),
    ]);
    return { script, style };
  }

  private onMessage(message: FromWebview): void {
    if (message.type === "ready") {
      this.ready = true;
      if (message.columns) this.columns = Math.max(50, Math.min(4000, Math.round(message.columns)));
      const embedded = this.embedded;
      this.embedded = undefined;
      const current =
        embedded !== undefined &&
        message.first === embedded.id &&
        embedded.tag === this.model.currentTag &&
        embedded.epoch === this.model.epoch &&
        embedded.records === this.records;
      if (current) {
        // It drew the session embedded in its page, and nothing was recorded since.
        this.hold(embedded.tag, embedded.epoch, embedded.contents);
        this.refreshSummary();
      } else void this.reset();
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
    const early = this.early;
    this.early = undefined;
    const contents = await this.contents(tag, early);
    if (mine !== this.resets || !this.panel) return; // a newer reset won
    this.hold(tag, this.epoch, contents);
    this.post(contents.message);
  }

  /** The whole session as one message: the daemon's reduction for a large one, every experiment
   * for a small one. `early`: the reduction asked for when the panel opened. */
  private async contents(tag: string | undefined, early: ChartPanel["early"]): Promise<Contents> {
    let experiments: Experiment[] = [];
    let reduction: Reduction | undefined;
    try {
      // The reduction first: it says how large the session is, and a large one is drawn from it.
      const started = Date.now();
      if (early && early.tag === tag && early.epoch === this.model.epoch) reduction = await early.reduction;
      // Records that came while the webview loaded are not in it (nor were they sent): ask again.
      if (reduction && tag !== undefined && reduction.total < this.model.summary(tag).total) reduction = undefined;
      if (!reduction && tag !== undefined) reduction = await this.source.series(tag, this.columns);
      if (reduction) this.log.info(`chart: ${reduction.total} experiments in ${reduction.buckets.length} columns, ${Date.now() - started} ms`);
      if (reduction && tag !== undefined) this.last = { tag, epoch: this.model.epoch, reduction: Promise.resolve(reduction) };
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
    const state = this.model.state;
    const direction = state?.direction || "lower";
    const metric = state?.metric ?? "";
    const summary = this.summaryOf(tag);
    if (reduction) {
      return { message: { type: "reduced", metric, direction, reduction, summary }, charted: new Set(), reducedTotal: reduction.total };
    }
    // The webview orders them and builds its columns (ChartSeries.from).
    const points = experiments.map(toPoint);
    return { message: { type: "reset", metric, direction, points, summary }, charted: new Set(points.map((p) => p.number)), reducedTotal: undefined };
  }

  /** What the webview now holds: the session's numbers charted, or its reduction's total. */
  private hold(tag: string | undefined, epoch: number, contents: Contents): void {
    this.tag = tag;
    this.epoch = epoch;
    this.charted = contents.charted;
    this.reducedTotal = contents.reducedTotal;
    const title = this.title();
    if (this.panel && this.panel.title !== title) this.panel.title = title;
    this.changed.fire();
  }

  private title(): string {
    const metric = this.model.state?.metric;
    return `Autoresearch Chart${metric ? `: ${metric}` : ""}`;
  }

  /** The daemon's counts and best for the charted session (the tree's numbers). */
  private summary(): ChartSummary {
    return this.summaryOf(this.tag);
  }

  private summaryOf(tag: string | undefined): ChartSummary {
    if (tag === undefined) return { counts: {}, best: null };
    const s = this.model.summary(tag);
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
