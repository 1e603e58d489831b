// The chart's learning curves, host side: the running experiment's points as the daemon sends
// them (curvePoints), the best experiment's stored curve as the reference (fetched again when the
// best changes), and a clicked experiment's stored curve. Sent to the chart's webview whole, at
// most about once a second while points arrive.
import * as vscode from "vscode";
import type { Daemon } from "../daemon/daemon";
import { Method, type CurvePoints } from "../protocol";
import type { Session } from "../session";
import type { ChartPanel } from "./chart";
import { CurveSet } from "./curveData";

const SEND_EVERY_MS = 500;

export class CurveFeed implements vscode.Disposable {
  private curves = new CurveSet();
  private tag: string | undefined;
  private bestNumber: number | null | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly subscriptions: vscode.Disposable[];

  constructor(
    private readonly daemon: Daemon,
    private readonly session: Session,
    private readonly chart: ChartPanel,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.subscriptions = [
      daemon.onNotification(Method.curvePoints, (event) => {
        if (!session.isMine(event.root)) return;
        this.sameSession(event.tag);
        this.curves.append(event.number, event.steps, event.values);
        this.schedule();
      }),
      session.onDidChangeState(({ state }) => {
        if (!state) return;
        this.sameSession(state.tag);
        if (state.best_number !== this.bestNumber) {
          this.bestNumber = state.best_number;
          void this.loadReference();
        }
      }),
      chart.onDidOpenExperiment(({ tag, number }) => void this.select(tag, number)),
      chart.onDidBecomeReady(() => this.send()),
    ];
  }

  /** A new session's curves are not compared with the last one's. */
  private sameSession(tag: string | undefined): void {
    if (!tag || tag === this.tag) return;
    this.tag = tag;
    this.curves = new CurveSet();
    this.bestNumber = undefined;
  }

  private async fetch(tag: string | undefined, number: number): Promise<CurvePoints | undefined> {
    const root = this.session.root;
    if (!root) return undefined;
    try {
      return await this.daemon.request(Method.curve, { root, number, tag: tag ?? null });
    } catch (error) {
      this.log.warn(`curve of #${number}: ${String(error)}`);
      return undefined;
    }
  }

  private async loadReference(): Promise<void> {
    const number = this.bestNumber;
    const got = number === null || number === undefined ? undefined : await this.fetch(this.tag, number);
    if (number !== this.bestNumber) return; // a newer best won
    this.curves.setReference(got ?? null);
    this.schedule();
  }

  private async select(tag: string, number: number): Promise<void> {
    const got = await this.fetch(tag, number);
    if (!got || !got.steps.length) return; // no curve kept for it: the chart stays as it is
    this.curves.select(got);
    this.send();
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => this.send(), SEND_EVERY_MS);
  }

  private send(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.chart.postCurve(this.curves.message(this.session.state?.metric ?? ""));
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const s of this.subscriptions) s.dispose();
  }
}
